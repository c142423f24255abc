"""SQLite schema as ``sqlite_utils`` migrations, and the connection settings that go with it.

Tables (all amounts integer nano-USD, all times Unix ns unless the name says seconds):

``requests``
    One row per GenAI attempt, the columns of :class:`~spanmeter.store.rows.SpanRow`, no
    JSON blobs. Its only secondary index, unique on ``(start_time_ns, span_id, trace_id)``,
    is both the dedupe key and the time index of exports and retention. Leading with the
    start time is what makes it cheap: new spans land at the right edge of the b-tree, so a
    transaction dirties a handful of index pages. A unique index on the random ids alone
    puts every insert on a random page, and a commit writes one page per row (prototype
    on this kind of machine, 45 columns, 512-row transactions, first 1M rows: 29-59k rows/s
    falling as the table grows for ``UNIQUE(trace_id, span_id)``; 27-46k for a separate
    key table on a 64-bit hash of the ids, rowid or WITHOUT ROWID; 110-150k, flat, with
    the start time leading; 190k with no index at all). The index also answers re-deliveries
    fast: a batch of duplicates is checked at ~900k rows/s.
``logical_requests``
    ``external_request_id`` -> event time of its first stored attempt. Insert-or-ignore
    decides which attempt counts the logical request; the time index serves retention.
``rollup_minute`` / ``rollup_hour``
    Additive partial aggregates (see :mod:`spanmeter.store.rollups`), clustered by
    ``(bucket, seq)``: appends land at the end of the current bucket, and a window query is
    one contiguous range scan. ``seq`` numbers the rows within a bucket: positive for partial
    rows appended by the write path and not yet folded into the tiers, negative for the
    merged rows compaction writes back (already folded in). The hourly rollup's negative
    rows are also indexed by user, tenant and endpoint tag (m008, partial indexes the
    write path never touches: :mod:`spanmeter.store.rollup_indexes`).
``rollup_dirty``
    Buckets holding rows with a positive ``seq``, i.e. waiting for compaction.
``rollup_dim_hour`` / ``rollup_dim_day``
    The per-dimension tiers of :mod:`spanmeter.store.tiers`, one row per group, kept with
    ``INSERT ... ON CONFLICT DO UPDATE`` by compaction: off the ingest path, where the
    upsert's scattered page writes do not matter.
``rollup_pair_day`` (m003, :mod:`.tier_migrations`)
    The filter tier of :mod:`spanmeter.store.tiers`: per day, one row per (filter
    dimension, filter value, dimension, value, environment, data_mode), kept by compaction
    like the other tiers. m004 adds ``user_id`` rows (from the hourly rollup) to
    ``rollup_dim_hour``; both migrations fold in the rows compaction had already folded.
``budget_spend`` / ``budget_rolling`` / ``budget_episode`` / ``budget_counters`` (m002)
    Budget counters kept inside the ingest transaction (:mod:`.budget_ledger`): one row per
    (counter, calendar window, scope key), keyed in that order so a status page reads one
    window of one budget as a single range; hourly buckets of rolling budgets keyed by
    scope key first, so a rolling total is a short range; the alerted level of a rolling
    budget's open episode; and the name behind each integer counter id.
``alert_events`` / ``alert_history`` / ``alert_outbox`` / ``alert_rule_state`` (m002)
    The alerts inbox (unique ``dedupe_key``: an alert fires once), its state history, one
    delivery row per (event, channel), and the open episodes of scheduled alert rules
    (:mod:`.alerts`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from .migration_db import MigrationDB

__all__ = ["MIGRATIONS", "check_current", "connect", "open_database", "store_problem"]

MIGRATIONS: Final = Migrations("spanmeter")
"""The schema history. Never edit an applied migration: add a new one."""

_CACHE_KIB: Final = 64 * 1024
"""Page cache of the write connection: the hot end of every table and index stays in memory."""
_READ_CACHE_KIB: Final = 16 * 1024
_MMAP_BYTES: Final = 256 * 1024 * 1024
"""Memory-mapped reads make rollup scans cheaper; the OS shares the pages between connections."""
_BUSY_TIMEOUT_MS: Final = 5000
_CHECKPOINT_PAGES: Final = 10_000
"""Checkpoint the write-ahead log every ~40 MB instead of SQLite's default ~4 MB: each
checkpoint ends with an fsync, and pages rewritten by several transactions are copied
once. Measured +10-15% rows/s on the realistic write benchmark, close to the figure with
``synchronous=OFF``; the price is a longer commit every few seconds under load."""
_JOURNAL_SIZE_LIMIT: Final = 64 * 1024 * 1024
"""Truncate the write-ahead log back to this after a checkpoint, so a burst does not leave
a large file behind."""


def connect(path: str | Path, *, read_only: bool = False, file_read_only: bool = False) -> sqlite3.Connection:
    """Open one connection with the settings every spanmeter connection uses.

    WAL lets readers run beside the single writer; ``synchronous=NORMAL`` in WAL mode keeps
    every commit atomic and durable across a process crash (only an OS crash or power cut
    can lose the last transactions), at a fraction of the cost of an fsync per commit.
    ``check_same_thread=False`` because the store hands connections between threads under
    its own locks. ``read_only``: a reader (``query_only``, a smaller cache);
    ``file_read_only``: also opened ``mode=ro``, so SQLite itself refuses any write, whatever
    runs on it (the query processes' connections, see :class:`~.store.SQLiteStore`).
    """
    if file_read_only:
        read_only = True
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), check_same_thread=False)
    cache_kib = _READ_CACHE_KIB if read_only else _CACHE_KIB
    for pragma in (
        f"busy_timeout = {_BUSY_TIMEOUT_MS}",
        "synchronous = NORMAL",
        f"cache_size = -{cache_kib}",
        "temp_store = MEMORY",
        f"mmap_size = {_MMAP_BYTES}",
    ):
        conn.execute(f"PRAGMA {pragma}")
    if read_only:
        conn.execute("PRAGMA query_only = 1")
    return conn


def store_problem(path: str | Path) -> str | None:
    """Why the file at ``path`` cannot be opened as a spanmeter store, or None when it can
    (a spanmeter store, or no file or an empty one: a new store).

    Opened read-only, so a file that is not ours is never changed: opening it as a store
    would add the spanmeter tables to someone else's database.
    """
    target = Path(path)
    if not target.exists() or (target.is_file() and target.stat().st_size == 0):
        return None
    if not target.is_file():
        return f"{path} is not a file"
    try:
        conn = sqlite3.connect(f"{target.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        return f"cannot open {path}: {error}"
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"_sqlite_migrations", "requests"} <= names:
            return f"{path} is a SQLite database but not a spanmeter store"
        applied = conn.execute("SELECT count(*) FROM _sqlite_migrations WHERE migration_set = 'spanmeter'")
        if not applied.fetchone()[0]:
            return f"{path} is a SQLite database but not a spanmeter store"
    except sqlite3.DatabaseError as error:
        return f"{path} is not a spanmeter store ({error})"
    finally:
        conn.close()
    return None


def check_current(path: str | Path) -> None:
    """Raise unless ``path`` is a spanmeter store with every migration applied (read with a
    ``mode=ro`` connection): a read-only open can neither create nor migrate it.

    Raises:
        RuntimeError: missing, not a spanmeter store, or one that needs migrating.
    """
    problem = store_problem(path)
    if problem is None and not Path(path).is_file():
        problem = f"{path} does not exist"
    if problem is not None:
        raise RuntimeError(f"cannot open the store read-only: {problem}")
    conn = connect(path, file_read_only=True)
    try:
        pending = [migration.name for migration in MIGRATIONS.pending(Database(conn, execute_plugins=False))]
    finally:
        conn.close()
    if pending:
        raise RuntimeError(
            f"cannot open the store {str(path)!r} read-only: it needs migrating"
            f" ({', '.join(pending)}); open it for writing once (spanmeter serve does)"
        )


def open_database(path: str | Path) -> Database:
    """Open the write connection, switch the file to WAL and apply pending migrations."""
    conn = connect(path)
    # journal_mode must be set outside a transaction; it is persistent in the file.
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        conn.close()
        raise RuntimeError(f"cannot switch {str(path)!r} to WAL mode (got {mode!r})")
    conn.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_PAGES}")
    # Plugins could change this connection's behaviour behind the store's back.
    db = Database(conn, execute_plugins=False)
    MIGRATIONS.apply(db)
    return db


_M001_MEASURE_COLUMNS: Final = (
    "attempts INTEGER NOT NULL, logical_requests INTEGER NOT NULL, cost_nano_usd INTEGER NOT NULL,"
    " input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,"
    " cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,"
    " reasoning_tokens INTEGER NOT NULL, errors INTEGER NOT NULL, unpriced INTEGER NOT NULL,"
    " latency_ms_sum REAL NOT NULL, latency_count INTEGER NOT NULL"
)
"""The measure columns of m001's rollup tables, all three alike. Written out, not built from
:data:`spanmeter.store.rollups.MEASURES`, so that m001 stays what it was when applied."""


@MIGRATIONS(name="m001_initial")
def m001_initial(db: MigrationDB) -> None:
    """Requests, dedupe, logical requests and the minute/hour rollups.

    The DDL is spelled out rather than generated from :mod:`spanmeter.store.rollups` so
    that this migration stays what it was when applied; a test checks they agree.
    """
    db.execute(
        """
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            trace_id BLOB NOT NULL,
            span_id BLOB NOT NULL,
            start_time_ns INTEGER NOT NULL,
            end_time_ns INTEGER,
            received_at_ns INTEGER NOT NULL,
            service_name TEXT,
            provider TEXT,
            request_model TEXT,
            response_model TEXT,
            model TEXT,
            operation TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cache_read_tokens INTEGER,
            cache_write_tokens INTEGER,
            reasoning_tokens INTEGER,
            endpoint_tag TEXT,
            prompt_name TEXT,
            prompt_version TEXT,
            tenant_id TEXT,
            user_id TEXT,
            external_request_id TEXT,
            data_mode TEXT NOT NULL,
            environment TEXT,
            session_id TEXT,
            outcome TEXT NOT NULL,
            error_type TEXT,
            latency_ms REAL,
            cost_nano_usd INTEGER,
            input_cost_nano_usd INTEGER,
            output_cost_nano_usd INTEGER,
            cache_read_cost_nano_usd INTEGER,
            cache_write_cost_nano_usd INTEGER,
            reasoning_cost_nano_usd INTEGER,
            pricing_status TEXT NOT NULL,
            pricing_source TEXT,
            pricing_source_version TEXT,
            pricing_provider TEXT,
            pricing_model TEXT,
            pricing_effective_date TEXT,
            billable INTEGER NOT NULL,
            issues TEXT
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX requests_delivery ON requests (start_time_ns, span_id, trace_id)")
    db.execute(
        "CREATE TABLE logical_requests"
        " (external_request_id TEXT PRIMARY KEY, first_start_ns INTEGER NOT NULL) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX logical_requests_first_start ON logical_requests (first_start_ns)")
    db.execute(
        f"""
        CREATE TABLE rollup_minute (
            minute INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            endpoint_tag TEXT NOT NULL,
            prompt_version TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            tenant_id TEXT NOT NULL,
            environment TEXT NOT NULL,
            data_mode TEXT NOT NULL,
            outcome TEXT NOT NULL,
            {_M001_MEASURE_COLUMNS},
            PRIMARY KEY (minute, seq)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        f"""
        CREATE TABLE rollup_hour (
            hour INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            tenant_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            endpoint_tag TEXT NOT NULL,
            environment TEXT NOT NULL,
            data_mode TEXT NOT NULL,
            {_M001_MEASURE_COLUMNS},
            PRIMARY KEY (hour, seq)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        "CREATE TABLE rollup_dirty (table_name TEXT NOT NULL, bucket INTEGER NOT NULL,"
        " PRIMARY KEY (table_name, bucket)) WITHOUT ROWID"
    )
    for tier in ("hour", "day"):
        db.execute(
            f"""
            CREATE TABLE rollup_dim_{tier} (
                dimension TEXT NOT NULL,
                {tier} INTEGER NOT NULL,
                value TEXT NOT NULL,
                environment TEXT NOT NULL,
                data_mode TEXT NOT NULL,
                {_M001_MEASURE_COLUMNS},
                PRIMARY KEY (dimension, {tier}, value, environment, data_mode)
            ) WITHOUT ROWID
            """
        )


@MIGRATIONS(name="m002_budgets_alerts")
def m002_budgets_alerts(db: MigrationDB) -> None:
    """Budget counters, the alerts inbox with its history, the delivery outbox, rule episodes.

    Counter rows are kept as small as possible (an integer counter id, no window end), because
    every ingest transaction rewrites the pages holding the counters it touches: with 1,000
    per-tenant budgets a 512-span transaction touches ~175 of them, spread over every page
    of the table, and each page goes to the write-ahead log on commit.
    """
    db.execute("CREATE TABLE budget_counters (id INTEGER PRIMARY KEY, counter TEXT NOT NULL)")
    db.execute(
        """
        CREATE TABLE budget_spend (
            counter_id INTEGER NOT NULL,
            bucket_start_ns INTEGER NOT NULL,
            scope_key TEXT NOT NULL,
            cost_nano_usd INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            unpriced INTEGER NOT NULL,
            alerted_level INTEGER NOT NULL DEFAULT 0,
            forecast_alerted INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (counter_id, bucket_start_ns, scope_key)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE budget_rolling (
            counter_id INTEGER NOT NULL,
            scope_key TEXT NOT NULL,
            bucket_start_ns INTEGER NOT NULL,
            cost_nano_usd INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            unpriced INTEGER NOT NULL,
            PRIMARY KEY (counter_id, scope_key, bucket_start_ns)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE budget_episode (
            counter_id INTEGER NOT NULL,
            scope_key TEXT NOT NULL,
            alerted_level INTEGER NOT NULL,
            forecast_alerted INTEGER NOT NULL,
            since_ns INTEGER NOT NULL,
            PRIMARY KEY (counter_id, scope_key)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE alert_events (
            id INTEGER PRIMARY KEY,
            dedupe_key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            source TEXT NOT NULL,
            subject TEXT NOT NULL,
            title TEXT NOT NULL,
            state TEXT NOT NULL,
            occurred_at_ns INTEGER NOT NULL,
            updated_at_ns INTEGER NOT NULL,
            window_start_ns INTEGER,
            window_end_ns INTEGER,
            details TEXT NOT NULL,
            context TEXT
        )
        """
    )
    db.execute("CREATE INDEX alert_events_state ON alert_events (state, window_end_ns)")
    db.execute(
        """
        CREATE TABLE alert_history (
            id INTEGER PRIMARY KEY,
            event_id INTEGER NOT NULL REFERENCES alert_events (id),
            at_ns INTEGER NOT NULL,
            state TEXT NOT NULL,
            actor TEXT NOT NULL,
            note TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX alert_history_event ON alert_history (event_id)")
    db.execute(
        """
        CREATE TABLE alert_outbox (
            event_id INTEGER NOT NULL REFERENCES alert_events (id),
            channel TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_ns INTEGER NOT NULL,
            last_error TEXT,
            delivered_at_ns INTEGER,
            PRIMARY KEY (event_id, channel)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX alert_outbox_due ON alert_outbox (state, next_attempt_ns)")
    db.execute(
        """
        CREATE TABLE alert_rule_state (
            rule TEXT NOT NULL,
            subject TEXT NOT NULL,
            event_id INTEGER NOT NULL,
            since_ns INTEGER NOT NULL,
            PRIMARY KEY (rule, subject)
        ) WITHOUT ROWID
        """
    )


@MIGRATIONS(name="m007_same_call_columns")
def m007_same_call_columns(db: MigrationDB) -> None:
    """``requests`` gains the provider's response id; for a span that describes the same
    provider call as another one, the id of that span and the reason
    (:mod:`spanmeter.normalise.same_call`); and the instrumentation scope (name,
    version) that emitted the span. Added columns are NULL in old rows: SQLite adds them
    without rewriting the table. ``provider_calls`` remembers which span carries each
    provider call (:mod:`.provider_calls`)."""
    for column in ("response_id", "duplicate_of", "not_billable_reason", "scope_name", "scope_version"):
        db.execute(f"ALTER TABLE requests ADD COLUMN {column} TEXT")
    db.execute(
        "CREATE TABLE provider_calls (minute INTEGER NOT NULL, call_key BLOB NOT NULL,"
        " trace_id BLOB NOT NULL, span_id BLOB NOT NULL, PRIMARY KEY (minute, call_key)) WITHOUT ROWID"
    )
