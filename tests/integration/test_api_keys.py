"""API keys on both backends and through ``spanmeter keys``: random 256-bit secrets stored only
as hashes, checked in constant time, one usable key a name, revocation and expiry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from spanmeter.auth import SCOPES, issue_key, parse_key, secret_hash, secret_matches
from spanmeter.cli import main
from spanmeter.store import ApiKey, DuplicateKeyName, KeyStore
from support.stores import BACKENDS, backend_target, opened_store


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_target(str(request.param), tmp_path, request)


@pytest.fixture
def keys(target: str) -> Iterator[KeyStore]:
    with opened_store(target) as store:
        assert isinstance(store, KeyStore)
        yield store


def _record(name: str, *, scope: str = "read", expires_at_ns: int | None = None) -> tuple[ApiKey, str]:
    issued = issue_key()
    record = ApiKey(name, issued.key_id, issued.hash, scope, ("t1", "t2"), time.time_ns(), expires_at_ns)
    return record, issued.key


def test_keys_are_random_and_well_formed() -> None:
    made = {issue_key().key for _ in range(200)}
    assert len(made) == 200
    key = next(iter(made))
    parsed = parse_key(key)
    assert parsed is not None
    key_id, secret = parsed
    assert len(bytes.fromhex(key_id)) == 8 and len(secret) == 43  # 32 random bytes, base64
    assert secret_matches(secret, secret_hash(secret))
    assert not secret_matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), secret_hash(secret))
    for bad in ("", "spm_", "Bearer " + key, key + "x", key.replace("spm_", "spx_")):
        assert parse_key(bad) is None


def test_store_keeps_the_hash_never_the_secret(keys: KeyStore) -> None:
    record, key = _record("ci")
    keys.add_api_key(record)
    parsed = parse_key(key)
    assert parsed is not None
    stored = keys.api_key(parsed[0])
    assert stored is not None and stored == record and stored.tenants == ("t1", "t2")
    assert parsed[1].encode() not in stored.secret_hash and secret_matches(parsed[1], stored.secret_hash)
    assert keys.api_key("0" * 16) is None
    assert keys.has_api_keys()


def test_names_are_unique_among_usable_keys_and_revocation_is_final(keys: KeyStore) -> None:
    first, _ = _record("deploy")
    keys.add_api_key(first)
    with pytest.raises(DuplicateKeyName):
        keys.add_api_key(_record("deploy")[0])
    assert keys.revoke_api_key("deploy", time.time_ns())
    assert not keys.revoke_api_key("deploy", time.time_ns())  # nothing usable left to revoke
    assert not keys.has_api_keys()
    second, _ = _record("deploy")
    keys.add_api_key(second)  # the name is free again
    listed = keys.api_keys()
    assert [k.name for k in listed] == ["deploy", "deploy"]
    assert [k.usable(time.time_ns()) for k in listed] == [False, True]


def test_expired_keys_are_not_usable(keys: KeyStore) -> None:
    now = time.time_ns()
    record, _ = _record("short", expires_at_ns=now + 1)
    keys.add_api_key(record)
    stored = keys.api_key(record.key_id)
    assert stored is not None and stored.usable(now) and not stored.usable(now + 1)


def test_cli_creates_lists_and_revokes(target: str) -> None:
    runner = CliRunner()
    with opened_store(target):
        pass  # an empty store: nothing to list yet
    none = runner.invoke(main, ["keys", "list", "--store", target])
    assert none.exit_code == 0 and none.output == "no API keys\n", none.output
    none_json = runner.invoke(main, ["keys", "list", "--format", "json", "--store", target])
    assert json.loads(none_json.output) == {"keys": []}
    made = runner.invoke(
        main,
        [
            "keys",
            "create",
            "--name",
            "grafana",
            "--scope",
            "read",
            "--tenant",
            "acme",
            "--expires",
            "90d",
            "--format",
            "json",
            "--store",
            target,
        ],
    )
    assert made.exit_code == 0, made.output
    document = json.loads(made.output)
    assert document["name"] == "grafana" and parse_key(document["key"]) is not None
    listed = runner.invoke(main, ["keys", "list", "--format", "json", "--store", target])
    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.output)["keys"]
    assert entry["scope"] == "read" and entry["tenants"] == ["acme"] and entry["usable"]
    assert document["key"] not in listed.output and "hash" not in listed.output
    again = runner.invoke(main, ["keys", "create", "--name", "grafana", "--scope", "read", "--store", target])
    assert again.exit_code == 1 and "revoke it first" in again.output
    assert runner.invoke(main, ["keys", "revoke", "grafana", "--store", target]).exit_code == 0
    missing = runner.invoke(main, ["keys", "revoke", "grafana", "--store", target])
    assert missing.exit_code == 1 and "no usable key" in missing.output
    table = runner.invoke(main, ["keys", "list", "--store", target])
    header, line = table.output.splitlines()
    assert header.split() == ["name", "scope", "state", "tenants", "spans/s", "created"]
    assert line.split()[:5] == ["grafana", "read", "revoked", "acme", "-"]


def test_cli_refuses_bad_scope_and_lifetime(tmp_path: Path) -> None:
    store = str(tmp_path / "keys.db")
    runner = CliRunner()
    bad_scope = runner.invoke(main, ["keys", "create", "--name", "x", "--scope", "root", "--store", store])
    assert bad_scope.exit_code == 2 and all(scope in bad_scope.output for scope in SCOPES)
    bad_expiry = runner.invoke(
        main, ["keys", "create", "--name", "x", "--scope", "read", "--expires", "soon", "--store", store]
    )
    assert bad_expiry.exit_code == 2 and "--expires" in bad_expiry.output


def test_a_keys_rate_limit_is_stored_with_it(keys: KeyStore) -> None:
    issued = issue_key()
    record = ApiKey("app", issued.key_id, issued.hash, "ingest", (), time.time_ns(), rate_limit=5000)
    keys.add_api_key(record)
    plain, _ = _record("plain", scope="ingest")
    keys.add_api_key(plain)
    assert keys.api_key(issued.key_id) == record
    assert {k.name: k.rate_limit for k in keys.api_keys()} == {"app": 5000, "plain": None}


def test_keys_made_before_rate_limits_migrate_without_one(target: str) -> None:
    """A store whose ``api_keys`` table predates the ``rate_limit`` column gains it on opening;
    its keys keep working, with no limit."""
    issued = issue_key()
    old_row = ("old", issued.key_id, issued.hash, "ingest", "", time.time_ns(), None, None)
    insert = "INSERT INTO api_keys (name, key_id, secret_hash, scope, tenants, created_at_ns, expires_at_ns, revoked_at_ns)"
    with opened_store(target):
        pass  # made at the current schema; then turned back into the schema before the column
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target) as conn:
            conn.execute("ALTER TABLE api_keys DROP COLUMN rate_limit")
            conn.execute("DELETE FROM spanmeter_migrations WHERE name = 'm008_api_key_rate_limit'")
            conn.execute(insert + " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", old_row)
    else:
        import sqlite3

        with sqlite3.connect(target) as conn:
            conn.execute("ALTER TABLE api_keys DROP COLUMN rate_limit")
            conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm_keys_002_rate_limit'")
            conn.execute(insert + " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", old_row)
        conn.close()
    with opened_store(target) as store:
        assert isinstance(store, KeyStore)
        stored = store.api_key(issued.key_id)
        assert stored is not None and stored.name == "old" and stored.rate_limit is None
        issued_new = issue_key()
        store.add_api_key(ApiKey("new", issued_new.key_id, issued_new.hash, "ingest", (), 1, rate_limit=7))
        assert {k.name: k.rate_limit for k in store.api_keys()} == {"old": None, "new": 7}
