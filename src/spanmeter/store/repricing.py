"""What every store does the same way when it applies a re-pricing: check that only pricing
changes, compute the rollup corrections, and build the audit entry. The stores only write.

Rollups are additive partial aggregates (:mod:`spanmeter.store.rollups`), so a row's cost
change is appended as one more partial row per affected group and bucket, holding only the
cost and unpriced deltas; no rollup is recomputed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Final

from .analysis_types import PRICING_FIELDS, RepriceAudit, RepricedRow
from .rollups import MEASURES, ROLLUPS
from .rows import SpanRow

__all__ = ["AUDIT_FIELDS", "check_changes", "correction_rows", "new_audit", "pricing_values"]

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


def new_audit(
    changes: Sequence[RepricedRow],
    *,
    reason: str,
    window_start_ns: int,
    window_end_ns: int,
    price_source: str,
    details: str,
    applied_at_ns: int | None,
) -> RepriceAudit:
    """The audit entry of ``changes``, with id 0 until the store assigns one."""
    return RepriceAudit(
        0,
        time.time_ns() if applied_at_ns is None else applied_at_ns,
        reason,
        window_start_ns,
        window_end_ns,
        len(changes),
        sum(change.old.cost_nano_usd or 0 for change in changes),
        sum(change.new.cost_nano_usd or 0 for change in changes),
        price_source,
        details,
    )
