"""Durable storage of GenAI attempts: raw rows, dedupe, rollups, and the queries over them.

The interface (:class:`SpanStore`, plain dataclasses for rows and results) is what the
receiver, budgets and analysis use; :class:`SQLiteStore` is the embedded implementation,
and ``PostgresStore`` (``spanmeter.store.postgres``, the ``postgres`` extra) the one that
several receiver replicas share.
:class:`GroupCommitWriter` turns many ingest threads' batches into few transactions.

Example::

    from spanmeter.store import GroupCommitWriter, SpanRow, SQLiteStore

    store = SQLiteStore("spanmeter.db")
    with GroupCommitWriter(store, on_idle=partial(store.compact_rollups, max_buckets=1)) as writer:
        writer.submit([SpanRow.from_record(record, price, trace_id=..., span_id=...,
                                           received_at_ns=time.time_ns())]).result()
    top = store.top("endpoint_tag", start_ns, end_ns)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .analysis_types import (
    PRICING_FIELDS,
    AggregateResult,
    GroupMeasures,
    Measures,
    RepriceAudit,
    RepricedRow,
    RepricingRun,
    RevenueRow,
    StaleRepricing,
    pricing_fields,
)
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
from .api_keys import ApiKey, DuplicateKeyName, KeyStore
from .audit_log import ACTIONS as AUDIT_ACTIONS
from .audit_log import AuditEvent, AuditLog
from .factory import describe_target, is_postgres_url, open_store, open_store_for_reading
from .group_commit import DEFAULT_MAX_PENDING_ROWS, GroupCommitWriter
from .inbox import (
    ALERT_STATES,
    AlertHistoryEntry,
    AlertRecord,
    BudgetStore,
    Delivery,
    DeliveryUpdate,
    MeasureGroup,
    RuleOutcome,
    SupportsBudgets,
    delivery_update,
)
from .ledger import (
    BudgetSpend,
    LedgerDecision,
    LedgerHook,
    LedgerPlan,
    LevelChange,
    NewAlert,
    SpendIncrement,
    SpendTotal,
    WindowRecheck,
)
from .rollups import HOUR, MEASURES, MINUTE, ROLLUPS, TOP_DIMENSIONS, RollupSpec, TopDimension
from .rows import DEFAULT_DATA_MODE, SpanRow

if TYPE_CHECKING:
    from .sqlite.store import SQLiteStore

__all__ = [
    "ALERT_STATES",
    "AUDIT_ACTIONS",
    "DEFAULT_DATA_MODE",
    "DEFAULT_MAX_PENDING_ROWS",
    "HOUR",
    "MEASURES",
    "MINUTE",
    "PRICING_FIELDS",
    "ROLLUPS",
    "TOP_DIMENSIONS",
    "AggregateResult",
    "AlertHistoryEntry",
    "AlertRecord",
    "ApiKey",
    "AuditEvent",
    "AuditLog",
    "BatchWriter",
    "BudgetSpend",
    "BudgetStore",
    "Delivery",
    "DeliveryUpdate",
    "DuplicateKeyName",
    "GroupCommitWriter",
    "GroupMeasures",
    "KeyStore",
    "LedgerDecision",
    "LedgerHook",
    "LedgerPlan",
    "LevelChange",
    "MeasureGroup",
    "Measures",
    "NewAlert",
    "RepriceAudit",
    "RepricedRow",
    "RepricingRun",
    "RetentionResult",
    "RevenueRow",
    "RollupSpec",
    "RuleOutcome",
    "SQLiteStore",
    "SpanRow",
    "SpanStore",
    "SpendIncrement",
    "SpendTotal",
    "StaleRepricing",
    "StoreBusy",
    "StoreStats",
    "SupportsBudgets",
    "TopDimension",
    "TopGroup",
    "TopResult",
    "WindowRecheck",
    "WriteResult",
    "WriterClosed",
    "delivery_update",
    "describe_target",
    "is_postgres_url",
    "open_store",
    "open_store_for_reading",
    "pricing_fields",
]


def __getattr__(name: str) -> object:
    """``SQLiteStore`` on first use: importing the package must not import sqlite-utils (a
    PostgreSQL deployment never loads it)."""
    if name == "SQLiteStore":
        from .sqlite.store import SQLiteStore

        return SQLiteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
