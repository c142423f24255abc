"""Where the ingest pipeline hands its rows: a store writer in this process or in another.

The pipeline produces rows as plain tuples (:data:`~spanmeter.store.rows.RowValues`) and
waits on the returned future, which resolves only once the rows are committed (durable
before ack). Two sinks implement that contract:

* :class:`LocalRowSink`: a :class:`~spanmeter.store.GroupCommitWriter` in this process
  (one process, for tests and small deployments);
* :class:`~spanmeter.service.store_process.StoreProcessClient`: a writer process that owns
  the store, so that decoding and storing run on two cores despite the GIL.

Example::

    sink = LocalRowSink(GroupCommitWriter(store))
    sink.submit([values]).result()      # WriteResult once committed
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Protocol, runtime_checkable

from ..store import GroupCommitWriter, WriteResult
from ..store.rows import RowValues, row_from_values

__all__ = ["LocalRowSink", "RowSink"]


@runtime_checkable
class RowSink(Protocol):
    """Accepts row batches and reports when each is committed."""

    @property
    def pending_rows(self) -> int:
        """Rows accepted and not yet committed (the queue depth metric)."""
        ...

    def submit(self, rows: Sequence[RowValues]) -> Future[WriteResult]:
        """Queue one batch; the future resolves once it is committed (or with the error).

        Raises:
            StoreBusy: Too many rows are waiting; the client should retry later.
        """
        ...

    def close(self) -> object:
        """Commit everything accepted, then release the writer. Idempotent."""
        ...


class LocalRowSink:
    """A :class:`~spanmeter.store.GroupCommitWriter` in this process behind :class:`RowSink`."""

    def __init__(self, writer: GroupCommitWriter) -> None:
        self.writer = writer

    @property
    def pending_rows(self) -> int:
        """Rows accepted and not yet committed."""
        return self.writer.pending_rows

    def submit(self, rows: Sequence[RowValues]) -> Future[WriteResult]:
        """Build the store's rows (well under a microsecond each) and queue them."""
        return self.writer.submit([row_from_values(values) for values in rows])

    def close(self) -> None:
        """Commit everything pending and stop the writer thread."""
        self.writer.close()
