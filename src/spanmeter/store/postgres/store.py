""":class:`PostgresStore`: the store on a shared PostgreSQL database, for several receiver
replicas at once.

Concurrency model: writes go through one connection of this process's (the group-commit
writer is its only user), each batch group in one transaction; reads take a connection
from a small pool, each answer one statement. Replicas coordinate through the database
alone: unique keys make a re-delivered span and a logical request count once
(:mod:`.writer`), and advisory locks keep migrations, partition creation, compaction and
retention to one replica at a time (:mod:`.schema`).

While the database is unreachable, writes raise :class:`~spanmeter.store.api.StoreBusy`,
which the receiver answers with OTLP's retryable statuses; the next write reconnects.

Example::

    with PostgresStore("postgresql://spanmeter@db:5432/spanmeter") as store:
        store.write_batch(rows)
        store.top("tenant_id", start_ns, end_ns)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import MappingProxyType
from typing import Any, Final

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ...timeunits import NS_PER_DAY, NS_PER_SECOND
from ..analysis_types import RepriceAudit, RepricedRow
from ..api import RetentionResult, StoreBusy, StoreStats, WriteResult
from ..audit_log import repricing_applied
from ..batches import check_batches
from ..facade import StoreFacade
from ..ledger import LedgerHook
from ..rows import SpanRow
from . import analysis_writes, budget_ledger, queries
from .api_keys import PostgresKeysMixin
from .audit import PostgresAuditMixin, insert_audit_event
from .budget_store import DEFAULT_CLAIM_S, PostgresBudgetStore
from .leader import AdvisoryLeader
from .schema import ensure_partitions, migrate
from .sql_text import sql
from .transfer import PostgresTransferMixin
from .writer import write_rows

__all__ = ["PostgresStore"]

_logger = logging.getLogger(__name__)

_NO_FILTERS: Final[Mapping[str, str]] = MappingProxyType({})
_CONNECT_TIMEOUT_S: Final = 5
_RETRY_AFTER_S: Final = 2.0
_AVAILABLE_TTL_S: Final = 1.0
_POOL_TIMEOUT_S: Final = 10.0
"""Longest wait for a pooled connection (the pool's own default is 30 s): a read or budget
write waiting longer sees the database as unavailable."""
_AVAILABLE_TIMEOUT_S: Final = 2.0
_DAYS_AHEAD: Final = 1
"""Day partitions made ahead of the current day, so the first batch after midnight finds
its partition ready."""

_READ_WORK_MEM: Final = "64MB"
"""``work_mem`` of the read connections. A ranking groups every value of its dimension in
one hash aggregate with six sums a group; at PostgreSQL's default of 4 MB, ranking 10,000
users over 30 days spilled to disk and took 1.3 s of the statement's 1.4 s (``EXPLAIN
ANALYZE``, ``bench/query.py``). The setting is per sort or hash node of one statement, and
the pool holds a few connections, so the worst case stays a few hundred MB, on the
database server, and only while such a ranking runs. The write connection keeps the
server's default: its statements group one batch or one bucket."""

Conn = psycopg.Connection[tuple[Any, ...]]


def _configure_reader(conn: Conn) -> None:
    """Session settings of a new read connection (the pool's ``configure``): ``work_mem``
    (:data:`_READ_WORK_MEM`), and no parallel workers. A ranking reads tens of thousands of
    tier rows; starting workers and gathering their groups cost more than they save, and
    they compete with ingest for the database's cores: ranking 10,000 users over 30 days
    on ``bench/query.py``'s store took 70-140 ms (five runs) without workers, 125-290 ms
    with two, on 2 busy cores."""
    conn.execute(sql(f"SET work_mem = '{_READ_WORK_MEM}'"))
    conn.execute("SET max_parallel_workers_per_gather = 0")


def _redacted(url: str) -> str:
    """The URL without its password, for logs and errors."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://…"
    return f"postgresql://{info.get('user', '')}@{info.get('host', '')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


class PostgresStore(StoreFacade[Conn], PostgresTransferMixin, PostgresKeysMixin, PostgresAuditMixin):
    """Spans, rollups and queries in one PostgreSQL database (migrated on open).

    Args:
        url: A ``postgresql://user:password@host:port/database`` URL (libpq's conninfo
            forms work too).
        min_readers: Read connections kept open; up to four times as many are opened
            under load.
        claim_s: How long an alert delivery claimed by this replica's outbox worker is
            kept from the other replicas' (see :mod:`.alerts`).

    Raises:
        psycopg.OperationalError: the database cannot be reached at start.
    """

    _queries = queries
    _analysis_queries = queries
    _analysis_writes = analysis_writes
    _budget_ledger = budget_ledger

    def __init__(self, url: str, *, min_readers: int = 1, claim_s: float = DEFAULT_CLAIM_S) -> None:
        self._url = url
        self.location = _redacted(url)
        """The database's URL without its password."""
        self._write_lock = threading.Lock()
        self._writer: Conn | None = None
        self._days: set[int] = set()
        self._closed = False
        self._availability: tuple[float, bool] = (-_AVAILABLE_TTL_S, True)
        conn = self._connect()
        try:
            applied = migrate(conn)
        finally:
            conn.close()
        if applied:
            _logger.info("spanmeter: %s migrated: %s", self.location, ", ".join(applied))
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=min_readers,
            max_size=max(4, min_readers * 4),
            kwargs={"autocommit": True, "connect_timeout": _CONNECT_TIMEOUT_S},
            # a connection the server closed (a restart) is replaced when taken, not handed
            # to a query that would fail on it: one empty round trip per read
            check=ConnectionPool.check_connection,
            configure=_configure_reader,
            open=True,
            name="spanmeter-readers",
        )
        # budgets and alerts (spanmeter.budgets): an optional hook run in every write transaction
        self._ledger: LedgerHook | None = None
        self._leader = AdvisoryLeader(url)
        self._budget_store = PostgresBudgetStore(
            self._pooled_transaction, self._reader, self._leader, claim_s=claim_s
        )

    def _connect(self) -> Conn:
        return psycopg.connect(self._url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S)

    # -- writes -------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Generator[Conn, None, None]:
        """The write lock plus one transaction on the write connection, reconnecting first if
        the last one broke. A lost connection becomes :class:`StoreBusy` (retry later):
        nothing of the transaction was committed, or it was and the retry is a re-delivery."""
        with self._write_lock:
            if self._closed:
                raise RuntimeError("store is closed")
            try:
                conn = self._writer
                if conn is None or conn.closed or conn.broken:
                    conn = self._writer = self._connect()
                with conn.transaction():
                    yield conn
            except psycopg.OperationalError as error:
                self._drop_writer()
                raise StoreBusy(
                    f"database unavailable: {error}".strip(), retry_after_s=_RETRY_AFTER_S
                ) from error

    def _drop_writer(self) -> None:
        conn, self._writer = self._writer, None
        if conn is not None:
            conn.close()

    def write_batches(self, batches: Sequence[Sequence[SpanRow]]) -> list[WriteResult]:
        """Store several batches in one transaction; one result per batch, in order."""
        if not any(batches):
            return [WriteResult() for _ in batches]
        check_batches(batches)  # before the transaction: a refused batch fails alone
        self._ensure_days(
            row.start_time_ns // NS_PER_DAY for batch in batches for row in batch if row.start_time_ns > 0
        )
        with self._transaction() as conn:
            return write_rows(conn, batches, self._apply_ledger if self._ledger is not None else None)

    def _ensure_days(self, days: Iterator[int] | Sequence[int]) -> None:
        """Make sure the day partitions of these rows (and of today and tomorrow) exist.

        Only days near now get a partition; rows far from it go to the default partition
        (a clock decades off must not create a partition per row).
        """
        today = time.time_ns() // NS_PER_DAY
        wanted = {day for day in days if abs(day - today) <= 60} | {
            today + ahead for ahead in range(_DAYS_AHEAD + 1)
        }
        missing = wanted - self._days
        if not missing:
            return
        with self._write_lock:
            try:
                conn = self._writer
                if conn is None or conn.closed or conn.broken:
                    conn = self._writer = self._connect()
                self._days |= ensure_partitions(conn, missing)
            except psycopg.OperationalError as error:
                self._drop_writer()
                raise StoreBusy(
                    f"database unavailable: {error}".strip(), retry_after_s=_RETRY_AFTER_S
                ) from error

    def available(self) -> bool:
        """Does the database answer? ``SELECT 1`` on a pooled connection, at most once per
        :data:`_AVAILABLE_TTL_S` (probes come every few seconds from every orchestrator);
        False while it is down or the pool cannot hand out a connection quickly."""
        now = time.monotonic()
        checked_at, answer = self._availability
        if now - checked_at < _AVAILABLE_TTL_S:
            return answer
        try:
            with self._pool.connection(timeout=_AVAILABLE_TIMEOUT_S) as conn:
                conn.execute("SELECT 1")
            answer = True
        except Exception:  # any failure means not available: this is a probe, never raises
            answer = False
        self._availability = (now, answer)
        return answer

    # -- budgets and alerts (spanmeter.budgets) ---------------------------------------------

    @contextmanager
    def _pooled_transaction(self) -> Generator[Conn, None, None]:
        """One short transaction on a pooled connection (budget and alert writes: they never
        wait behind an ingest batch)."""
        with self._reader() as conn, conn.transaction():
            yield conn

    def _short_transaction(self) -> AbstractContextManager[Conn]:
        """An API key's or an audit entry's transaction: a pooled one, as budgets' writes."""
        return self._pooled_transaction()

    # -- reads --------------------------------------------------------------------------

    @contextmanager
    def _reader(self) -> Generator[Conn, None, None]:
        """A pooled connection; the database unreachable becomes :class:`StoreBusy` (the
        callers' loops log an outage once and retry, and the API answers retry-later)."""
        if self._closed:
            raise RuntimeError("store is closed")
        try:
            with self._pool.connection(timeout=_POOL_TIMEOUT_S) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as error:
            raise StoreBusy(f"database unavailable: {error}".strip(), retry_after_s=_RETRY_AFTER_S) from error

    def _reading(self) -> AbstractContextManager[Conn]:
        return self._reader()

    def stats(self) -> StoreStats:
        """Row counts and the database's size."""
        with self._reader() as conn:
            return queries.stats(conn)

    # -- re-pricing and revenue ------------------------------------------------------------

    def _record_repricing(
        self, changes: Sequence[RepricedRow], audit: RepriceAudit, actor: str
    ) -> RepriceAudit:
        with self._transaction() as conn:
            audit = analysis_writes.record_repricing(conn, audit, changes)
            insert_audit_event(conn, repricing_applied(audit, actor))
            return audit

    # -- maintenance ----------------------------------------------------------------------

    def apply_retention(self, now_ns: int, *, raw_days: int, rollup_days: int) -> RetentionResult:
        """Drop the day partitions of raw rows older than ``raw_days``, delete older rows of
        the default partition, their logical keys and provider calls, and rollups older
        than ``rollup_days``; see :mod:`.maintenance`."""
        from .maintenance import apply_retention

        with self._transaction() as conn:
            result = apply_retention(conn, now_ns, raw_days=raw_days, rollup_days=rollup_days)
        self._days = {day for day in self._days if day * NS_PER_DAY >= now_ns - raw_days * NS_PER_DAY}
        return result

    def compact_rollups(self, now_ns: int | None = None, *, max_buckets: int = 16) -> int:
        """Merge the partial rollup rows of closed buckets; see :mod:`.maintenance`."""
        from .maintenance import compact_rollups

        now = time.time_ns() if now_ns is None else now_ns
        with self._transaction() as conn:
            return compact_rollups(conn, now // NS_PER_SECOND, max_buckets=max_buckets)

    def close(self) -> None:
        """Close every connection. Idempotent; a closed store refuses further calls."""
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            self._drop_writer()
        self._leader.close()
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
