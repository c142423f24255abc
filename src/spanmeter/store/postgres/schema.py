"""The PostgreSQL schema and its migrations, applied by one replica at a time.

Types follow the SQLite schema column for column (``bytea`` ids, ``bigint`` integers and
nano-USD, ``double precision`` latency), so a row reads back the same from either store
and ``spanmeter store copy`` moves values as they are.

Differences that PostgreSQL's concurrency asks for:

* ``requests`` is partitioned by day of ``start_time_ns`` (:func:`ensure_partitions`), so
  retention drops whole partitions; rows outside any day partition (no start time, or a
  start far from now) land in the default partition and are deleted row by row.
* Rollup rows are appended with an identity key instead of a per-bucket ``seq``: several
  replicas append to the same bucket at once, and a shared counter would serialise them.
* Whether a rollup row is already in the coarse tiers is a ``folded`` flag, not the sign
  of a sequence number (``m009_tiers``, :mod:`.tier_schema`); the indexes of the hourly
  rollup's compacted rows by a filter dimension are partial on it (``m010``,
  :mod:`spanmeter.store.rollup_indexes`).
* Migrations run under a transaction-scoped advisory lock: a replica that starts while
  another migrates waits for it, then finds nothing left to do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

from ...timeunits import NS_PER_DAY
from ..rollups import HOUR, MEASURES, MINUTE, RollupSpec
from .api_keys import add_api_key_rate_limit, create_api_keys
from .audit import create_audit_log
from .grafana_views import create_views
from .sql_text import sql
from .tier_schema import create_filter_indexes, create_tiers

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "BUDGET_SCOPE_LOCKS",
    "COMPACTION_LOCK",
    "LEADER_LOCKS",
    "MIGRATIONS",
    "MIGRATION_LOCK",
    "PARTITION_LOCK",
    "RETENTION_LOCK",
    "RULE_LOCKS",
    "ensure_partitions",
    "migrate",
    "partition_day",
    "partition_name",
]

MIGRATION_LOCK: Final = 0x5350_4D01
"""Advisory lock key held while migrating (``SPM`` + 1)."""
PARTITION_LOCK: Final = 0x5350_4D02
"""Advisory lock key held while creating day partitions."""
COMPACTION_LOCK: Final = 0x5350_4D03
"""Advisory lock key held by the replica compacting rollups."""
RETENTION_LOCK: Final = 0x5350_4D04
"""Advisory lock key held by the replica applying retention."""
BUDGET_SCOPE_LOCKS: Final = 0x5350_4D05
"""First half of the two-key advisory locks serialising one rolling budget key's
transactions (the second half hashes the counter and scope key)."""
RULE_LOCKS: Final = 0x5350_4D06
"""First half of the two-key advisory locks serialising one alert rule's evaluations."""
LEADER_LOCKS: Final = 0x5350_4D07
"""First half of the two-key session advisory locks held by the leader of a cluster-wide job."""

_REQUEST_COLUMNS: Final = """
    id bigint GENERATED ALWAYS AS IDENTITY,
    trace_id bytea NOT NULL,
    span_id bytea NOT NULL,
    start_time_ns bigint NOT NULL,
    end_time_ns bigint,
    received_at_ns bigint NOT NULL,
    service_name text,
    provider text,
    request_model text,
    response_model text,
    model text,
    operation text,
    input_tokens bigint,
    output_tokens bigint,
    cache_read_tokens bigint,
    cache_write_tokens bigint,
    reasoning_tokens bigint,
    endpoint_tag text,
    prompt_name text,
    prompt_version text,
    tenant_id text,
    user_id text,
    external_request_id text,
    data_mode text NOT NULL,
    environment text,
    session_id text,
    outcome text NOT NULL,
    error_type text,
    latency_ms double precision,
    cost_nano_usd bigint,
    input_cost_nano_usd bigint,
    output_cost_nano_usd bigint,
    cache_read_cost_nano_usd bigint,
    cache_write_cost_nano_usd bigint,
    reasoning_cost_nano_usd bigint,
    pricing_status text NOT NULL,
    pricing_source text,
    pricing_source_version text,
    pricing_provider text,
    pricing_model text,
    pricing_effective_date text,
    billable boolean NOT NULL,
    issues text,
    response_id text,
    duplicate_of text,
    not_billable_reason text,
    scope_name text,
    scope_version text
"""


def _rollup_ddl(spec: RollupSpec) -> str:
    dimensions = "".join(f"    {name} text NOT NULL,\n" for name in spec.dimensions)
    measures = "".join(
        f"    {name} {'double precision' if name == 'latency_ms_sum' else 'bigint'} NOT NULL,\n"
        for name in MEASURES
    )
    return (
        f"CREATE TABLE {spec.table} (\n    id bigint GENERATED ALWAYS AS IDENTITY,\n"
        f"    {spec.bucket_column} bigint NOT NULL,\n{dimensions}{measures}"
        f"    PRIMARY KEY ({spec.bucket_column}, id)\n)"
    )


def _m001_initial(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Requests (partitioned by day), dedupe, logical requests, rollups, provider calls."""
    conn.execute(f"CREATE TABLE requests ({_REQUEST_COLUMNS}) PARTITION BY RANGE (start_time_ns)")
    conn.execute("CREATE TABLE requests_default PARTITION OF requests DEFAULT")
    conn.execute("CREATE UNIQUE INDEX requests_delivery ON requests (start_time_ns, span_id, trace_id)")
    conn.execute(
        "CREATE TABLE logical_requests (external_request_id text PRIMARY KEY, first_start_ns bigint NOT NULL)"
    )
    conn.execute("CREATE INDEX logical_requests_first_start ON logical_requests (first_start_ns)")
    for spec in (MINUTE, HOUR):
        conn.execute(sql(_rollup_ddl(spec)))
    conn.execute(
        "CREATE TABLE provider_calls (minute bigint NOT NULL, call_key bytea NOT NULL,"
        " trace_id bytea NOT NULL, span_id bytea NOT NULL, PRIMARY KEY (minute, call_key))"
    )


def _m002_reprice_audit_and_revenue(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """The re-pricing audit trail and imported tenant revenue (as SQLite's
    ``m_analysis_001_reprice_audit_and_revenue``)."""
    conn.execute(
        "CREATE TABLE reprice_audit (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        " applied_at_ns bigint NOT NULL, reason text NOT NULL, window_start_ns bigint NOT NULL,"
        " window_end_ns bigint NOT NULL, rows_changed bigint NOT NULL, cost_before_nano_usd bigint NOT NULL,"
        " cost_after_nano_usd bigint NOT NULL, price_source text NOT NULL, details text NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE reprice_audit_rows (audit_id bigint NOT NULL REFERENCES reprice_audit (id),"
        " start_time_ns bigint NOT NULL, span_id bytea NOT NULL, trace_id bytea NOT NULL,"
        " old_cost_nano_usd bigint, new_cost_nano_usd bigint, old_status text NOT NULL, new_status text NOT NULL)"
    )
    conn.execute("CREATE INDEX reprice_audit_rows_audit ON reprice_audit_rows (audit_id)")
    conn.execute(
        "CREATE TABLE revenue (tenant_id text NOT NULL, period text NOT NULL, start_ns bigint NOT NULL,"
        " end_ns bigint NOT NULL, revenue_nano_usd bigint NOT NULL, imported_at_ns bigint NOT NULL,"
        " PRIMARY KEY (tenant_id, period))"
    )


def _m003_budgets_alerts(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Budget counters, the alerts inbox with its history, the delivery outbox, rule episodes
    (as SQLite's ``m002_budgets_alerts``).

    The outbox has one column SQLite's lacks: ``claimed_until_ns``, how long the replica that
    took a due delivery keeps it to itself (:mod:`.alerts`). ``alert_events.dedupe_key`` is
    unique, so a level crossed by two replicas in the same instant is stored once.
    """
    conn.execute("CREATE TABLE budget_counters (id bigint PRIMARY KEY, counter text NOT NULL)")
    conn.execute(
        "CREATE TABLE budget_spend (counter_id bigint NOT NULL, bucket_start_ns bigint NOT NULL,"
        " scope_key text NOT NULL, cost_nano_usd bigint NOT NULL, attempts bigint NOT NULL,"
        " unpriced bigint NOT NULL, alerted_level integer NOT NULL DEFAULT 0,"
        " forecast_alerted integer NOT NULL DEFAULT 0, PRIMARY KEY (counter_id, bucket_start_ns, scope_key))"
    )
    conn.execute("CREATE INDEX budget_spend_start ON budget_spend (bucket_start_ns)")
    conn.execute(
        "CREATE TABLE budget_rolling (counter_id bigint NOT NULL, scope_key text NOT NULL,"
        " bucket_start_ns bigint NOT NULL, cost_nano_usd bigint NOT NULL, attempts bigint NOT NULL,"
        " unpriced bigint NOT NULL, PRIMARY KEY (counter_id, scope_key, bucket_start_ns))"
    )
    conn.execute("CREATE INDEX budget_rolling_start ON budget_rolling (bucket_start_ns)")
    conn.execute(
        "CREATE TABLE budget_episode (counter_id bigint NOT NULL, scope_key text NOT NULL,"
        " alerted_level integer NOT NULL, forecast_alerted integer NOT NULL, since_ns bigint NOT NULL,"
        " PRIMARY KEY (counter_id, scope_key))"
    )
    conn.execute(
        "CREATE TABLE alert_events (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        " dedupe_key text NOT NULL UNIQUE, kind text NOT NULL, severity text NOT NULL, source text NOT NULL,"
        " subject text NOT NULL, title text NOT NULL, state text NOT NULL, occurred_at_ns bigint NOT NULL,"
        " updated_at_ns bigint NOT NULL, window_start_ns bigint, window_end_ns bigint, details text NOT NULL,"
        " context text)"
    )
    conn.execute("CREATE INDEX alert_events_state ON alert_events (state, window_end_ns)")
    conn.execute(
        "CREATE TABLE alert_history (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        " event_id bigint NOT NULL REFERENCES alert_events (id), at_ns bigint NOT NULL, state text NOT NULL,"
        " actor text NOT NULL, note text NOT NULL)"
    )
    conn.execute("CREATE INDEX alert_history_event ON alert_history (event_id)")
    conn.execute(
        "CREATE TABLE alert_outbox (event_id bigint NOT NULL REFERENCES alert_events (id),"
        " channel text NOT NULL, state text NOT NULL, attempts integer NOT NULL,"
        " next_attempt_ns bigint NOT NULL, last_error text, delivered_at_ns bigint, claimed_until_ns bigint,"
        " PRIMARY KEY (event_id, channel))"
    )
    conn.execute("CREATE INDEX alert_outbox_due ON alert_outbox (state, next_attempt_ns)")
    conn.execute(
        "CREATE TABLE alert_rule_state (rule text NOT NULL, subject text NOT NULL, event_id bigint NOT NULL,"
        " since_ns bigint NOT NULL, PRIMARY KEY (rule, subject))"
    )


def _m004_copy_progress(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """How far ``spanmeter store copy`` got, per part and source (as SQLite's
    ``m_copy_001_copy_progress``)."""
    conn.execute(
        "CREATE TABLE copy_progress (part text NOT NULL, source text NOT NULL, position text NOT NULL,"
        " rows bigint NOT NULL, done boolean NOT NULL, PRIMARY KEY (part, source))"
    )


Migration = Callable[["psycopg.Connection[tuple[object, ...]]"], None]

MIGRATIONS: Final[tuple[tuple[str, Migration], ...]] = (
    ("m001_initial", _m001_initial),
    ("m002_reprice_audit_and_revenue", _m002_reprice_audit_and_revenue),
    ("m003_budgets_alerts", _m003_budgets_alerts),
    ("m004_copy_progress", _m004_copy_progress),
    ("m005_grafana_views", create_views),
    ("m006_api_keys", create_api_keys),
    ("m007_audit_log", create_audit_log),
    ("m008_api_key_rate_limit", add_api_key_rate_limit),
    ("m009_tiers", create_tiers),
    ("m010_compacted_filter_indexes", create_filter_indexes),
)
"""Applied in order, each once, each in the transaction that records it."""


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """Apply the migrations not applied yet; returns their names.

    Runs in one transaction under :data:`MIGRATION_LOCK`: concurrent replicas queue on the
    lock, and each finds the work done by the one before it.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS spanmeter_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {name for (name,) in conn.execute("SELECT name FROM spanmeter_migrations")}
        applied: list[str] = []
        for name, step in MIGRATIONS:
            if name in done:
                continue
            step(conn)
            conn.execute("INSERT INTO spanmeter_migrations (name) VALUES (%s)", (name,))
            applied.append(name)
        return applied


def partition_name(day: int) -> str:
    """The partition of ``requests`` holding day ``day`` (days since the epoch, UTC)."""
    return f"requests_{(dt.date(1970, 1, 1) + dt.timedelta(days=day)).strftime('%Y%m%d')}"


def partition_day(name: str) -> int | None:
    """The day a partition named by :func:`partition_name` holds; None for any other table."""
    try:
        day = dt.datetime.strptime(name.removeprefix("requests_"), "%Y%m%d").date()
    except ValueError:
        return None
    return (day - dt.date(1970, 1, 1)).days


def ensure_partitions(conn: psycopg.Connection[tuple[object, ...]], days: Iterable[int]) -> set[int]:
    """Create the day partitions of ``requests`` that do not exist yet; returns the days
    settled (a partition exists, or the day stays with the default partition).

    Runs in its own short transaction (creating a partition locks its parent) under
    :data:`PARTITION_LOCK`, so two replicas never race to create the same day. Rows already
    in the default partition for a day would block its creation; they stay there (still
    found by every query) and the day is left to the default partition.
    """
    wanted = sorted(set(days))
    if not wanted:
        return set()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
        names = {
            name
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'requests'::regclass"
            )
        }
        for day in wanted:
            name = partition_name(day)
            if name in names:
                continue
            lo, hi = day * NS_PER_DAY, (day + 1) * NS_PER_DAY
            (blocked,) = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM requests_default WHERE start_time_ns >= %s AND start_time_ns < %s)",
                (lo, hi),
            ).fetchone() or (False,)
            if not blocked:
                conn.execute(
                    sql(f"CREATE TABLE {name} PARTITION OF requests FOR VALUES FROM ({lo}) TO ({hi})")
                )
    return set(wanted)
