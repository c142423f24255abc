"""Receiver configuration: options, then ``SPANMETER_*`` variables, then a YAML file, then defaults."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final, cast

import yaml

from .. import environment_variables as env

__all__ = ["ServeConfig"]

_logger = logging.getLogger(__name__)

_ENV: Mapping[str, str] = {
    "db": env.SPANMETER_DB_PATH,
    "host": env.SPANMETER_HOST,
    "grpc_port": env.SPANMETER_GRPC_PORT,
    "http_port": env.SPANMETER_HTTP_PORT,
    "max_body_mb": env.SPANMETER_MAX_BODY_MB,
    "raw_retention_days": env.SPANMETER_RAW_RETENTION_DAYS,
    "rollup_retention_days": env.SPANMETER_ROLLUP_RETENTION_DAYS,
    "max_pending_rows": env.SPANMETER_MAX_PENDING_ROWS,
    "pricing_file": env.SPANMETER_PRICING_FILE,
    "budgets_file": env.SPANMETER_BUDGETS_FILE,  # budgets and alerts
    "store_process": env.SPANMETER_STORE_PROCESS,
    "metrics_top_tenants": env.SPANMETER_METRICS_TOP_TENANTS,  # Prometheus cost counters
    "metrics_max_label_sets": env.SPANMETER_METRICS_MAX_LABEL_SETS,
    "metrics_auth": env.SPANMETER_METRICS_AUTH,
    "api_workers": env.SPANMETER_API_WORKERS,
    "api_timeout_s": env.SPANMETER_API_TIMEOUT,
    "ingest_rate_limit": env.SPANMETER_INGEST_RATE_LIMIT,
    "tls_cert": env.SPANMETER_TLS_CERT,
    "tls_key": env.SPANMETER_TLS_KEY,
    "tls_client_ca": env.SPANMETER_TLS_CLIENT_CA,
}

_OPTIONAL_NUMBERS: Final = frozenset({"ingest_rate_limit"})
"""Settings that are a number or unset (None)."""
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``spanmeter serve`` needs."""

    db: str = "spanmeter.db"
    """The store: a SQLite file path or a ``postgresql://`` URL (``--store``/``--db``)."""
    host: str = "127.0.0.1"
    grpc_port: int | None = 4317
    """None disables the gRPC listener; 0 picks a free port."""
    http_port: int | None = 4318
    max_body_mb: int = 64
    raw_retention_days: int = 30
    rollup_retention_days: int = 400
    max_pending_rows: int = 200_000
    pricing_file: str | None = None
    budgets_file: str | None = None
    """Budgets and alert rules (YAML, watched for changes); None: no budgets are counted."""
    workers: int = 8
    """Threads serving OTLP (and ``/metrics``, health) on each port."""
    api_workers: int = 2
    """JSON API requests (under ``/api/``) running at once, on threads apart from ingest's;
    more are answered 429 (see :mod:`spanmeter.receiver.api_gate`)."""
    api_timeout_s: int = 30
    """Seconds an API request may run before it is answered 503."""
    ingest_rate_limit: int | None = None
    """Spans/s each ingest key without a limit of its own may export (a key's own
    ``--rate-limit`` wins); None: unlimited. See :mod:`spanmeter.receiver.rate_limit`."""
    tls_cert: str | None = None
    """PEM certificate for both ports; with ``tls_key``, they speak TLS only."""
    tls_key: str | None = None
    tls_client_ca: str | None = None
    """PEM CA of the clients' certificates: set, both ports require one (mutual TLS)."""
    store_process: bool = True
    """Commit in a separate store process (decoding and storing then use two cores), and
    compute the API's views and exports in ``api_workers`` query processes (see
    :mod:`spanmeter.service.query_process`); off: a writer thread in the receiver process and
    the queries on its API threads (one process, for tests and small loads)."""
    metrics_top_tenants: int = 20
    """Tenants with their own label on the ``/metrics`` cost counters; the rest is ``other``."""
    metrics_promotion_delay_s: int = 300
    """Seconds of traffic ranked before free tenant slots are filled (see
    :mod:`spanmeter.prometheus.cost_metrics`); slots seeded from the store need none."""
    metrics_max_label_sets: int = 2_000
    """Label sets of the ``/metrics`` cost counters before new ones are folded into ``other``
    (see :mod:`spanmeter.prometheus.label_sets`)."""
    metrics_auth: bool = False
    """``/metrics`` needs a ``read`` or ``admin`` API key (once a key exists), like the JSON
    API; off: open, as Prometheus scrapes on a private network usually are."""
    insecure_no_auth: bool = False
    """Serve an address others reach without API keys (or with the public user-id hash key):
    ``serve`` refuses to otherwise; ``/readyz`` then says so in a ``warning``."""

    @classmethod
    def load(
        cls,
        options: Mapping[str, Any] | None = None,
        *,
        config_file: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ServeConfig:
        """Merge the sources; raises ValueError naming the source and the key."""
        environ = os.environ if environ is None else environ
        config = cls()
        path = config_file or environ.get(env.SPANMETER_CONFIG)
        if path:
            config = config._merged(_read_file(Path(path)), f"config file {path}")
        from_env = {key: environ[name] for key, name in _ENV.items() if environ.get(name)}
        if environ.get(env.SPANMETER_STORE):  # the store by either name; this one wins
            from_env["db"] = environ[env.SPANMETER_STORE]
        config = config._merged(from_env, "environment")
        config = config._merged({k: v for k, v in (options or {}).items() if v is not None}, "options")
        config._check()
        return config

    def _check(self) -> None:
        """Settings that only make sense together."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both a certificate and its key (tls_cert and tls_key)")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca (client certificates) needs tls_cert and tls_key")
        if self.api_workers <= 0 or self.api_timeout_s <= 0 or self.workers <= 0:
            raise ValueError("workers, api_workers and api_timeout_s must be positive")
        if self.ingest_rate_limit is not None and self.ingest_rate_limit <= 0:
            raise ValueError("ingest_rate_limit must be positive (leave it unset for no limit)")

    def _merged(self, values: Mapping[str, Any], source: str) -> ServeConfig:
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, raw in values.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ValueError(f"{source}: unknown setting {key!r}")
            default = getattr(ServeConfig, name)
            value: Any
            try:
                if isinstance(default, bool):
                    value = _boolean(raw)
                elif isinstance(default, int) or name.endswith("_port") or name in _OPTIONAL_NUMBERS:
                    if isinstance(raw, bool) and not (name.endswith("_port") and raw is False):
                        raise ValueError("expected a number")
                    # YAML reads a bare ``off`` as False: for a port that means "disabled",
                    # never int(False), which would be 0, "any free port".
                    value = None if raw is False or raw in (None, "", "off") else int(raw)
                    if value is not None and value < 0:
                        raise ValueError("must not be negative")
                else:
                    value = None if raw is None else str(raw)
            except (TypeError, ValueError) as error:
                raise ValueError(f"{source}: invalid {key}={raw!r}: {error}") from None
            changes[name] = value
        return replace(self, **changes)


def _boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false")


def _read_file(path: Path) -> Mapping[str, Any]:
    try:
        document: object = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"config file {path}: {error}") from None
    if not isinstance(document, Mapping):
        raise ValueError(f"config file {path}: expected a mapping of settings")
    settings = cast(Mapping[str, object], document)
    serve = settings.get("serve", settings)
    if not isinstance(serve, Mapping):
        raise ValueError(f"config file {path}: 'serve' must be a mapping")
    return cast(Mapping[str, Any], serve)
