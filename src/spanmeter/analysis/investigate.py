"""``investigate``: what changed between a window and its baseline, who drove it, and why.

The investigation order users follow (confirm the window, rank by endpoint, by tenant and
user, compare prompt versions, contain) becomes one report: the total delta; for each
dimension the drivers ranked by their share of the delta, each split into volume, retry,
efficiency and price/mix effects that add up exactly (:mod:`.decompose`); and a
classification with its evidence (:mod:`.classify`). Everything is read from the rollups,
so a week of ten million spans answers in well under a second; only the evidence of some
classifications reads a few raw rows.

Baselines of another length than the window (``--baseline FROM..TO``: the last 2 hours
against the day before) are compared **per hour**: every count and cost of the baseline
is scaled by window length / baseline length (an exact :class:`~fractions.Fraction`)
before anything is subtracted, so a 4x traffic spike over 2 hours is a rise against a
24-hour baseline, not a drop against its 12 times larger total. The same scaled baseline
feeds every derived figure (driver deltas and shares, the effect split, the
classification's thresholds, the unpriced rise), and the report says so in
``comparison`` (``basis``: ``per_hour`` with the ``baseline_scale``, or ``totals`` when
the lengths are equal and nothing is scaled). Money stays exact: each scaled amount is
rounded half-even to the nano-USD once, where it is reported. The baseline's own figures
(``totals.baseline``, each driver's ``baseline``) stay as measured; the scaled cost is
beside them (``baseline_scaled_cost_nano_usd``).

Drivers are ranked in the direction of the total (largest rise first when spend rose),
and the groups moving against it (the largest drops during a rise) are listed apart as
``offsetting_drivers``: a deploy moves traffic from the old prompt version to the new
one, and the old version's drop is as much part of the story as the new one's rise (it
is why a rise can hold more than 100% of the delta).

Example::

    report = investigate(store, parse_range("2026-03-04..2026-03-05"), baseline="previous")
    report["classification"]["type"]       # e.g. "deploy"
    report["dimensions"][0]["drivers"][0]  # the top endpoint and its effects
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from ..money import usd, usd_fraction
from ..store import AggregateResult, GroupMeasures, Measures, SpanStore
from ..store.rollups import HOUR, MINUTE, RollupSpec
from ..store.tiers import FILTER_DIMENSIONS
from ..timeunits import NS_PER_HOUR
from .classify import classify
from .common import drilldown, measures_summary, parse_range
from .decompose import Effects, Side, split_scaled
from .documents import Link, Scope, span
from .investigate_documents import (
    Comparison,
    DimensionEntry,
    InvestigateReport,
    RankedDimension,
    SideFigures,
    Totals,
)
from .ranked import Ranked
from .window import TimeWindow, parse_duration, query_scope

__all__ = [
    "BASELINES",
    "INVESTIGATE_DIMENSIONS",
    "baseline_scale",
    "comparison",
    "investigate",
    "resolve_baseline",
]

INVESTIGATE_DIMENSIONS: Final = (
    "endpoint_tag",
    "tenant_id",
    "user_id",
    "prompt_version",
    "model",
    "provider",
)
"""Dimensions ranked, in the order of the investigation workflow."""
BASELINES: Final = ("previous", "7d")
"""Named baselines: the window just before, or the same window a week earlier."""


def resolve_baseline(window: TimeWindow, baseline: str) -> TimeWindow:
    """``previous`` (same length, just before), a duration such as ``7d`` or ``24h`` (the
    same window shifted back by it), or an explicit ``FROM..TO``.

    Raises:
        ValueError: None of those, or a baseline overlapping the window.
    """
    text = baseline.strip()
    length = window.end_ns - window.start_ns
    if text == "previous":
        resolved = TimeWindow(window.start_ns - length, window.start_ns)
    elif ".." in text:
        resolved = parse_range(text)
    else:
        shift = parse_duration(text)
        resolved = TimeWindow(window.start_ns - shift, window.end_ns - shift)
    if resolved.start_ns < window.end_ns and window.start_ns < resolved.end_ns:
        raise ValueError("the baseline overlaps the window: choose an earlier baseline")
    return resolved


def baseline_scale(window: TimeWindow, baseline: TimeWindow) -> Fraction:
    """Window length / baseline length: what the baseline's counts are multiplied by to
    compare per-hour rates (1: equal lengths, totals compared as they are)."""
    return Fraction(window.end_ns - window.start_ns, baseline.end_ns - baseline.start_ns)


def _rounded(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half-even to an integer (``round`` of the
    Fraction, without building one: investigate rounds a figure of every group)."""
    quotient, rest = divmod(numerator, denominator)
    if 2 * rest > denominator or (2 * rest == denominator and quotient % 2):
        quotient += 1
    return quotient


def _hours(window: TimeWindow) -> float:
    return round((window.end_ns - window.start_ns) / NS_PER_HOUR, 4)  # display only


def comparison(window: TimeWindow, baseline: TimeWindow, base_cost: int, current_cost: int) -> Comparison:
    """How the window is compared with the baseline: ``totals`` (equal lengths) or
    ``per_hour`` (the baseline scaled by ``baseline_scale``, exact as ``p/q``), with the
    cost per hour of both (exact, rounded once to the nano-USD)."""
    scale = baseline_scale(window, baseline)
    per_hour = {
        side: usd_fraction(Fraction(cost * NS_PER_HOUR, w.end_ns - w.start_ns))
        for side, cost, w in (("baseline", base_cost, baseline), ("current", current_cost, window))
    }
    return {
        "basis": "totals" if scale == 1 else "per_hour",
        "baseline_scale": str(scale),
        "window_hours": _hours(window),
        "baseline_hours": _hours(baseline),
        "cost_per_hour_usd": per_hour,
        "note": "equal lengths: totals compared as they are"
        if scale == 1
        else f"baseline scaled by {scale} (window {_hours(window)} h / baseline {_hours(baseline)} h):"
        " deltas, shares, effects and the classification compare per-hour rates, over the window's length",
    }


def _spec(dimension: str, where: Mapping[str, str]) -> RollupSpec:
    """The rollup a ranking of ``dimension`` under ``where`` reads (as the store picks it)."""
    return HOUR if "user_id" in {dimension, *where} else MINUTE


def _available(dimension: str, where: Mapping[str, str]) -> str | None:
    """Why ``dimension`` cannot be ranked under ``where`` (None: it can)."""
    names = {dimension, *where}
    spec = _spec(dimension, where)
    missing = [name for name in names if name not in spec.dimensions]
    if missing:
        return f"not available with a filter on {', '.join(sorted(set(where) & set(missing) or where))}"
    return None


@dataclass(frozen=True, slots=True)
class _Context:
    """What every driver's links and effects need: the window, how the baseline was asked
    for, the baseline's scale and the filters."""

    window: TimeWindow
    baseline_spec: str
    scale: Fraction
    scope: Scope


def _driver(
    key: str | None,
    base: Measures | None,
    current: Measures | None,
    total_delta: int,
    scale: Fraction,
) -> Ranked:
    """A driver's figures and delta against the baseline scaled by ``scale`` (``p/q``).

    The exact delta ``current - p/q x baseline`` is kept as the integer ``q x current -
    p x baseline`` (``_delta``, as ``total_delta`` is): ranking, signs and shares need no
    Fraction, and each reported amount is rounded once. Effects and links are added by
    :func:`_detail`.
    """
    base_side, current_side = Side.of(base), Side.of(current)
    p, q = scale.numerator, scale.denominator
    exact = q * current_side.cost_nano_usd - p * base_side.cost_nano_usd
    delta = _rounded(exact, q)
    expected = _rounded(p * base_side.cost_nano_usd, q)
    return Ranked(
        value=key,
        baseline=_side_figures(base_side, base),
        current=_side_figures(current_side, current),
        sides=(base_side, current_side),
        exact_delta=exact,
        baseline_scaled_cost_nano_usd=expected,
        delta_nano_usd=delta,
        share=round(exact / total_delta, 4) if total_delta else None,  # display only
    )


def _detail(dimension: str, driver: Ranked, context: _Context) -> None:
    """Add the exact effect split and the drill-down links (only for drivers shown or used)."""
    if driver.effects is None:
        driver.effects = split_scaled(*driver.sides, context.scale)
        driver.drilldown = _drilldowns(dimension, driver.value, context)


def _both(
    store: SpanStore,
    dimensions: tuple[str, ...],
    windows: tuple[TimeWindow, TimeWindow],
    scope: Scope,
) -> tuple[AggregateResult, AggregateResult]:
    """The grouping of ``dimensions`` in the baseline and in the current window."""
    base, current = (store.aggregate(dimensions, w.start_ns, w.end_ns, **scope) for w in windows)
    return base, current


def _only_group(dimension: str, value: str, other: AggregateResult) -> AggregateResult:
    """The grouping by ``dimension`` under the filter ``dimension=value``, from ``other``.

    ``other`` is another dimension's grouping under the same filter, from the same rollup:
    every attempt it counts carries ``value`` (``''``: none), so the answer is one group
    holding its total, exactly what the store would return, without reading again.
    """
    groups = [GroupMeasures((value or None,), other.total)] if other.groups else []
    return AggregateResult(
        dimensions=(dimension,),
        window_start_ns=other.window_start_ns,
        window_end_ns=other.window_end_ns,
        bucket_seconds=other.bucket_seconds,
        groups=groups,
        total=other.total,
    )


def _project(result: AggregateResult, index: int) -> AggregateResult:
    """The groups of one dimension of a multi-dimension aggregation (measures summed)."""
    groups: dict[tuple[str | None, ...], Measures] = {}
    for group in result.groups:
        key = (group.key[index],)
        previous = groups.get(key)
        groups[key] = group.measures if previous is None else previous + group.measures
    ordered = sorted(groups.items(), key=lambda item: (-item[1].cost_nano_usd, item[0][0] or ""))
    return AggregateResult(
        dimensions=(result.dimensions[index],),
        window_start_ns=result.window_start_ns,
        window_end_ns=result.window_end_ns,
        bucket_seconds=result.bucket_seconds,
        groups=[GroupMeasures(key, measures) for key, measures in ordered],
        total=result.total,
    )


def _side_figures(side: Side, measures: Measures | None) -> SideFigures:
    return {
        "cost_nano_usd": side.cost_nano_usd,
        "logical_requests": side.logical_requests,
        "attempts": side.attempts,
        "input_tokens": measures.input_tokens if measures else 0,
        "output_tokens": measures.output_tokens if measures else 0,
        "unpriced_attempts": measures.unpriced if measures else 0,
        "errors": measures.errors if measures else 0,
    }


def _drilldowns(dimension: str, key: str | None, context: _Context) -> dict[str, Link]:
    """Focused views of one driver in the current window (seed workflow: driver -> view)."""
    window, scope = context.window, context.scope
    where = {**scope["where"], dimension: key or ""}
    common = {"environment": scope["environment"], "data_mode": scope["data_mode"]}
    views = {
        "investigate": drilldown(
            ["spanmeter", "investigate"],
            "/api/v1/investigate",
            window,
            where=where,
            extra={"baseline": context.baseline_spec},
            **common,
        )
    }
    next_by = {"endpoint_tag": "tenant_id", "tenant_id": "user_id", "prompt_version": "endpoint_tag"}.get(
        dimension, "endpoint_tag"
    )
    if next_by not in where:
        views["top"] = drilldown(
            ["spanmeter", "top"], "/api/v1/top", window, where=where, extra={"by": next_by}, **common
        )
    if dimension == "endpoint_tag" and key:
        views["prompt_versions"] = drilldown(
            ["spanmeter", "compare", "prompt-versions"],
            "/api/v1/compare/prompt-versions",
            window,
            where={},
            extra={"endpoint": key},
            **common,
        )
    return views


def _rank(
    dimension: str,
    base: AggregateResult,
    current: AggregateResult,
    total_delta: int,
    context: _Context,
    detailed: int,
) -> tuple[list[Ranked], list[Ranked]]:
    """Every group ranked by its share of the delta (in the total's direction), and the
    groups moving against the total, largest move first; the first ``detailed`` of each
    get effects and links."""
    base_groups, current_groups = base.by_key(), current.by_key()
    keys = set(base_groups) | set(current_groups)
    scale = context.scale
    drivers = [
        _driver(key[0], base_groups.get(key), current_groups.get(key), total_delta, scale) for key in keys
    ]
    sign = -1 if total_delta < 0 else 1
    drivers.sort(key=lambda d: (-sign * d.exact_delta, d.value is None, d.value or ""))
    offsetting = sorted(
        (d for d in drivers if sign * d.exact_delta < 0),
        key=lambda d: (sign * d.exact_delta, d.value is None, d.value or ""),
    )
    for driver in (*drivers[:detailed], *offsetting[:detailed]):
        _detail(dimension, driver, context)
    return drivers, offsetting


def investigate(
    store: SpanStore,
    window: TimeWindow,
    baseline: str = "previous",
    *,
    where: Mapping[str, str] | None = None,
    environment: str | None = None,
    data_mode: str | None = "real",
    limit: int = 10,
) -> InvestigateReport:
    """The investigation of ``window`` against ``baseline`` as a JSON-ready document.

    Args:
        store: Any :class:`~spanmeter.store.SpanStore`.
        window: The spike window.
        baseline: See :func:`resolve_baseline`.
        where: Filters (``dim=value``) applied to both windows; ``environment`` and
            ``data_mode`` keys override the parameters.
        environment: Only this environment (None: all).
        data_mode: Only this data mode (default ``real``; None: all).
        limit: Drivers listed per dimension, and as many offsetting ones (the ranking and
            effects cover all groups).

    Raises:
        ValueError: A bad baseline or filter.
    """
    scope = query_scope(where, environment, data_mode)
    base_window = resolve_baseline(window, baseline)
    scale = baseline_scale(window, base_window)
    context = _Context(window, baseline, scale, scope)
    notes = {d: reason for d in INVESTIGATE_DIMENSIONS if (reason := _available(d, scope["where"]))}
    available = [d for d in INVESTIGATE_DIMENSIONS if d not in notes]
    results = _read(store, available, scope["where"], (base_window, window), scope)
    base_total, current_total = results["endpoint_tag"][0].total, results["endpoint_tag"][1].total
    p, q = scale.numerator, scale.denominator
    total_delta = q * current_total.cost_nano_usd - p * base_total.cost_nano_usd  # q x the exact delta
    rankings, dimensions = _rank_all(results, notes, total_delta, context, limit)
    base_start, base_end = base_window.iso()
    totals = _totals(
        (base_total, current_total), (base_window, window), total_delta, scale, rankings["endpoint_tag"]
    )
    return {
        "window": span(*window.iso()),
        "baseline": {"from": base_start, "to": base_end, "spec": baseline},
        "comparison": comparison(window, base_window, base_total.cost_nano_usd, current_total.cost_nano_usd),
        "filters": scope["where"],
        "environment": scope["environment"],
        "data_mode": scope["data_mode"],
        "totals": totals,
        "dimensions": dimensions,
        "classification": classify(
            store, totals, rankings, window=window, baseline_window=base_window, scope=scope
        ),
    }


def _rank_all(
    results: Mapping[str, tuple[AggregateResult, AggregateResult]],
    notes: Mapping[str, str],
    total_delta: int,
    context: _Context,
    limit: int,
) -> tuple[dict[str, list[Ranked]], list[DimensionEntry]]:
    """Every dimension ranked (all its drivers, for the classification) and its entry in
    the report, in the workflow's order; a dimension the filters rule out gets its note."""
    rankings: dict[str, list[Ranked]] = {}
    dimensions: list[DimensionEntry] = []
    for dimension in INVESTIGATE_DIMENSIONS:
        if dimension not in results:
            dimensions.append({"dimension": dimension, "available": False, "note": notes[dimension]})
            continue
        base, current = results[dimension]
        # every endpoint is split: the classification sums their effects
        detailed = len(base.groups) + len(current.groups) if dimension == "endpoint_tag" else limit
        drivers, offsetting = _rank(dimension, base, current, total_delta, context, detailed)
        rankings[dimension] = drivers
        dimensions.append(_dimension(dimension, current, drivers, offsetting, context.scale, limit))
    return rankings, dimensions


def _read(
    store: SpanStore,
    available: list[str],
    filters: Mapping[str, str],
    windows: tuple[TimeWindow, TimeWindow],
    scope: Scope,
) -> dict[str, tuple[AggregateResult, AggregateResult]]:
    """Each available dimension's grouping in the baseline and in the window, read the
    cheapest way the filters allow."""
    results: dict[str, tuple[AggregateResult, AggregateResult]] = {}
    if len(filters) == 1 and next(iter(filters)) in FILTER_DIMENSIONS:
        # One filter: each dimension alone reads whole days from the filter tier (a few
        # thousand rows) instead of every rollup row of the window (measured on 10 million
        # spans a week: 2.9 s for the whole investigation before, see bench/README.md). The
        # filtered dimension itself has one group, the filter value, holding the window's
        # total: taken from another dimension's read.
        ((name, value),) = filters.items()
        for dimension in available:
            if dimension != name:
                results[dimension] = _both(store, (dimension,), windows, scope)
        source = next(d for d in available if d != name and _spec(d, filters) is _spec(name, filters))
        results[name] = (
            _only_group(name, value, results[source][0]),
            _only_group(name, value, results[source][1]),
        )
    elif filters:
        # Several filters cannot use the tiers: each read scans the window's rollup rows. One
        # scan grouped by every dimension of a rollup, projected per dimension below, costs
        # about what one dimension does (measured: 1.2 s vs 1.0 s a week).
        for spec in (MINUTE, HOUR):
            names = tuple(d for d in available if _spec(d, filters) is spec)
            if not names:
                continue
            base, current = _both(store, names, windows, scope)
            for index, dimension in enumerate(names):
                results[dimension] = (_project(base, index), _project(current, index))
    else:
        for dimension in available:
            results[dimension] = _both(store, (dimension,), windows, scope)
    return results


def _dimension(
    dimension: str,
    current: AggregateResult,
    drivers: list[Ranked],
    offsetting: list[Ranked],
    scale: Fraction,
    limit: int,
) -> RankedDimension:
    """One ranked dimension of the report: its drivers, the groups moving against the
    total, and the groups whose unpriced attempts rose (compared per hour, as the rest)."""
    p, q = scale.numerator, scale.denominator

    def unpriced_rise(driver: Ranked) -> int:
        return q * driver.current["unpriced_attempts"] - p * driver.baseline["unpriced_attempts"]

    unpriced = sorted(
        (d for d in drivers if unpriced_rise(d) > 0),
        key=lambda d: (-unpriced_rise(d), d.value or ""),
    )
    return {
        "dimension": dimension,
        "available": True,
        "bucket_seconds": current.bucket_seconds,
        "window": span(*TimeWindow(current.window_start_ns, current.window_end_ns).iso()),
        "groups": len(drivers),
        "moves": {
            "up": sum(d.exact_delta > 0 for d in drivers),
            "down": sum(d.exact_delta < 0 for d in drivers),
            "unchanged": sum(d.exact_delta == 0 for d in drivers),
        },
        "drivers": [d.document() for d in drivers[:limit]],
        "offsetting_drivers": [d.document() for d in offsetting[:limit]],
        "unpriced_drivers": [
            {
                "value": d.value,
                "baseline_unpriced_attempts": d.baseline["unpriced_attempts"],
                "current_unpriced_attempts": d.current["unpriced_attempts"],
            }
            for d in unpriced[:limit]
        ],
    }


def _totals(
    measures: tuple[Measures, Measures],
    windows: tuple[TimeWindow, TimeWindow],
    total_delta: int,
    scale: Fraction,
    endpoints: list[Ranked],
) -> Totals:
    """The report's totals: both sides as measured, the scaled baseline and the delta
    (``total_delta`` is q x the exact delta, rounded once here), and the effects summed
    over endpoints (within-endpoint effects, see :mod:`.classify`)."""
    (base_total, current_total), (base_window, window) = measures, windows
    p, q = scale.numerator, scale.denominator
    effects = Effects(0, 0, 0, 0)
    for driver in endpoints:
        if driver.effects is not None:  # every endpoint is detailed
            effects = effects + driver.effects
    base_scaled = _rounded(p * base_total.cost_nano_usd, q)
    delta = _rounded(total_delta, q)
    return {
        "baseline": measures_summary(base_total, base_window),
        "current": measures_summary(current_total, window),
        "baseline_scaled_cost_nano_usd": base_scaled,
        "baseline_scaled_cost_usd": usd(base_scaled),
        "delta_nano_usd": delta,
        "delta_usd": usd(delta),
        "delta_pct": round(100 * total_delta / (p * base_total.cost_nano_usd), 2)
        if base_total.cost_nano_usd
        else None,
        "effects_nano_usd": effects.as_dict(),
        "effects_basis": "sum of the endpoint_tag drivers' effects",
    }
