""":class:`SQLiteStore`: the embedded, single-process implementation of the store interface.

Concurrency model: one write connection behind a lock (SQLite has one writer at a time
anyway; in production the :class:`~spanmeter.store.group_commit.GroupCommitWriter` thread
is its only user), and one read connection per reading thread. In WAL mode readers see
the last committed snapshot and never wait for the writer, so dashboards and budgets do
not slow ingest down.

Example::

    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        store.write_batch(rows)
        store.top("tenant_id", start_ns, end_ns)
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from types import MappingProxyType
from typing import Final

from sqlite_utils import Database

from ..analysis_types import RepriceAudit, RepricedRow
from ..api import RetentionResult, StoreStats, WriteResult
from ..batches import check_batch_ids, check_batches
from ..facade import StoreFacade
from ..ledger import LedgerHook
from ..rows import RowValues, SpanRow
from . import analysis_queries, analysis_writes, budget_ledger, compaction, maintenance, queries
from .api_keys import SQLiteKeysMixin
from .audit import SQLiteAuditMixin
from .budget_store import SQLiteBudgetStore
from .schema import check_current, connect, open_database
from .transfer import SQLiteTransferMixin
from .writer import RowWriter

__all__ = ["ReadOnlyStoreError", "SQLiteStore"]

_logger = logging.getLogger(__name__)

_NO_FILTERS: Final[Mapping[str, str]] = MappingProxyType({})


class ReadOnlyStoreError(RuntimeError):
    """A write on a store opened read-only."""


class SQLiteStore(StoreFacade[sqlite3.Connection], SQLiteTransferMixin, SQLiteKeysMixin, SQLiteAuditMixin):
    """Spans, rollups and queries in one SQLite file (created and migrated on open).

    Args:
        path: Database file. An in-memory database is not supported: readers use their
            own connections, which must all see the same file.
        read_only: Open only readers, ``mode=ro`` (SQLite refuses any write on them), with no
            write connection and no migration: for a process that only queries a store
            another process writes (the API's query processes). Every write raises
            :class:`ReadOnlyStoreError`. Why it matters: a process opened for writing runs
            the migrations check and keeps a write connection it never uses; read-only, it
            can never take the write lock from the store process, whatever a query does.

    Raises:
        ValueError: ``path`` is ``:memory:`` or empty.
        RuntimeError: ``read_only`` and the file is missing, not a spanmeter store, or not
            migrated to this version.
    """

    _queries = queries
    _analysis_queries = analysis_queries
    _analysis_writes = analysis_writes
    _budget_ledger = budget_ledger

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        if str(path) in ("", ":memory:"):
            raise ValueError("SQLiteStore needs a file: an in-memory database cannot be shared by readers")
        self._path = Path(path)
        self._read_only = read_only
        self._db: Database | None = None
        self._conn: sqlite3.Connection | None = None
        if read_only:
            check_current(self._path)
        else:
            self._db = open_database(self._path)
            self._conn = self._db.conn
        self._write_lock = threading.Lock()
        self._writer = RowWriter()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        # budgets and alerts (spanmeter.budgets): an optional hook run in every write transaction
        self._ledger: LedgerHook | None = None
        self._budget_store = SQLiteBudgetStore(self._transaction, self._reader)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def read_only(self) -> bool:
        """Opened with readers only (see the class)."""
        return self._read_only

    @property
    def location(self) -> str:
        """The database file, as text."""
        return str(self._path)

    def available(self) -> bool:
        """An open store on a local file is reachable."""
        return not self._closed

    # -- writes -------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Generator[sqlite3.Connection, None, None]:
        """The write lock plus one ``BEGIN IMMEDIATE`` transaction on the write connection.

        IMMEDIATE takes the database's write lock up front: the write path reads (dedupe,
        sequence numbers) before it writes, and a deferred transaction that another process
        wrote under in between would fail with ``SQLITE_BUSY_SNAPSHOT`` instead of waiting.
        ``sqlite_utils.Database.atomic`` only issues a plain ``BEGIN``, hence this.
        """
        with self._write_lock:
            if self._closed:
                raise RuntimeError("store is closed")
            conn = self._conn
            if conn is None:
                raise ReadOnlyStoreError(f"the store {self.location} is open read-only")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._writer.forget()  # its cached sequence numbers may describe rolled-back rows
                raise

    def _short_transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """An API key's or an audit entry's transaction: the one write transaction (one writer)."""
        return self._transaction()

    def write_batches(self, batches: Sequence[Sequence[SpanRow]]) -> list[WriteResult]:
        """Store several batches in one transaction; one result per batch, in order."""
        return self._write(batches, None)

    def write_received_batches(
        self, batches: Sequence[Sequence[SpanRow]], received: Sequence[Sequence[RowValues]]
    ) -> list[WriteResult]:
        """:meth:`write_batches`, binding each row's received value tuple as it is (see
        :class:`~spanmeter.store.batches.BindsReceivedValues`)."""
        return self._write(batches, received)

    def _write(
        self, batches: Sequence[Sequence[SpanRow]], received: Sequence[Sequence[RowValues]] | None
    ) -> list[WriteResult]:
        if not any(batches):
            return [WriteResult() for _ in batches]
        check_batch_ids(batches)  # before the transaction: a refused batch fails alone
        try:
            with self._transaction() as conn:
                return self._writer.write(
                    conn, batches, self._apply_ledger if self._ledger is not None else None, received
                )
        except OverflowError:
            # An integer past 64 bits: SQLite refused to bind it and the transaction is rolled
            # back. Only now are the integers checked (the common write does not pay for it),
            # to refuse the batches that hold one; anything else (a sum past 64 bits) is raised.
            check_batches(batches)
            raise

    # -- reads --------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, read_only=True, file_read_only=self._read_only)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _reading(self) -> AbstractContextManager[sqlite3.Connection]:
        return nullcontext(self._reader())

    def stats(self) -> StoreStats:
        """Row counts and bytes on disk."""
        return queries.stats(self._reader(), self._path)

    # -- re-pricing -----------------------------------------------------------------------

    def _record_repricing(
        self, changes: Sequence[RepricedRow], audit: RepriceAudit, actor: str
    ) -> RepriceAudit:
        return analysis_writes.apply_repricing(self._transaction, self._writer, changes, audit, actor)

    # -- maintenance ----------------------------------------------------------------------

    def apply_retention(
        self,
        now_ns: int,
        *,
        raw_days: int,
        rollup_days: int,
        chunk_rows: int = maintenance.DEFAULT_CHUNK_ROWS,
    ) -> RetentionResult:
        """Delete expired rows in short transactions; see :mod:`.maintenance`."""
        result = maintenance.apply_retention(
            self._transaction, now_ns, raw_days=raw_days, rollup_days=rollup_days, chunk_rows=chunk_rows
        )
        _logger.info(
            "spanmeter: retention deleted %d requests, %d logical keys, %d rollup rows",
            result.requests,
            result.logical_requests,
            result.rollup_rows,
        )
        return result

    def compact_rollups(self, now_ns: int | None = None, *, max_buckets: int = 16) -> int:
        """Merge partial rollup rows of closed buckets into tiers; see :mod:`.compaction`."""
        return compaction.compact_rollups(
            self._transaction,
            self._writer,
            time.time_ns() if now_ns is None else now_ns,
            max_buckets=max_buckets,
        )

    def close(self) -> None:
        """Close every connection. Idempotent; a closed store refuses further calls."""
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            with self._readers_lock:
                readers, self._readers = self._readers, []
            for conn in readers:
                conn.close()
            if self._db is not None:
                self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
