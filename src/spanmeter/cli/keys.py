"""``spanmeter keys``: make, list and revoke the API keys a receiver accepts.

Keys are kept in the store (a SQLite file or the shared PostgreSQL database), only as a hash
of their secret: ``create`` prints the key once, and nothing can show it again. Making and
revoking a key is recorded in the store's audit trail (``spanmeter audit list``) as
``cli:<os user>``.
"""

from __future__ import annotations

import json
import time
from typing import TypedDict

import click

from ..auth import SCOPES, issue_key
from ..store import ApiKey, DuplicateKeyName, KeyStore, SpanStore
from ..timeunits import iso, parse_duration
from .common import cli_actor, format_option, open_store, store_option
from .listing import echo_listing

__all__ = ["keys"]


class KeyDocument(TypedDict):
    """A key as ``keys list`` shows it: never its secret nor its hash."""

    name: str
    scope: str
    tenants: list[str]
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    usable: bool
    rate_limit: int | None
    """Spans/s the key may export; None: no limit of its own."""


def _document(key: ApiKey, now_ns: int) -> KeyDocument:
    return {
        "name": key.name,
        "scope": key.scope,
        "tenants": list(key.tenants),
        "created_at": iso(key.created_at_ns),
        "expires_at": None if key.expires_at_ns is None else iso(key.expires_at_ns),
        "revoked_at": None if key.revoked_at_ns is None else iso(key.revoked_at_ns),
        "usable": key.usable(now_ns),
        "rate_limit": key.rate_limit,
    }


def _key_store(store: SpanStore) -> KeyStore:
    if not isinstance(store, KeyStore):  # pragma: no cover - both backends keep keys
        raise click.ClickException(f"the store {store.location} keeps no API keys")
    return store


@click.group()
def keys() -> None:
    """Manage API keys (scopes ingest, read, admin; optionally limited to tenants)."""


@keys.command()
@click.option(
    "--name", required=True, help="A name to list and revoke the key by (unique among usable keys)."
)
@click.option("--scope", type=click.Choice(SCOPES), required=True, help="What the key may do.")
@click.option("--tenant", "tenants", multiple=True, help="Limit the key to this tenant (repeatable).")
@click.option("--expires", help="Lifetime, e.g. 90d or 12h [default: never].")
@click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    help="Spans per second an ingest key may export (bursts of one second's worth); more are"
    " answered 429 / RESOURCE_EXHAUSTED for the exporter to retry [default: serve's"
    " --ingest-rate-limit, else none].",
)
@format_option("text", "json")
@store_option()
def create(
    name: str,
    scope: str,
    tenants: tuple[str, ...],
    expires: str | None,
    rate_limit: int | None,
    fmt: str,
    db: str | None,
) -> None:
    """Make a key and print it once (it is stored only as a hash)."""
    now = time.time_ns()
    try:
        lifetime = None if expires is None else parse_duration(expires)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--expires") from None
    if not name.strip():
        raise click.BadParameter("a key needs a name", param_hint="--name")
    if rate_limit is not None and scope != "ingest":
        raise click.BadParameter("only an ingest key exports spans to limit", param_hint="--rate-limit")
    issued = issue_key()
    record = ApiKey(
        name=name.strip(),
        key_id=issued.key_id,
        secret_hash=issued.hash,
        scope=scope,
        tenants=tuple(dict.fromkeys(t.strip() for t in tenants if t.strip())),
        created_at_ns=now,
        expires_at_ns=None if lifetime is None else now + lifetime,
        rate_limit=rate_limit,
    )
    with open_store(db, create=True) as store:
        try:
            _key_store(store).add_api_key(record, actor=cli_actor())
        except DuplicateKeyName as error:
            raise click.ClickException(str(error)) from None
    if fmt == "json":
        click.echo(json.dumps({"name": record.name, "key": issued.key}))
        return
    click.echo(issued.key)
    click.echo(f"key {record.name!r} ({scope}) made: keep it now, it cannot be shown again", err=True)


@keys.command(name="list")
@format_option("table", "json")
@store_option()
def list_keys(fmt: str, db: str | None) -> None:
    """List the keys (never their secrets), revoked and expired ones included."""
    now = time.time_ns()
    with open_store(db) as store:
        records = _key_store(store).api_keys()
    documents = [_document(key, now) for key in records]
    echo_listing(
        fmt,
        "keys",
        documents,
        empty="no API keys",
        header=f"{'name':<24} {'scope':<7} {'state':<8} {'tenants':<24} {'spans/s':>9} created",
        line=_line,
    )


def _line(doc: KeyDocument) -> str:
    state = "revoked" if doc["revoked_at"] else ("usable" if doc["usable"] else "expired")
    tenants = ",".join(doc["tenants"]) or "all"
    rate = "-" if doc["rate_limit"] is None else str(doc["rate_limit"])
    return f"{doc['name']:<24} {doc['scope']:<7} {state:<8} {tenants:<24} {rate:>9} {doc['created_at']}"


@keys.command()
@click.argument("name")
@store_option()
def revoke(name: str, db: str | None) -> None:
    """Revoke the usable key NAME: it stops working at once, on every replica."""
    with open_store(db) as store:
        if not _key_store(store).revoke_api_key(name, time.time_ns(), actor=cli_actor()):
            raise click.ClickException(f"no usable key named {name!r}")
    click.echo(f"key {name!r} revoked", err=True)
