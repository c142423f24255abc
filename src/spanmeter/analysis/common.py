"""Helpers every analysis shares (money is :mod:`spanmeter.money`): window ranges, drill-down links, percentiles.

Money stays integer nano-USD inside; USD appears only as decimal strings in reports, so a
JSON consumer never sums floats. Drill-down links carry the window, environment and data
mode of the view they come from, so following one never silently widens the question.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from ..money import usd
from ..store import Measures
from ..timeunits import NS_PER_HOUR
from .documents import Link, Summary
from .window import TimeWindow, parse_instant

__all__ = [
    "drilldown",
    "measures_summary",
    "nearest_rank",
    "parse_range",
    "per",
    "scope_text",
]


def per(numerator: int | float, denominator: int | float, digits: int = 2) -> float | None:
    """A display ratio rounded to ``digits``; None when the denominator is 0."""
    return round(numerator / denominator, digits) if denominator else None


def scope_text(report: Mapping[str, Any]) -> str:
    """``data_mode=..., environment=...`` of a report, ``all`` where it did not filter, so
    every table says alike which spans it counted."""
    return f"data_mode={report['data_mode'] or 'all'}, environment={report['environment'] or 'all'}"


def parse_range(text: str) -> TimeWindow:
    """``FROM..TO`` (ISO 8601 or Unix seconds each) -> a window.

    Raises:
        ValueError: Not two instants separated by ``..``, or an empty window.
    """
    start, sep, end = text.partition("..")
    if not sep or not start.strip() or not end.strip():
        raise ValueError(f"invalid window {text!r}: use FROM..TO, e.g. 2026-03-04T00:00..2026-03-05T00:00")
    window = TimeWindow(parse_instant(start), parse_instant(end))
    if window.start_ns >= window.end_ns:
        raise ValueError(f"the window {text!r} is empty: FROM must be before TO")
    return window


def measures_summary(measures: Measures, window: TimeWindow) -> Summary:
    """The figures a person reads about a window: counts, money, and the per-unit ratios."""
    hours = (window.end_ns - window.start_ns) / NS_PER_HOUR
    cost = measures.cost_nano_usd
    return {
        "cost_nano_usd": cost,
        "cost_usd": usd(cost),
        "logical_requests": measures.logical_requests,
        "attempts": measures.attempts,
        "retries": measures.retries,
        "input_tokens": measures.input_tokens,
        "output_tokens": measures.output_tokens,
        "errors": measures.errors,
        "unpriced_attempts": measures.unpriced,
        "requests_per_hour": per(measures.logical_requests, hours),
        "input_tokens_per_call": per(measures.input_tokens, measures.attempts, 1),
        "output_tokens_per_call": per(measures.output_tokens, measures.attempts, 1),
        "cost_per_request_usd": usd(cost // measures.logical_requests) if measures.logical_requests else None,
        "attempts_per_request": per(measures.attempts, measures.logical_requests, 3),
    }


def drilldown(
    command: Sequence[str],
    api_path: str,
    window: TimeWindow,
    *,
    where: Mapping[str, str],
    environment: str | None,
    data_mode: str | None,
    extra: Mapping[str, str] | None = None,
) -> Link:
    """The CLI command and API URL of a focused view, keeping window, environment and data mode."""
    start, end = window.iso()
    args = [*command, "--from", start, "--to", end]
    params: list[tuple[str, str]] = [("from", start), ("to", end)]
    for key, value in (extra or {}).items():
        args += [f"--{key.replace('_', '-')}", value]
        params.append((key, value))
    for key, value in where.items():
        args += ["--where", f"{key}={value}"]
        params.append(("where", f"{key}={value}"))
    if environment:
        args += ["--environment", environment]
        params.append(("environment", environment))
    args += ["--data-mode", data_mode or "all"]
    params.append(("data_mode", data_mode or "all"))
    return {
        "cli": " ".join(_quote(arg) for arg in args),
        "api": f"{api_path}?{urlencode(params)}",
    }


def _quote(arg: str) -> str:
    return (
        arg
        if arg and all(c.isalnum() or c in "-_.=:/+@" for c in arg)
        else "'" + arg.replace("'", "'\\''") + "'"
    )


def nearest_rank(sorted_values: Sequence[int], percent: int) -> int | None:
    """The nearest-rank percentile: the smallest value with at least ``percent``% of values
    at or below it. Always an observed value, so it is exact and easy to recompute."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(percent * len(sorted_values) / 100))
    return sorted_values[rank - 1]
