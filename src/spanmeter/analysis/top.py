"""``top``: rank spend by one dimension over a window, the first question users ask.

The same function answers ``spanmeter top`` and ``GET /api/v1/top``, so the CLI and the API
can never disagree; only the rendering differs (table, JSON or CSV).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, cast

from ..money import usd
from ..store import SpanStore, TopDimension, TopResult
from .common import scope_text
from .documents import dump
from .window import DIMENSIONS, TimeWindow, query_scope

__all__ = ["FORMATS", "render_top", "top_report"]

FORMATS: Final = ("table", "json", "csv")


def top_report(
    store: SpanStore,
    by: str,
    window: TimeWindow,
    *,
    where: Mapping[str, str] | None = None,
    environment: str | None = None,
    data_mode: str | None = "real",
    limit: int = 50,
) -> dict[str, Any]:
    """The ranking as a JSON-ready document (exact integers plus decimal-string USD)."""
    if by not in DIMENSIONS:
        raise ValueError(f"unknown dimension {by!r}: use one of {', '.join(DIMENSIONS)}")
    scope = query_scope(where, environment, data_mode)
    result: TopResult = store.top(
        cast(TopDimension, by), window.start_ns, window.end_ns, **scope, limit=limit
    )
    start, end = TimeWindow(result.window_start_ns, result.window_end_ns).iso()
    return {
        "by": by,
        "window": {"from": start, "to": end, "bucket_seconds": result.bucket_seconds},
        "filters": scope["where"],
        "environment": scope["environment"],
        "data_mode": scope["data_mode"],
        "totals": {
            "cost_usd": usd(result.cost_nano_usd),
            "cost_nano_usd": result.cost_nano_usd,
            "logical_requests": result.logical_requests,
            "attempts": result.attempts,
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "cost_per_logical_request_usd": usd(result.cost_per_logical_request_nano_usd),
            "unpriced_attempts": result.unpriced,
            "groups": result.group_count,
        },
        "groups": [
            {
                by: group.key,
                "cost_usd": usd(group.cost_nano_usd),
                "cost_nano_usd": group.cost_nano_usd,
                "logical_requests": group.logical_requests,
                "attempts": group.attempts,
                "input_tokens": group.input_tokens,
                "output_tokens": group.output_tokens,
                "cost_per_logical_request_usd": usd(group.cost_per_logical_request_nano_usd),
                "share": round(group.share, 6),
                "unpriced_attempts": group.unpriced,
            }
            for group in result.groups
        ],
    }


_COLUMNS: Final = (
    "cost_usd",
    "share",
    "logical_requests",
    "attempts",
    "input_tokens",
    "output_tokens",
    "cost_per_logical_request_usd",
    "unpriced_attempts",
)


def render_top(report: Mapping[str, Any], fmt: str) -> str:
    """Render a :func:`top_report` document as ``table``, ``json`` or ``csv``."""
    by = report["by"]
    if fmt == "json":
        return dump(report, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([by, *_COLUMNS])
        for group in report["groups"]:
            writer.writerow([group[by] if group[by] is not None else "", *(group[c] for c in _COLUMNS)])
        return buffer.getvalue()
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    window = report["window"]
    lines = [
        f"top {by} from {window['from']} to {window['to']}  ({scope_text(report)})",
    ]
    header = f"{by:<32}{'cost USD':>14}{'share':>8}{'requests':>10}{'attempts':>10}"
    header += f"{'in tokens':>12}{'out tokens':>12}{'USD/request':>13}"
    lines += [header, "-" * len(header)]
    for group in report["groups"]:
        key = group[by] if group[by] is not None else "(none)"
        per_request = group["cost_per_logical_request_usd"]
        unpriced = _unpriced(group)
        lines.append(
            f"{key[:31]:<32}{_cost_cell(group):>14}{group['share']:>8.1%}"
            f"{group['logical_requests']:>10}{group['attempts']:>10}"
            f"{group['input_tokens']:>12}{group['output_tokens']:>12}"
            + (
                f"{'-':>13}"
                if unpriced
                else f"{(Decimal(per_request) if per_request else Decimal(0)):>13.6f}"
            )
        )
    totals = report["totals"]
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<32}{_cost_cell(totals):>14}{'':>8}{totals['logical_requests']:>10}"
        f"{totals['attempts']:>10}{totals['input_tokens']:>12}{totals['output_tokens']:>12}"
    )
    if totals["unpriced_attempts"]:
        lines.append(
            f"{totals['unpriced_attempts']} attempts without a price (unknown model or missing usage):"
            " their cost is not counted; 'unpriced' rows have no price at all"
        )
    return "\n".join(lines) + "\n"


def _unpriced(row: Mapping[str, Any]) -> bool:
    """Every attempt of the row lacks a price: its cost is unknown, not zero."""
    return bool(row["unpriced_attempts"]) and row["unpriced_attempts"] >= row["attempts"]


def _cost_cell(row: Mapping[str, Any]) -> str:
    """The table's cost: ``unpriced`` when no attempt has a price (its cost is unknown, not
    zero); otherwise the priced attempts' cost (the footer counts the unpriced ones)."""
    return "unpriced" if _unpriced(row) else f"{Decimal(row['cost_usd'] or 0):.6f}"
