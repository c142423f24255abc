"""Unit economics: cost per tenant, user, endpoint and successful request; retries,
fallbacks, tail outliers; and tenant margins against imported revenue.

One output per stakeholder: engineering reads cost per endpoint, finance cost and margin
per tenant, product cost per successful request. Rollups answer the per-group figures
exactly; the raw rows answer what rollups cannot (request vs response model, token
percentiles, the outlier calls themselves).

Definitions:

* successful logical requests = attempts that did not fail: with retry-safe request ids an
  app stops at the first success, so each successful logical request has exactly one
  successful attempt. Cost per successful request charges failures and retries to the
  requests that worked (success-adjusted);
* retry ratio = attempts / logical requests;
* fallback = an attempt whose response model differs from its request model;
* tail outliers = calls above the window's p99 tokens per call (nearest rank).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final, Literal, NamedTuple, TypedDict

from ..money import money_column, money_text, nano_usd, usd
from ..store import Measures, SpanStore
from .common import nearest_rank, per, scope_text
from .documents import Scope, Span, dump, span
from .window import TimeWindow, query_scope

__all__ = [
    "DEFAULT_MAX_COST_SHARE",
    "ECONOMICS_FORMATS",
    "EconomicsReport",
    "Unit",
    "UnitRow",
    "render_economics",
    "unit_economics",
]

DEFAULT_MAX_COST_SHARE: Final = Fraction(3, 10)
"""Tenants whose LLM cost exceeds this share of their revenue are flagged."""
_OUTLIERS_SHOWN: Final = 10
ECONOMICS_FORMATS: Final = ("table", "json", "csv")
_UNIT_COLUMNS: Final = (
    "cost_usd",
    "share",
    "logical_requests",
    "attempts",
    "successful_requests",
    "cost_per_request_usd",
    "cost_per_successful_request_usd",
    "retry_ratio",
)


class Unit(TypedDict):
    """The unit figures of a group (or of the window)."""

    cost_nano_usd: int
    cost_usd: str
    share: float | None
    logical_requests: int
    attempts: int
    successful_requests: int
    cost_per_request_usd: str | None
    cost_per_successful_request_usd: str | None
    retry_ratio: float | None
    unpriced_attempts: int


UnitRow = dict[str, object]
"""A section's row: ``{dimension: value}`` first (the key is the section's dimension, so no
fixed shape names it), then the :class:`Unit` figures."""


class _Section(TypedDict):
    """One section (per endpoint, tenant or user)."""

    available: Literal[True]
    groups: int
    rows: list[UnitRow]


class _Unavailable(TypedDict):
    """A section the store cannot answer under the filters, and why."""

    available: Literal[False]
    note: str


class _Fallbacks(TypedDict):
    attempts: int
    fallbacks: int
    rate: float | None


class _Outlier(TypedDict):
    tokens: int
    endpoint_tag: str | None
    trace_id: str
    span_id: str
    start: str
    cost_usd: str | None


class _Tails(TypedDict):
    tokens_p95: int | None
    tokens_p99: int | None
    outlier_calls: int
    outlier_cost_usd: str
    top_outliers: list[_Outlier]


class _EndpointTail(TypedDict):
    endpoint_tag: str | None
    attempts: int
    fallbacks: int
    fallback_rate: float | None
    tokens_p95: int | None
    tokens_p99: int | None


class _RawFigures(NamedTuple):
    fallbacks: _Fallbacks
    tails: _Tails
    per_endpoint_tails: list[_EndpointTail]


class _Profitability(TypedDict):
    imported: bool
    max_cost_share: float
    rows: list[_MarginRow]
    flagged: list[str]


class EconomicsReport(TypedDict):
    """The unit-economics document."""

    window: Span
    filters: dict[str, str]
    environment: str | None
    data_mode: str | None
    totals: Unit
    per_endpoint: _Section | _Unavailable
    per_tenant: _Section | _Unavailable
    per_user: _Section | _Unavailable
    fallbacks: _Fallbacks
    tails: _Tails
    per_endpoint_tails: list[_EndpointTail]
    profitability: _Profitability


def _unit(measures: Measures, total_cost: int) -> Unit:
    cost, successes = measures.cost_nano_usd, measures.successes
    return {
        "cost_nano_usd": cost,
        "cost_usd": usd(cost),
        "share": round(cost / total_cost, 4) if total_cost else None,
        "logical_requests": measures.logical_requests,
        "attempts": measures.attempts,
        "successful_requests": successes,
        "cost_per_request_usd": usd(cost // measures.logical_requests) if measures.logical_requests else None,
        "cost_per_successful_request_usd": usd(cost // successes) if successes > 0 else None,
        "retry_ratio": per(measures.attempts, measures.logical_requests, 4),
        "unpriced_attempts": measures.unpriced,
    }


def unit_economics(
    store: SpanStore,
    window: TimeWindow,
    *,
    where: Mapping[str, str] | None = None,
    environment: str | None = None,
    data_mode: str | None = "real",
    limit: int = 20,
    max_cost_share: Fraction = DEFAULT_MAX_COST_SHARE,
) -> EconomicsReport:
    """The unit-economics document (JSON-ready) for ``window``."""
    scope = query_scope(where, environment, data_mode)
    groups: dict[str, _Section | _Unavailable] = {}
    total = Measures()
    for dimension in ("endpoint_tag", "tenant_id", "user_id"):
        try:
            result = store.aggregate((dimension,), window.start_ns, window.end_ns, **scope)
        except ValueError as error:
            groups[dimension] = {"available": False, "note": str(error)}
            continue
        if dimension == "endpoint_tag":
            total = result.total
        groups[dimension] = {
            "available": True,
            "groups": len(result.groups),
            "rows": [
                {dimension: group.key[0], **_unit(group.measures, result.total.cost_nano_usd)}
                for group in result.groups[:limit]
            ],
        }
    raw = _raw_figures(store, window, scope)
    return {
        "window": span(*window.iso()),
        "filters": scope["where"],
        "environment": scope["environment"],
        "data_mode": scope["data_mode"],
        "totals": _unit(total, total.cost_nano_usd),
        "per_endpoint": groups["endpoint_tag"],
        "per_tenant": groups["tenant_id"],
        "per_user": groups["user_id"],
        "fallbacks": raw.fallbacks,
        "tails": raw.tails,
        "per_endpoint_tails": raw.per_endpoint_tails,
        "profitability": _profitability(store, window, scope, max_cost_share),
    }


class _MarginRow(TypedDict):
    """One (tenant, period) line of the profitability section."""

    tenant_id: str
    period: str
    revenue_usd: str
    cost_usd: str
    margin_nano_usd: int
    margin_usd: str
    cost_share: float | None
    flagged: bool


class _Call(NamedTuple):
    """An attempt that reported usage, as the tail outliers list it."""

    tokens: int
    start: int
    endpoint_tag: str | None
    trace_id: bytes
    span_id: bytes
    cost: int | None


@dataclass(slots=True)
class _EndpointTally:
    """Per-endpoint counts the rollups cannot give: fallbacks and the token distribution."""

    attempts: int = 0
    fallbacks: int = 0
    tokens: list[int] = field(default_factory=list[int])

    def row(self, tag: str | None) -> _EndpointTail:
        """The endpoint's line of ``per_endpoint_tails``."""
        tokens = sorted(self.tokens)
        return {
            "endpoint_tag": tag,
            "attempts": self.attempts,
            "fallbacks": self.fallbacks,
            "fallback_rate": per(self.fallbacks, self.attempts, 4),
            "tokens_p95": nearest_rank(tokens, 95),
            "tokens_p99": nearest_rank(tokens, 99),
        }


_RAW_COLUMNS: Final = (
    "endpoint_tag",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "trace_id",
    "span_id",
    "start_time_ns",
    "cost_nano_usd",
)


def _raw_figures(store: SpanStore, window: TimeWindow, scope: Scope) -> _RawFigures:
    """Fallback frequency and token tails, per endpoint and overall, from the raw rows."""
    per_endpoint, calls = _scan_raw(store, window, scope)
    attempts = sum(entry.attempts for entry in per_endpoint.values())
    fallbacks = sum(entry.fallbacks for entry in per_endpoint.values())
    endpoints = [
        entry.row(tag) for tag, entry in sorted(per_endpoint.items(), key=lambda item: item[0] or "")
    ]
    return _RawFigures(
        {"attempts": attempts, "fallbacks": fallbacks, "rate": per(fallbacks, attempts, 4)},
        _tails(calls),
        endpoints,
    )


def _scan_raw(
    store: SpanStore, window: TimeWindow, scope: Scope
) -> tuple[dict[str | None, _EndpointTally], list[_Call]]:
    """One pass over the raw rows: fallbacks and tokens per endpoint, and every call with usage."""
    per_endpoint: dict[str | None, _EndpointTally] = {}
    calls: list[_Call] = []
    for (
        tag,
        request_model,
        response_model,
        tokens_in,
        tokens_out,
        trace_id,
        span_id,
        start,
        cost,
    ) in store.scan_requests(window.start_ns, window.end_ns, columns=_RAW_COLUMNS, **scope):
        entry = per_endpoint.setdefault(tag, _EndpointTally())
        entry.attempts += 1
        entry.fallbacks += bool(request_model and response_model and request_model != response_model)
        if tokens_in is not None or tokens_out is not None:
            tokens = (tokens_in or 0) + (tokens_out or 0)
            entry.tokens.append(tokens)
            calls.append(_Call(tokens, start, tag, trace_id, span_id, cost))
    return per_endpoint, calls


def _tails(calls: Sequence[_Call]) -> _Tails:
    """Token percentiles over every call, and the calls above p99, largest first (their trace
    and span ids, so each can be opened in a tracing UI)."""
    everything = sorted(call.tokens for call in calls)
    p99 = nearest_rank(everything, 99)
    outliers = sorted(
        (call for call in calls if p99 is not None and call.tokens > p99), key=lambda c: (-c.tokens, c.start)
    )
    return {
        "tokens_p95": nearest_rank(everything, 95),
        "tokens_p99": p99,
        "outlier_calls": len(outliers),
        "outlier_cost_usd": usd(sum(c.cost or 0 for c in outliers)),
        "top_outliers": [
            {
                "tokens": call.tokens,
                "endpoint_tag": call.endpoint_tag,
                "trace_id": call.trace_id.hex(),
                "span_id": call.span_id.hex(),
                "start": TimeWindow(call.start, call.start + 1).iso()[0],
                "cost_usd": usd(call.cost),
            }
            for call in outliers[:_OUTLIERS_SHOWN]
        ],
    }


def _profitability(
    store: SpanStore, window: TimeWindow, scope: Scope, max_cost_share: Fraction
) -> _Profitability:
    """Margin per (tenant, period) for every imported period overlapping the window."""
    revenue = store.revenue(window.start_ns, window.end_ns)
    if not revenue:
        return {"imported": False, "rows": [], "flagged": [], "max_cost_share": float(max_cost_share)}
    costs: dict[tuple[int, int], dict[str | None, int]] = {}
    rows: list[_MarginRow] = []
    for entry in revenue:
        period = (entry.start_ns, entry.end_ns)
        if period not in costs:
            result = store.aggregate(("tenant_id",), entry.start_ns, entry.end_ns, **scope)
            costs[period] = {group.key[0]: group.measures.cost_nano_usd for group in result.groups}
        cost = costs[period].get(entry.tenant_id, 0)
        share = Fraction(cost, entry.revenue_nano_usd) if entry.revenue_nano_usd > 0 else None
        rows.append(
            {
                "tenant_id": entry.tenant_id,
                "period": entry.period,
                "revenue_usd": usd(entry.revenue_nano_usd),
                "cost_usd": usd(cost),
                "margin_nano_usd": entry.revenue_nano_usd - cost,
                "margin_usd": usd(entry.revenue_nano_usd - cost),
                "cost_share": None if share is None else round(float(share), 4),
                "flagged": share is None or share > max_cost_share,
            }
        )
    rows.sort(key=lambda row: (row["margin_nano_usd"], row["tenant_id"], row["period"]))
    return {
        "imported": True,
        "max_cost_share": float(max_cost_share),
        "rows": rows,
        "flagged": [f"{row['tenant_id']} {row['period']}" for row in rows if row["flagged"]],
    }


def render_economics(report: Mapping[str, Any], fmt: str) -> str:
    """The document as ``table``, ``json`` or ``csv`` (one line per group, sections in a column)."""
    if fmt == "json":
        return dump(report, indent=2) + "\n"
    sections = [
        ("endpoint_tag", report["per_endpoint"]),
        ("tenant_id", report["per_tenant"]),
        ("user_id", report["per_user"]),
    ]
    if fmt == "csv":
        return _render_csv(report, sections)
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(ECONOMICS_FORMATS)}")
    lines = _summary_lines(report)
    for dimension, section in sections:
        lines += _section_lines(dimension, section)
    lines += _profitability_lines(report["profitability"])
    return "\n".join(lines) + "\n"


def _render_csv(report: Mapping[str, Any], sections: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """The totals, then every group of every section, one CSV line each, for spreadsheets."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["dimension", "value", *_UNIT_COLUMNS])
    writer.writerow(["total", "", *(report["totals"][c] for c in _UNIT_COLUMNS)])
    for dimension, section in sections:
        for row in section.get("rows", []):
            writer.writerow([dimension, row[dimension] or "", *(row[c] for c in _UNIT_COLUMNS)])
    return buffer.getvalue()


def _summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The heading and the one-line summary: the figures every stakeholder reads first."""
    totals, window = report["totals"], report["window"]
    tails = report["tails"]
    return [
        f"unit economics {window['from']} .. {window['to']}  ({scope_text(report)})",
        f"cost {money_text(totals['cost_nano_usd'])} USD;"
        f" per request {money_text(nano_usd(totals['cost_per_request_usd']))},"
        f" per successful request {money_text(nano_usd(totals['cost_per_successful_request_usd']))} USD;"
        f" retry ratio {totals['retry_ratio']}; fallback rate {report['fallbacks']['rate']};"
        f" p95/p99 tokens per call {tails['tokens_p95']}/{tails['tokens_p99']}"
        f" ({tails['outlier_calls']} calls above p99, {money_text(nano_usd(tails['outlier_cost_usd']))} USD)",
    ]


def _section_lines(dimension: str, section: Mapping[str, Any]) -> list[str]:
    """One section's table (per endpoint, tenant or user), or why it is not available."""
    lines = ["", f"per {dimension}" + ("" if section["available"] else f": {section['note']}")]
    if not section["available"]:
        return lines
    lines.append(
        f"  {'value':<30}{'cost USD':>14}{'share':>8}{'requests':>10}{'USD/request':>13}{'USD/success':>13}{'retry':>8}"
    )
    rows = section["rows"]
    costs = money_column([row["cost_nano_usd"] for row in rows])
    per_request = _money_column(rows, "cost_per_request_usd")
    per_success = _money_column(rows, "cost_per_successful_request_usd")
    for row, cost, request, success in zip(rows, costs, per_request, per_success, strict=True):
        share = row["share"]
        lines.append(
            f"  {(row[dimension] or '(none)')[:29]:<30}{cost:>14}"
            f"{(f'{share:.1%}' if share is not None else '-'):>8}{row['logical_requests']:>10}"
            f"{request:>13}{success:>13}{row['retry_ratio'] or 0:>8.3f}"
        )
    return lines


def _profitability_lines(profit: Mapping[str, Any]) -> list[str]:
    """Tenant margins, flagged ones marked, or how to import revenue when none is."""
    if not profit["imported"]:
        return ["", "tenant profitability: no revenue imported (spanmeter economics --revenue FILE)"]
    lines = ["", f"tenant profitability (flag: cost above {profit['max_cost_share']:.0%} of revenue)"]
    rows = profit["rows"]
    # revenue - cost = margin on every line, so the three share one precision
    amounts = money_column(
        [nano_usd(row["revenue_usd"]) for row in rows]
        + [nano_usd(row["cost_usd"]) for row in rows]
        + [row["margin_nano_usd"] for row in rows]
    )
    columns = (amounts[: len(rows)], amounts[len(rows) : 2 * len(rows)], amounts[2 * len(rows) :])
    for row, revenue, cost, margin in zip(rows, *columns, strict=True):
        share = row["cost_share"]
        lines.append(
            f"  {'!' if row['flagged'] else ' '} {row['tenant_id'][:24]:<25}{row['period']:<12}"
            f" revenue {revenue:>14} cost {cost:>14} margin {margin:>14}"
            f" ({f'{share:.1%}' if share is not None else 'no revenue'})"
        )
    return lines


def _money_column(rows: Sequence[Mapping[str, Any]], key: str) -> list[str]:
    """One table column of the USD strings under ``key``, at a precision people read."""
    return money_column([nano_usd(row[key]) for row in rows])
