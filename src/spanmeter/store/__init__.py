"""Durable storage of GenAI attempts: raw rows, dedupe, rollups, and the queries over them.

The interface (:class:`SpanStore`, plain dataclasses for rows and results) is what the
receiver, budgets and analysis use; :class:`SQLiteStore` is the embedded implementation,
and a PostgreSQL one for several receiver replicas will implement the same protocol.
:class:`GroupCommitWriter` turns many ingest threads' batches into few transactions.

Example::

    from spanmeter.store import GroupCommitWriter, SpanRow, SQLiteStore

    store = SQLiteStore("spanmeter.db")
    with GroupCommitWriter(store, on_idle=store.compact_rollups) as writer:
        writer.submit([SpanRow.from_record(record, price, trace_id=..., span_id=...,
                                           received_at_ns=time.time_ns())]).result()
    top = store.top("endpoint_tag", start_ns, end_ns)
"""

from __future__ import annotations

from .api import (
    BatchWriter,
    RetentionResult,
    SpanStore,
    StoreBusy,
    StoreStats,
    TopGroup,
    TopResult,
    WriterClosed,
    WriteResult,
)
from .group_commit import DEFAULT_MAX_PENDING_ROWS, GroupCommitWriter
from .rollups import HOUR, MEASURES, MINUTE, ROLLUPS, TOP_DIMENSIONS, RollupSpec, TopDimension
from .rows import DEFAULT_DATA_MODE, SpanRow
from .sqlite import SQLiteStore

__all__ = [
    "DEFAULT_DATA_MODE",
    "DEFAULT_MAX_PENDING_ROWS",
    "HOUR",
    "MEASURES",
    "MINUTE",
    "ROLLUPS",
    "TOP_DIMENSIONS",
    "BatchWriter",
    "GroupCommitWriter",
    "RetentionResult",
    "RollupSpec",
    "SQLiteStore",
    "SpanRow",
    "SpanStore",
    "StoreBusy",
    "StoreStats",
    "TopDimension",
    "TopGroup",
    "TopResult",
    "WriteResult",
    "WriterClosed",
]
