"""What every store does the same way when it applies a re-pricing: check that only pricing
changes, compute the rollup corrections, and build the audit entry. The stores only write.

Rollups are additive partial aggregates (:mod:`spanmeter.store.rollups`), so a row's cost
change is appended as one more partial row per affected group and bucket, holding only the
cost and unpriced deltas; no rollup is recomputed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Final

from .analysis_types import PRICING_FIELDS, RepriceAudit, RepricedRow, StaleRepricing
from .rollups import MEASURES, ROLLUPS
from .rows import SpanRow

__all__ = [
    "AUDIT_FIELDS",
    "audit_row_values",
    "audit_values",
    "change_totals",
    "check_changes",
    "correction_rows",
    "pricing_values",
    "update_rows",
]

_IDENTITY: Final = frozenset(f.name for f in fields(SpanRow)) - frozenset(PRICING_FIELDS)
AUDIT_FIELDS: Final = tuple(f.name for f in fields(RepriceAudit) if f.name != "id")
"""The audit's columns but its id (which the store assigns), in the dataclass's order."""
pricing_values: Final = attrgetter(*PRICING_FIELDS)
"""A row's pricing fields as a tuple in :data:`PRICING_FIELDS` order."""


def check_changes(changes: Sequence[RepricedRow]) -> None:
    """Raises:
    ValueError: a change alters more than the pricing fields."""
    for change in changes:
        old, new = change.old, change.new
        for name in _IDENTITY:
            if getattr(old, name) != getattr(new, name):
                raise ValueError(f"a re-pricing may only change pricing fields, not {name!r}")


def correction_rows(changes: Sequence[RepricedRow]) -> list[list[tuple[object, ...]]]:
    """Per rollup (in :data:`ROLLUPS` order), the partial rows that correct it: ``(bucket,
    *dimensions, *measures)`` holding only the cost and unpriced deltas of each group."""
    deltas: list[dict[tuple[object, ...], list[int]]] = [{} for _ in ROLLUPS]
    for change in changes:
        old, new = change.old, change.new
        if not old.billable:
            continue
        cost = (new.cost_nano_usd or 0) - (old.cost_nano_usd or 0)
        unpriced = (new.cost_nano_usd is None) - (old.cost_nano_usd is None)
        if not cost and not unpriced:
            continue
        for spec, groups in zip(ROLLUPS, deltas, strict=True):
            bucket = old.event_time_ns // spec.bucket_ns * spec.bucket_seconds
            key = (bucket, *("" if value is None else value for value in attrgetter(*spec.dimensions)(old)))
            sums = groups.setdefault(key, [0, 0])
            sums[0] += cost
            sums[1] += unpriced
    cost_at, unpriced_at = MEASURES.index("cost_nano_usd"), MEASURES.index("unpriced")
    rows: list[list[tuple[object, ...]]] = []
    for groups in deltas:
        table: list[tuple[object, ...]] = []
        for key, (cost, unpriced) in sorted(groups.items(), key=lambda item: str(item[0])):
            if not cost and not unpriced:
                continue
            measures: list[object] = [0] * len(MEASURES)
            measures[cost_at], measures[unpriced_at] = cost, unpriced
            measures[MEASURES.index("latency_ms_sum")] = 0.0
            table.append((*key, *measures))
        rows.append(table)
    return rows


def change_totals(changes: Sequence[RepricedRow]) -> tuple[int, int, int]:
    """The audit entry's figures: rows changed, their cost before and after (nano-USD)."""
    return (
        len(changes),
        sum(change.old.cost_nano_usd or 0 for change in changes),
        sum(change.new.cost_nano_usd or 0 for change in changes),
    )


def update_rows(update: Callable[[tuple[object, ...]], int], changes: Sequence[RepricedRow]) -> None:
    """Write each row's new pricing through ``update`` (the store's ``UPDATE`` of the
    :data:`PRICING_FIELDS` where the delivery key and the old cost and status match, bound
    to these parameters; it returns the rows it changed), only where the row still holds the
    pricing the diff was computed from: any other row means the diff is stale, and raising
    rolls the caller's transaction back.

    Raises:
        StaleRepricing: A row changed since the diff.
    """
    for change in changes:
        old = change.old
        key = (old.start_time_ns, old.span_id, old.trace_id)
        if update((*pricing_values(change.new), *key, old.cost_nano_usd, old.pricing_status)) != 1:
            raise StaleRepricing(
                f"row {old.trace_id.hex()}/{old.span_id.hex()} changed since the diff was computed:"
                " nothing applied, compute the diff again"
            )


def audit_values(audit: RepriceAudit) -> tuple[object, ...]:
    """The audit entry's :data:`AUDIT_FIELDS`, in order (the insert assigns the id)."""
    return tuple(getattr(audit, name) for name in AUDIT_FIELDS)


def audit_row_values(audit_id: int, changes: Sequence[RepricedRow]) -> list[tuple[object, ...]]:
    """Per changed row, a ``reprice_audit_rows`` row: its key, cost and status before and after."""
    return [
        (
            audit_id,
            change.old.start_time_ns,
            change.old.span_id,
            change.old.trace_id,
            change.old.cost_nano_usd,
            change.new.cost_nano_usd,
            change.old.pricing_status,
            change.new.pricing_status,
        )
        for change in changes
    ]
