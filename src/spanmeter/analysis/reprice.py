"""Re-pricing that can be audited: recompute cost after a price change, diff, then apply.

``plan_repricing`` reads the window's raw rows, prices each again with the given price
book (prices in force on the row's end day, as at ingest) and keeps the rows whose pricing
changed. Its document shows the diff per dimension *before* anything is written.
``apply_repricing`` hands the exact changed rows to the store, which updates them, corrects
the rollups by the same deltas and records an audit entry (who-what-why: reason, window,
price source, the diff), in one transaction.

What is re-priced: rows spanmeter priced (``priced``) or could not price for lack of a
price (``unknown_model``). A provider-reported cost (``reported``) is the provider's word
and stays, unless ``include_reported``; rows without model or usage cannot be priced.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

import genai_prices

from ..money import money_column, money_text, nano_usd, usd
from ..pricing import PriceBook
from ..store import (
    PRICING_FIELDS,
    RepriceAudit,
    RepricedRow,
    RepricingRun,
    SpanRow,
    SpanStore,
    pricing_fields,
)
from ..timeunits import NS_PER_SECOND
from .documents import dump
from .window import TimeWindow

__all__ = [
    "DIFF_DIMENSIONS",
    "RepricePlan",
    "apply_plan",
    "audit_document",
    "plan_repricing",
    "price_source",
    "render_audits",
    "render_reprice",
]

DIFF_DIMENSIONS: Final = ("endpoint_tag", "tenant_id", "model", "provider", "prompt_version")
_REPRICEABLE: Final = frozenset({"priced", "unknown_model"})


@dataclass(frozen=True, slots=True)
class RepricePlan:
    """The changes a re-pricing would make, and the diff shown before applying them."""

    window: TimeWindow
    changes: list[RepricedRow]
    diff: dict[str, Any]


def price_source(book: PriceBook) -> str:
    """Which prices a book applies: the genai-prices version and the override file's hash."""
    overrides = book.overrides
    suffix = f" + overrides {overrides.source_version}" if overrides and overrides.source_version else ""
    return f"genai-prices {genai_prices.__version__}{suffix}"


def _reprice(row: SpanRow, book: PriceBook) -> SpanRow:
    at = row.end_time_ns or row.start_time_ns or row.received_at_ns
    price = book.price(
        row.provider,
        row.model,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cache_read_tokens=row.cache_read_tokens or 0,
        cache_write_tokens=row.cache_write_tokens or 0,
        reasoning_tokens=row.reasoning_tokens or 0,
        at=datetime.fromtimestamp(at // NS_PER_SECOND, tz=timezone.utc),
    )
    return dataclasses.replace(row, **pricing_fields(price))  # type: ignore[arg-type]


def _changed(old: SpanRow, new: SpanRow) -> bool:
    return any(getattr(old, name) != getattr(new, name) for name in PRICING_FIELDS)


def plan_repricing(
    store: SpanStore, window: TimeWindow, book: PriceBook, *, include_reported: bool = False
) -> RepricePlan:
    """The rows of ``window`` (every data mode) whose pricing ``book`` would change."""
    statuses = _REPRICEABLE | ({"reported"} if include_reported else frozenset[str]())
    scanned = 0
    changes: list[RepricedRow] = []
    for row in store.iter_requests(window.start_ns, window.end_ns):
        scanned += 1
        if row.pricing_status not in statuses or not row.billable:
            continue
        new = _reprice(row, book)
        if _changed(row, new):
            changes.append(RepricedRow(row, new))
    return RepricePlan(window, changes, _diff(window, scanned, changes, price_source(book)))


def _diff(window: TimeWindow, scanned: int, changes: Iterable[RepricedRow], source: str) -> dict[str, Any]:
    per_dimension: dict[str, dict[str | None, list[int]]] = {
        d: defaultdict(lambda: [0, 0, 0]) for d in DIFF_DIMENSIONS
    }
    statuses: dict[str, int] = defaultdict(int)
    before = after = rows = 0
    for change in changes:
        rows += 1
        old_cost, new_cost = change.old.cost_nano_usd or 0, change.new.cost_nano_usd or 0
        before, after = before + old_cost, after + new_cost
        statuses[f"{change.old.pricing_status} -> {change.new.pricing_status}"] += 1
        for dimension, groups in per_dimension.items():
            entry = groups[getattr(change.old, dimension)]
            entry[0] += 1
            entry[1] += old_cost
            entry[2] += new_cost
    start, end = window.iso()
    return {
        "window": {"from": start, "to": end},
        "price_source": source,
        "rows_scanned": scanned,
        "rows_changed": rows,
        "cost_before_usd": usd(before),
        "cost_after_usd": usd(after),
        "delta_nano_usd": after - before,
        "delta_usd": usd(after - before),
        "status_changes": dict(sorted(statuses.items())),
        "dimensions": {
            dimension: [
                {
                    "value": value,
                    "rows": count,
                    "before_usd": usd(old),
                    "after_usd": usd(new),
                    "delta_nano_usd": new - old,
                    "delta_usd": usd(new - old),
                }
                for value, (count, old, new) in sorted(
                    groups.items(), key=lambda item: (-abs(item[1][2] - item[1][1]), item[0] or "")
                )
            ]
            for dimension, groups in per_dimension.items()
        },
    }


def apply_plan(store: SpanStore, plan: RepricePlan, *, reason: str, actor: str = "system") -> RepriceAudit:
    """Write the plan's changes and its audit entry, and ``reprice.apply`` by ``actor`` in the
    audit trail (nothing when a row changed meanwhile).

    Raises:
        ValueError: An empty reason (an audit trail needs one).
        StaleRepricing: A row changed since the plan was made; nothing was applied.
    """
    if not reason.strip():
        raise ValueError("a re-pricing needs a reason for the audit trail")
    window = (plan.window.start_ns, plan.window.end_ns)
    run = RepricingRun(reason, *window, price_source=plan.diff["price_source"], details=json.dumps(plan.diff))
    return store.apply_repricing(plan.changes, run, actor=actor)


def render_reprice(diff: Mapping[str, Any], fmt: str, *, limit: int = 5) -> str:
    """The diff as ``table`` or ``json``."""
    if fmt == "json":
        return dump(diff, indent=2) + "\n"
    lines = [
        f"re-pricing {diff['window']['from']} .. {diff['window']['to']} with {diff['price_source']}",
        f"  {diff['rows_changed']} of {diff['rows_scanned']} rows change:"
        f" {money_text(nano_usd(diff['cost_before_usd']))} -> {money_text(nano_usd(diff['cost_after_usd']))}"
        f" USD (delta {money_text(diff['delta_nano_usd'], signed=True)})",
    ]
    lines += [f"  {change}: {count} rows" for change, count in diff["status_changes"].items()]
    for dimension, groups in diff["dimensions"].items():
        if not groups:
            continue
        lines.append(f"  by {dimension}:")
        shown = groups[:limit]
        # before and after are read against each other, so they share one precision
        amounts = money_column(
            [nano_usd(group[key]) for key in ("before_usd", "after_usd") for group in shown]
        )
        before, after = amounts[: len(shown)], amounts[len(shown) :]
        delta = money_column([group["delta_nano_usd"] for group in shown], signed=True)
        for group, old, new, change in zip(shown, before, after, delta, strict=True):
            lines.append(
                f"    {(group['value'] or '(none)')[:28]:<30}{group['rows']:>8} rows"
                f"  {old:>12} -> {new:>12}  ({change})"
            )
    return "\n".join(lines) + "\n"


def audit_document(audit: RepriceAudit) -> dict[str, Any]:
    """One applied re-pricing as ``spanmeter reprice --history`` and ``/api/v1/reprice/audits``
    show it (times as ISO 8601 UTC, money as decimal USD strings, the diff as applied)."""
    return {
        "id": audit.id,
        "applied_at": TimeWindow(audit.applied_at_ns, audit.applied_at_ns + 1).iso()[0],
        "reason": audit.reason,
        "window": dict(
            zip(("from", "to"), TimeWindow(audit.window_start_ns, audit.window_end_ns).iso(), strict=True)
        ),
        "rows_changed": audit.rows_changed,
        "cost_before_usd": usd(audit.cost_before_nano_usd),
        "cost_after_usd": usd(audit.cost_after_nano_usd),
        "price_source": audit.price_source,
        "details": json.loads(audit.details) if audit.details else None,
    }


def render_audits(document: Mapping[str, Any], fmt: str) -> str:
    """``{"audits": [audit_document, ...]}`` as ``table`` (one line each) or ``json``."""
    if fmt == "json":
        return dump(document, indent=2) + "\n"
    return "".join(
        f"#{entry['id']} {entry['applied_at']} {entry['rows_changed']} rows"
        f" {entry['cost_before_usd']} -> {entry['cost_after_usd']} USD"
        f" ({entry['price_source']}): {entry['reason']}\n"
        for entry in document["audits"]
    )
