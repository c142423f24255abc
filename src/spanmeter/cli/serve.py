"""``spanmeter serve``: the OTLP receiver on the embedded store, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import click

from ..service import ReceiverService, ServeConfig
from ..service.exposure import exposure_problem
from ..service.maintenance import tune_gc
from ..store import KeyStore, describe_target, is_postgres_url
from ..store.sqlite.schema import store_problem
from .common import first_line, is_driver_error

__all__ = ["serve"]

_logger = logging.getLogger(__name__)


@click.command()
@click.option(
    "--store",
    "--db",
    "db",
    help="Store: a SQLite file, or a postgresql:// URL shared by several replicas"
    " [env SPANMETER_STORE or SPANMETER_DB_PATH; default spanmeter.db].",
)
@click.option("--host", help="Address to bind [env SPANMETER_HOST; default 127.0.0.1].")
@click.option("--grpc-port", type=int, help="OTLP/gRPC port, 0 = any free [default 4317].")
@click.option("--http-port", type=int, help="OTLP/HTTP + API port, 0 = any free [default 4318].")
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), help="YAML config [env SPANMETER_CONFIG]."
)
@click.option("--pricing-file", type=click.Path(dir_okay=False), help="Price override YAML.")
@click.option(
    "--budgets",
    "budgets_file",
    type=click.Path(dir_okay=False),
    help="Budgets and alert rules YAML, reloaded on change [env SPANMETER_BUDGETS_FILE].",
)
@click.option("--max-body-mb", type=int, help="Largest request after decompression [default 64].")
@click.option("--raw-retention-days", type=int, help="Days raw rows are kept [default 30].")
@click.option("--rollup-retention-days", type=int, help="Days rollups are kept [default 400].")
@click.option(
    "--store-process/--no-store-process",
    default=None,
    help="Commit in a separate store process, so decoding and storing use two cores "
    "[env SPANMETER_STORE_PROCESS; default on].",
)
@click.option(
    "--metrics-top-tenants",
    type=int,
    help="Tenants with their own label on the /metrics cost counters; the rest is 'other' "
    "[env SPANMETER_METRICS_TOP_TENANTS; default 20].",
)
@click.option(
    "--metrics-max-label-sets",
    type=int,
    help="Label sets of the /metrics cost counters before new ones are folded into 'other' "
    "[env SPANMETER_METRICS_MAX_LABEL_SETS; default 2000].",
)
@click.option(
    "--api-workers",
    type=int,
    help="JSON API requests run at once, apart from OTLP ingest; more get 429 "
    "[env SPANMETER_API_WORKERS; default 2].",
)
@click.option(
    "--api-timeout",
    "api_timeout_s",
    type=int,
    help="Seconds an API request may run before it is answered 503 [env SPANMETER_API_TIMEOUT; default 30].",
)
@click.option(
    "--ingest-rate-limit",
    type=click.IntRange(min=1),
    help="Spans/s each ingest key may export unless it has its own --rate-limit; more get 429 /"
    " RESOURCE_EXHAUSTED [env SPANMETER_INGEST_RATE_LIMIT; default no limit].",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False),
    help="PEM certificate: both ports speak TLS [env SPANMETER_TLS_CERT].",
)
@click.option(
    "--tls-key", type=click.Path(dir_okay=False), help="PEM key of --tls-cert [env SPANMETER_TLS_KEY]."
)
@click.option(
    "--tls-client-ca",
    type=click.Path(dir_okay=False),
    help="PEM CA of client certificates: both ports require one (mutual TLS) [env SPANMETER_TLS_CLIENT_CA].",
)
@click.option(
    "--metrics-auth/--no-metrics-auth",
    default=None,
    help="/metrics needs a read (or admin) API key as Authorization: Bearer, once a key exists "
    "[env SPANMETER_METRICS_AUTH; default off].",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    default=None,
    help="Serve a non-loopback address without API keys (or with the public user-id hash key): "
    "only on a network nobody else reaches; /readyz then carries a warning.",
)
def serve(config_file: str | None, **options: Any) -> None:
    """Receive OTLP traces, price and store every GenAI span, answer queries."""
    try:
        config = ServeConfig.load(options, config_file=config_file)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    created = _check_store_path(config.db)
    try:
        service = ReceiverService(config)
    except Exception as error:
        if not isinstance(error, (ValueError, OSError, RuntimeError, sqlite3.Error)) and not is_driver_error(
            error
        ):
            raise
        _remove_new_store(config.db, created)
        raise click.ClickException(
            f"cannot open the store {describe_target(config.db)}: {first_line(error)}"
        ) from None
    exposure = exposure_problem(
        config.host, has_keys=isinstance(service.store, KeyStore) and service.store.has_api_keys()
    )
    if exposure and not config.insecure_no_auth:
        service.stop(0)
        _remove_new_store(config.db, created)
        raise click.ClickException(
            f"refusing to serve {config.host}: {exposure}; make a key first (spanmeter keys create"
            " --store ...), or pass --insecure-no-auth on a network nobody else reaches"
        )
    if exposure:
        _logger.warning("spanmeter: serving %s with %s (--insecure-no-auth)", config.host, exposure)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        service.start()
    except (OSError, RuntimeError) as error:
        service.stop(0)
        _remove_new_store(config.db, created)
        reason = getattr(error, "strerror", None) or error
        raise click.ClickException(f"cannot start the receiver: {reason}") from None
    tune_gc()  # a server process from here on: see spanmeter.service.maintenance
    listeners = [
        f"{scheme}://{config.host}:{port}"
        for scheme, port in (
            ("grpc", service.grpc_port),
            ("https" if config.tls_cert else "http", service.http_port),
        )
        if port is not None
    ]
    click.echo(
        f"spanmeter receiving OTLP on {' and '.join(listeners)}{' over TLS' if config.tls_cert else ''} (store {describe_target(config.db)}); Ctrl-C to stop",
        err=True,
    )
    while not stop.wait(0.5):
        if service.failed.is_set():
            break
    click.echo("spanmeter: stopping: finishing in-flight exports and committing", err=True)
    service.stop()
    if service.failed.is_set():
        raise click.ClickException("the store process died; restart the receiver")


def _check_store_path(db: str) -> bool:
    """Refuse a store path that cannot become a store, before anything is created; True when
    the store will be new (so a failed start can remove it again). A PostgreSQL URL is checked
    by connecting."""
    if is_postgres_url(db):
        return False
    path = Path(db)
    if not path.parent.is_dir():
        raise click.ClickException(
            f"cannot create the store {db}: the directory {path.parent} does not exist (create it first)"
        )
    problem = store_problem(path)
    if problem:
        raise click.ClickException(f"{problem}: give --db a new file or a spanmeter store")
    return not path.exists() or path.stat().st_size == 0


def _remove_new_store(db: str, created: bool) -> None:
    """A start that failed leaves no empty store behind (nor its WAL files)."""
    if not created:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            os.remove(db + suffix)
