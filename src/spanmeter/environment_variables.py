"""Every ``SPANMETER_*`` environment variable, declared once with what it does.

Precedence everywhere: explicit argument, then environment variable, then default.
Standard ``OTEL_*`` variables (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_*``) are reused
where they fit and are not repeated here.
"""

from __future__ import annotations

from typing import Final

SPANMETER_ENDPOINT: Final = "SPANMETER_ENDPOINT"
"""OTLP endpoint of the spanmeter receiver (or a Collector in front of it) that
``spanmeter.configure()`` and the ``spanmeter`` traces exporter send to, e.g.
``http://spanmeter:4318`` (HTTP) or ``http://spanmeter:4317`` (gRPC). Default: the standard
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` resolution."""

SPANMETER_PROTOCOL: Final = "SPANMETER_PROTOCOL"
"""``grpc`` or ``http/protobuf``. Default: ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, then
``OTEL_EXPORTER_OTLP_PROTOCOL``, then ``http/protobuf``; under
``OTEL_PYTHON_CONFIGURATOR=spanmeter`` with none of them set, ``grpc`` for an endpoint on
port 4317 (see :mod:`spanmeter.otel_exporter.env_plan`)."""

SPANMETER_EXPORT_TIMEOUT: Final = "SPANMETER_EXPORT_TIMEOUT"
"""Seconds one export (retries included) may take before its batch is given up. Short by
default (``2``) so a slow receiver never holds spans, threads or memory for long."""

SPANMETER_USER_ID_HASH_KEY: Final = "SPANMETER_USER_ID_HASH_KEY"
"""Secret key for hashing user ids (HMAC-SHA256). Use the same value in every service of a
deployment so a user maps to one id. Unset: a public default key, with a warning."""

SPANMETER_DATA_MODE_ENV: Final = "SPANMETER_DATA_MODE"
"""Default data mode stamped on spans with none: ``real``, ``test`` or ``demo``. The one
constant here not named exactly after its variable: ``SPANMETER_DATA_MODE`` is already the
attribute key ``spanmeter.data_mode`` in :mod:`spanmeter.semantic_conventions`, and one name
must never mean two values."""

SPANMETER_ENVIRONMENT: Final = "SPANMETER_ENVIRONMENT"
"""``deployment.environment.name`` stamped on GenAI spans whose span and resource carry none
(see :mod:`spanmeter.otel_exporter.span_defaults`)."""

SPANMETER_PRICING_FILE: Final = "SPANMETER_PRICING_FILE"
"""Path of the price override file (YAML): custom models, aliases, discounts; the shape is
documented in :mod:`spanmeter.pricing.overrides`. Unset: genai-prices list prices only. A
file that is missing or invalid is logged as a warning and list prices apply (a server can
ask for ``PriceBook.from_env(strict=True)`` to refuse to start instead)."""

SPANMETER_OPENAI_USAGE_DETAILS: Final = "SPANMETER_OPENAI_USAGE_DETAILS"
"""``true`` (default) or ``false``: record on OpenAI spans the cached-prompt and reasoning
token counts the official instrumentation omits, so cached input is priced at its rate."""

SPANMETER_CONFIG: Final = "SPANMETER_CONFIG"
"""Path of the receiver's YAML config file (keys as the ``spanmeter serve`` options)."""

SPANMETER_DB_PATH: Final = "SPANMETER_DB_PATH"
"""Path of the embedded SQLite store. Default: ``./spanmeter.db``."""

SPANMETER_API_KEY: Final = "SPANMETER_API_KEY"
"""An API key (``spanmeter keys create``) sent as ``Authorization: Bearer <key>`` by the CLI to
a receiver's JSON API (``--url``; ``--api-key`` wins), by ``BudgetGuard`` (``api_key=`` wins),
and by ``spanmeter.configure()`` and the ``spanmeter`` exporter on every OTLP export
(``api_key=`` wins); needed once the receiver's store holds a key. Other OTel exporters send
theirs the OTel way: ``OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<key>``."""

SPANMETER_STORE: Final = "SPANMETER_STORE"
"""The store: a SQLite file path, or a ``postgresql://user:password@host:5432/db`` URL for
several receiver replicas on one database (needs ``spanmeter[postgres]``). Wins over
``SPANMETER_DB_PATH`` when both are set."""

SPANMETER_HOST: Final = "SPANMETER_HOST"
"""Address the receiver binds. Default: ``127.0.0.1`` (set ``0.0.0.0`` in a container)."""

SPANMETER_GRPC_PORT: Final = "SPANMETER_GRPC_PORT"
"""OTLP/gRPC port of the receiver. Default: ``4317``; ``0`` picks a free port."""

SPANMETER_HTTP_PORT: Final = "SPANMETER_HTTP_PORT"
"""OTLP/HTTP port, also serving ``/metrics``, ``/api/v1`` and health. Default ``4318``."""

SPANMETER_MAX_BODY_MB: Final = "SPANMETER_MAX_BODY_MB"
"""Largest OTLP request accepted, after decompression, in MiB. Default: ``64``."""

SPANMETER_API_WORKERS: Final = "SPANMETER_API_WORKERS"
"""JSON API requests (paths under ``/api/``) the receiver runs at once, on threads of their
own, apart from OTLP ingest's; one more is answered ``429`` with ``Retry-After``. Default: ``2``."""

SPANMETER_API_TIMEOUT: Final = "SPANMETER_API_TIMEOUT"
"""Seconds a JSON API request may run before it is answered ``503`` with ``Retry-After`` (the
query itself finishes in the background, holding its place under ``SPANMETER_API_WORKERS``).
Default: ``30``."""

SPANMETER_INGEST_RATE_LIMIT: Final = "SPANMETER_INGEST_RATE_LIMIT"
"""Spans per second each ingest key may export when it has no ``--rate-limit`` of its own;
more are answered ``429`` / ``RESOURCE_EXHAUSTED`` with a retry delay. Default: no limit."""

SPANMETER_TLS_CERT: Final = "SPANMETER_TLS_CERT"
"""PEM certificate (chain) the receiver presents on both ports, OTLP/gRPC and HTTP (OTLP, API,
``/metrics``, health); needs ``SPANMETER_TLS_KEY``. Unset: both ports speak plain text."""

SPANMETER_TLS_KEY: Final = "SPANMETER_TLS_KEY"
"""PEM private key of ``SPANMETER_TLS_CERT``."""

SPANMETER_TLS_CLIENT_CA: Final = "SPANMETER_TLS_CLIENT_CA"
"""PEM CA certificate(s) that sign the clients' certificates: with it, both ports require a
client certificate signed by one of them (mutual TLS) and refuse connections without one.
Needs ``SPANMETER_TLS_CERT``."""

SPANMETER_RAW_RETENTION_DAYS: Final = "SPANMETER_RAW_RETENTION_DAYS"
"""Days raw request rows are kept. Default: ``30``."""

SPANMETER_ROLLUP_RETENTION_DAYS: Final = "SPANMETER_ROLLUP_RETENTION_DAYS"
"""Days rollups are kept. Default: ``400``."""

SPANMETER_MAX_PENDING_ROWS: Final = "SPANMETER_MAX_PENDING_ROWS"
"""Rows the ingest queue holds before answering 503/UNAVAILABLE with Retry-After."""

SPANMETER_STORE_PROCESS: Final = "SPANMETER_STORE_PROCESS"
"""``true`` (default): the receiver commits in a separate store process, so decoding and
storing use two cores; ``false``: a writer thread in the receiver process."""

SPANMETER_BUDGETS_FILE: Final = "SPANMETER_BUDGETS_FILE"
"""Path of the budgets and alerts file (YAML) that ``spanmeter serve`` loads and watches:
budgets, alert rules, delivery channels (see :mod:`spanmeter.budgets.config`). Unset: no
budgets are counted; the alerts API still answers."""

SPANMETER_URL: Final = "SPANMETER_URL"
"""Base URL of a running receiver's API (``http://spanmeter:4318``), used by
:class:`spanmeter.BudgetGuard` and by every CLI command that reads a store, when neither
``--url`` nor ``--db`` is given."""

SPANMETER_METRICS_TOP_TENANTS: Final = "SPANMETER_METRICS_TOP_TENANTS"
"""Tenants that get their own ``tenant`` label on the cost counters of ``/metrics``; every
other tenant is counted under ``tenant="other"``. Default: ``20``; ``0`` labels none."""

SPANMETER_METRICS_MAX_LABEL_SETS: Final = "SPANMETER_METRICS_MAX_LABEL_SETS"
"""Label sets of the ``/metrics`` cost counters before new ones are folded into ``other``
(endpoint, prompt version, provider, model and environment come from clients, so one client
could otherwise add a series per span). Default: ``2000``; the overflow is counted in
``spanmeter_metrics_label_overflow_total``."""

SPANMETER_METRICS_AUTH: Final = "SPANMETER_METRICS_AUTH"
"""``true``: ``GET /metrics`` needs a ``read`` (or ``admin``) API key as
``Authorization: Bearer <key>`` once a key exists (Prometheus' ``authorization`` block).
Default: ``false`` (``/healthz`` and ``/readyz`` are always open)."""
