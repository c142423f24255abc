"""``compare prompt-versions``: what each prompt version costs, and what changed at each deploy.

Read from raw rows, because percentiles and per-request success need them. Per endpoint
and version: cost per logical request, tokens per call in and out, p50/p95/p99 tokens per
call, success rate, first and last seen, and the delta against the version seen just
before it on the same endpoint.

Definitions (so every figure can be recomputed by hand):

* a *logical request* is the set of attempts sharing an external request id (an attempt
  without one is its own); it belongs to the version of its first attempt in the window;
* tokens per call = (input or output tokens) / attempts, as in the rollups; percentiles
  are nearest-rank over the attempts that reported usage (a rejected call has no usage,
  which is not the same as zero tokens);
* success rate = logical requests with at least one successful attempt / logical requests;
* a delta is **significant** when both versions have at least ``min_samples`` logical
  requests and Welch's z on the mean cost per logical request is at least 1.96 (95%).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, TypedDict

from ..money import money_column, usd
from ..store import SpanStore
from .common import nearest_rank, per, scope_text
from .documents import Span, dump, span
from .window import TimeWindow, query_scope

__all__ = [
    "COMPARE_FORMATS",
    "MIN_SAMPLES",
    "Z_95",
    "PromptVersionsReport",
    "VersionDelta",
    "VersionRow",
    "compare_prompt_versions",
    "render_prompt_versions",
]

MIN_SAMPLES: Final = 30
"""Logical requests each version needs before a delta can be called significant."""
Z_95: Final = 1.96
COMPARE_FORMATS: Final = ("table", "json", "csv")


class _Row(NamedTuple):
    """One raw row as the comparison reads it (the field names are the columns scanned)."""

    endpoint_tag: str | None
    prompt_version: str | None
    start_time_ns: int | None
    received_at_ns: int
    external_request_id: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_nano_usd: int | None
    outcome: str | None


_COLUMNS: Final = _Row._fields


@dataclass(slots=True)
class _Version:
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: int = 0
    unpriced: int = 0
    tokens: list[int] = field(default_factory=list[int])
    first_ns: int | None = None
    last_ns: int | None = None
    requests: list[int] = field(default_factory=list[int])
    """Indexes into the scan's logical requests."""


@dataclass(slots=True)
class _Request:
    cost: int = 0
    success: bool = False


@dataclass(slots=True)
class _Scan:
    """Attempts folded per (endpoint, version) and per logical request, in one pass: a
    logical request belongs to the version of its first attempt, so both are built together."""

    versions: dict[tuple[str | None, str | None], _Version] = field(
        default_factory=dict[tuple[str | None, str | None], _Version]
    )
    requests: list[_Request] = field(default_factory=list[_Request])
    by_id: dict[str, int] = field(default_factory=dict[str, int])
    """External request id -> index into ``requests``."""

    def add(self, row: _Row) -> None:
        """Fold one attempt into its version's figures and its logical request."""
        entry = self.versions.setdefault((row.endpoint_tag, row.prompt_version), _Version())
        at = row.start_time_ns or row.received_at_ns
        entry.first_ns = at if entry.first_ns is None else min(entry.first_ns, at)
        entry.last_ns = at if entry.last_ns is None else max(entry.last_ns, at)
        tokens_in, tokens_out, cost = row.input_tokens, row.output_tokens, row.cost_nano_usd
        entry.attempts += 1
        entry.input_tokens += tokens_in or 0
        entry.output_tokens += tokens_out or 0
        entry.cost += cost or 0
        entry.unpriced += cost is None
        if tokens_in is not None or tokens_out is not None:
            entry.tokens.append((tokens_in or 0) + (tokens_out or 0))
        request = self._request(row.external_request_id, entry)
        request.cost += cost or 0
        request.success = request.success or row.outcome == "success"

    def _request(self, external_id: str | None, entry: _Version) -> _Request:
        """The attempt's logical request: the one its id names, else a new one owned by ``entry``."""
        index = self.by_id.get(external_id) if external_id is not None else None
        if index is None:
            index = len(self.requests)
            self.requests.append(_Request())
            entry.requests.append(index)
            if external_id is not None:
                self.by_id[external_id] = index
        return self.requests[index]


def _welch(a: list[int], b: list[int]) -> float | None:
    if len(a) < 2 or len(b) < 2:
        return None
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    var_a = sum((x - mean_a) ** 2 for x in a) / (len(a) - 1)
    var_b = sum((x - mean_b) ** 2 for x in b) / (len(b) - 1)
    spread = math.sqrt(var_a / len(a) + var_b / len(b))
    if spread == 0:
        return None if mean_a == mean_b else math.inf
    return (mean_b - mean_a) / spread


class VersionDelta(TypedDict):
    """A version against the one seen just before it on the same endpoint."""

    cost_per_request_nano_usd: int | None
    cost_per_request_usd: str | None
    cost_per_request_pct: float | None
    input_tokens_per_call: float | None
    output_tokens_per_call: float | None
    z: float | None
    significant: bool
    note: str | None


class VersionRow(TypedDict):
    """One (endpoint, version)'s figures, and its delta against the version before it."""

    endpoint_tag: str | None
    prompt_version: str | None
    logical_requests: int
    attempts: int
    cost_nano_usd: int
    cost_usd: str
    cost_per_request_nano_usd: int | None
    cost_per_request_usd: str | None
    input_tokens_per_call: float | None
    output_tokens_per_call: float | None
    tokens_p50: int | None
    tokens_p95: int | None
    tokens_p99: int | None
    success_rate: float | None
    unpriced_attempts: int
    first_seen: str
    last_seen: str
    previous_version: str | None
    delta: VersionDelta | None


class PromptVersionsReport(TypedDict):
    """Prompt versions compared on an endpoint."""

    window: Span
    endpoint: str | None
    filters: dict[str, str]
    environment: str | None
    data_mode: str | None
    min_samples: int
    versions: list[VersionRow]


def compare_prompt_versions(
    store: SpanStore,
    window: TimeWindow,
    *,
    endpoint: str | None = None,
    where: Mapping[str, str] | None = None,
    environment: str | None = None,
    data_mode: str | None = "real",
    min_samples: int = MIN_SAMPLES,
) -> PromptVersionsReport:
    """Per-version figures and deltas as a JSON-ready document (see the module docstring)."""
    scope = query_scope(where, environment, data_mode)
    filters = scope["where"]  # the scope's own copy of ``where``
    if endpoint is not None:
        filters["endpoint_tag"] = endpoint
    scan = _Scan()
    for values in store.scan_requests(window.start_ns, window.end_ns, columns=_COLUMNS, **scope):
        scan.add(_Row(*values))
    return {
        "window": span(*window.iso()),
        "endpoint": endpoint,
        "filters": {k: v for k, v in filters.items() if k != "endpoint_tag" or endpoint is None},
        "environment": scope["environment"],
        "data_mode": scope["data_mode"],
        "min_samples": min_samples,
        "versions": _version_rows(scan, min_samples),
    }


def _version_rows(scan: _Scan, min_samples: int) -> list[VersionRow]:
    """One row per (endpoint, version), by endpoint then first seen, each with its delta
    against the version seen just before it on the same endpoint."""
    rows: list[VersionRow] = []
    previous: dict[str | None, tuple[str | None, list[int], VersionRow]] = {}
    for (tag, version), entry in sorted(
        scan.versions.items(), key=lambda item: (item[0][0] or "", item[1].first_ns or 0)
    ):
        costs = [scan.requests[i].cost for i in entry.requests]
        successes = sum(scan.requests[i].success for i in entry.requests)
        row = _version_row(tag, version, entry, len(costs), successes)
        before = previous.get(tag)
        if version is not None:  # calls without a version are listed, but are no step in the history
            if before is not None:
                row["previous_version"] = before[0]
                row["delta"] = _delta(before[2], row, before[1], costs, min_samples)
            previous[tag] = (version, costs, row)
        rows.append(row)
    return rows


def _version_row(
    tag: str | None, version: str | None, entry: _Version, logical: int, successes: int
) -> VersionRow:
    """One version's figures, without its delta (that needs the version before it)."""
    entry.tokens.sort()
    return {
        "endpoint_tag": tag,
        "prompt_version": version,
        "logical_requests": logical,
        "attempts": entry.attempts,
        "cost_nano_usd": entry.cost,
        "cost_usd": usd(entry.cost),
        "cost_per_request_nano_usd": entry.cost // logical if logical else None,
        "cost_per_request_usd": usd(entry.cost // logical) if logical else None,
        "input_tokens_per_call": per(entry.input_tokens, entry.attempts, 1),
        "output_tokens_per_call": per(entry.output_tokens, entry.attempts, 1),
        "tokens_p50": nearest_rank(entry.tokens, 50),
        "tokens_p95": nearest_rank(entry.tokens, 95),
        "tokens_p99": nearest_rank(entry.tokens, 99),
        "success_rate": per(successes, logical, 4),
        "unpriced_attempts": entry.unpriced,
        "first_seen": TimeWindow(entry.first_ns or 0, 1).iso()[0],
        "last_seen": TimeWindow(entry.last_ns or 0, 1).iso()[0],
        "previous_version": None,
        "delta": None,
    }


def _delta(
    before: VersionRow,
    after: VersionRow,
    costs_before: list[int],
    costs_after: list[int],
    min_samples: int,
) -> VersionDelta:
    old, new = before["cost_per_request_nano_usd"], after["cost_per_request_nano_usd"]
    z = _welch(costs_before, costs_after)
    small = min(len(costs_before), len(costs_after)) < min_samples
    significant = not small and z is not None and abs(z) >= Z_95

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(b - a, 1)

    return {
        "cost_per_request_nano_usd": None if old is None or new is None else new - old,
        "cost_per_request_usd": None if old is None or new is None else usd(new - old),
        "cost_per_request_pct": round(100 * (new - old) / old, 2) if old and new is not None else None,
        "input_tokens_per_call": diff(before["input_tokens_per_call"], after["input_tokens_per_call"]),
        "output_tokens_per_call": diff(before["output_tokens_per_call"], after["output_tokens_per_call"]),
        "z": None if z is None or math.isinf(z) else round(z, 2),
        "significant": significant,
        "note": f"not significant: fewer than {min_samples} logical requests" if small else None,
    }


_CSV_NAMES: Final = (
    "endpoint_tag",
    "prompt_version",
    "logical_requests",
    "cost_per_request_usd",
    "input_tokens_per_call",
    "output_tokens_per_call",
    "tokens_p50",
    "tokens_p95",
    "tokens_p99",
    "success_rate",
    "first_seen",
    "last_seen",
    "previous_version",
)
"""Row fields in the CSV, before the delta's columns."""


def render_prompt_versions(report: Mapping[str, Any], fmt: str) -> str:
    """The comparison as ``table``, ``json`` or ``csv``."""
    if fmt == "json":
        return dump(report, indent=2) + "\n"
    if fmt == "csv":
        return _render_csv(report)
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(COMPARE_FORMATS)}")
    return _render_table(report)


def _render_csv(report: Mapping[str, Any]) -> str:
    """One CSV line per version, raw values (money as decimal strings) for spreadsheets."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*_CSV_NAMES, "delta_cost_per_request_usd", "delta_pct", "significant"])
    for row in report["versions"]:
        delta: Mapping[str, Any] = row["delta"] or {}
        writer.writerow(
            [
                *("" if row[n] is None else row[n] for n in _CSV_NAMES),
                delta.get("cost_per_request_usd", ""),
                delta.get("cost_per_request_pct", ""),
                delta.get("significant", ""),
            ]
        )
    return buffer.getvalue()


def _render_table(report: Mapping[str, Any]) -> str:
    """The table people read: one line per version, money at one precision per column."""
    window = report["window"]
    lines = [
        f"prompt versions {window['from']} .. {window['to']}  ({scope_text(report)})",
        f"{'endpoint':<22}{'version':<14}{'requests':>9}{'USD/request':>13}{'in/call':>9}{'out/call':>9}"
        f"{'p50':>7}{'p95':>7}{'p99':>7}{'success':>8}  {'first seen':<20}delta vs previous",
    ]
    versions = report["versions"]
    per_request = money_column([row["cost_per_request_nano_usd"] for row in versions])
    for row, cost in zip(versions, per_request, strict=True):
        delta = row["delta"]
        change = ""
        if delta:
            pct = delta["cost_per_request_pct"]
            mark = "" if delta["significant"] else " (not significant)"
            change = f"{row['previous_version']}: {pct:+.1f}%{mark}" if pct is not None else ""
        rate = row["success_rate"]
        lines.append(
            f"{(row['endpoint_tag'] or '(none)')[:21]:<22}{(row['prompt_version'] or '(none)')[:13]:<14}"
            f"{row['logical_requests']:>9}{cost:>13}"
            f"{row['input_tokens_per_call'] or 0:>9.0f}{row['output_tokens_per_call'] or 0:>9.0f}"
            f"{row['tokens_p50'] or 0:>7}{row['tokens_p95'] or 0:>7}{row['tokens_p99'] or 0:>7}"
            f"{(f'{rate:.1%}' if rate is not None else '-'):>8}  {row['first_seen'][:19]:<20}{change}"
        )
    return "\n".join(lines) + "\n"
