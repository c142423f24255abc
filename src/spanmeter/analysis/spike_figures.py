"""The figures behind a spike's evidence: the driving endpoint's per-unit numbers in both
windows, how concentrated the delta is, and which prompt versions ran on the endpoint.

These are the numbers the cost-spike triage note asks for (requests per hour, tokens per
call in and out, cost per request, top tenant and user, prompt-version correlation). They
are kept as structured facts next to the evidence text, so a script or a test reads the
numbers without parsing sentences, and the sentences are made from the same facts.

All figures come from the drivers of the rankings already computed (rollups), except the
prompt versions, which read the bounded evidence slices of :mod:`.evidence`.

Example::

    figures = endpoint_figures(driver, window, baseline_window)
    figures["current"]["requests_per_hour"], endpoint_line(figures)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

from ..money import money_text, usd
from ..store import Measures, SpanStore
from ..timeunits import NS_PER_HOUR
from .common import per
from .documents import Scope
from .evidence import first_seen, recent_mix
from .investigate_documents import (
    DeployFacts,
    EndpointFigures,
    Lead,
    NewVersion,
    SideFigures,
    UnitFigures,
    VersionFacts,
)
from .ranked import Ranked
from .window import TimeWindow

__all__ = [
    "deploy_facts",
    "endpoint_figures",
    "endpoint_line",
    "spread",
    "spread_line",
    "version_facts",
    "version_line",
]


def _side(figures: SideFigures, window: TimeWindow) -> UnitFigures:
    """Per-unit figures of one driver side; ratios rounded for display, money exact."""
    hours = (window.end_ns - window.start_ns) / NS_PER_HOUR
    logical, attempts = figures["logical_requests"], figures["attempts"]
    per_request = figures["cost_nano_usd"] // logical if logical else None
    return {
        "logical_requests": logical,
        "attempts": attempts,
        "requests_per_hour": per(logical, hours),
        "input_tokens_per_call": per(figures["input_tokens"], attempts, 1),
        "output_tokens_per_call": per(figures["output_tokens"], attempts, 1),
        "cost_per_request_nano_usd": per_request,
        "cost_per_request_usd": usd(per_request),
        "attempts_per_request": per(attempts, logical, 3),
    }


def _change_pct(before: int, before_calls: int, now: int, now_calls: int) -> float | None:
    """Relative change of a per-call ratio, in percent (None without a baseline)."""
    if not before or not before_calls or not now_calls:
        return None
    return round(float(100 * (Fraction(now * before_calls, now_calls * before) - 1)), 1)


def endpoint_figures(driver: Ranked, window: TimeWindow, baseline_window: TimeWindow) -> EndpointFigures:
    """The driving endpoint's figures in the baseline and the window, and how its tokens per
    call (input, output, both) changed."""
    b, c = driver.baseline, driver.current
    return {
        "value": driver.value,
        "baseline": _side(b, baseline_window),
        "current": _side(c, window),
        "tokens_per_call_change_pct": {
            "input": _change_pct(b["input_tokens"], b["attempts"], c["input_tokens"], c["attempts"]),
            "output": _change_pct(b["output_tokens"], b["attempts"], c["output_tokens"], c["attempts"]),
            "total": _change_pct(
                b["input_tokens"] + b["output_tokens"],
                b["attempts"],
                c["input_tokens"] + c["output_tokens"],
                c["attempts"],
            ),
        },
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def _figure(value: float | None) -> str:
    """A ratio for people: ``-`` where it has no denominator (no calls on that side)."""
    return "-" if value is None else str(value)


def endpoint_line(figures: EndpointFigures) -> str:
    """One evidence line with the endpoint's requests/hour, tokens per call and cost per request."""
    b, c = figures["baseline"], figures["current"]
    change = figures["tokens_per_call_change_pct"]
    return (
        f"on {figures['value'] or '(untagged)'}: requests/hour {b['requests_per_hour']} -> {c['requests_per_hour']};"
        f" tokens per call in/out {_figure(b['input_tokens_per_call'])}/{_figure(b['output_tokens_per_call'])}"
        f" -> {_figure(c['input_tokens_per_call'])}/{_figure(c['output_tokens_per_call'])}"
        f" ({_pct(change['input'])} in, {_pct(change['output'])} out);"
        f" cost per request {money_text(b['cost_per_request_nano_usd'])}"
        f" -> {money_text(c['cost_per_request_nano_usd'])} USD;"
        f" attempts per request {_figure(b['attempts_per_request'])} -> {_figure(c['attempts_per_request'])}"
    )


def spread(rankings: Mapping[str, list[Ranked]], delta: int) -> dict[str, Lead]:
    """The tenant and the user holding the largest share of the delta, with that share."""
    found: dict[str, Lead] = {}
    for dimension in ("tenant_id", "user_id"):
        ranked = rankings.get(dimension)
        if ranked and delta:
            lead = ranked[0]
            found[dimension] = {
                "value": lead.value,
                "delta_nano_usd": lead.delta_nano_usd,
                "share": round(lead.delta_nano_usd / delta, 4),  # display only
            }
    return found


def spread_line(found: Mapping[str, Lead], threshold: Fraction) -> str:
    """How concentrated the delta is, against the concentration threshold."""
    parts = [
        f"top {dimension.removesuffix('_id')} {lead['value'] or '(none)'} holds {lead['share']:.0%} of the delta"
        f" ({money_text(lead['delta_nano_usd'], signed=True)} USD)"
        for dimension, lead in found.items()
    ]
    return (
        "spread: "
        + (", ".join(parts) or "no tenant or user data")
        + f" (concentration needs {float(threshold):.0%})"
    )


def version_facts(
    store: SpanStore,
    endpoint: str | None,
    found: list[tuple[str, int]],
    window: TimeWindow,
    baseline_window: TimeWindow,
    scope: Scope,
) -> VersionFacts:
    """Prompt versions on ``endpoint`` in the latest slice of each window, and the versions
    first seen in the window there (``found``, from :func:`.evidence.new_versions_on`)."""
    piece_before, before = recent_mix(store, "prompt_version", endpoint, baseline_window, scope)
    piece_now, now = recent_mix(store, "prompt_version", endpoint, window, scope)
    new: list[NewVersion] = []
    for version, hour in found:
        first = first_seen(store, {"endpoint_tag": endpoint or "", "prompt_version": version}, hour, scope)
        new.append(
            {"version": version, "first_seen": TimeWindow(first, first + 1).iso()[0] if first else None}
        )

    def names(groups: Mapping[tuple[str | None, ...], Measures]) -> list[str | None]:
        return sorted((key[0] for key in groups), key=lambda v: (v is None, v or ""))

    return {
        "endpoint": endpoint,
        "baseline": names(before),
        "current": names(now),
        "new": new,
        "slices": {"baseline": list(piece_before.iso()), "current": list(piece_now.iso())},
    }


def version_line(facts: VersionFacts, conclusion: str) -> str:
    """Which prompt versions ran before and after, what is new, and what that means."""

    def names(values: list[str | None]) -> str:
        return ", ".join(v or "(none)" for v in values) or "(no traffic)"

    new = facts["new"]
    found = (
        "new in the window: "
        + ", ".join(f"{n['version']} (first seen {n['first_seen'] or 'n/a'})" for n in new)
        if new
        else "no version first seen in the window"
    )
    return (
        f"prompt versions on {facts['endpoint'] or '(untagged)'}: {names(facts['baseline'])}"
        f" -> {names(facts['current'])} (latest traffic of each window); {found}: {conclusion}"
    )


def deploy_facts(
    store: SpanStore,
    found: tuple[str, int],
    endpoint: str,
    versions: Sequence[Ranked],
    baseline_window: TimeWindow,
    scope: Scope,
) -> DeployFacts:
    """A deploy's facts: the new version (``found``: it and the hour it first ran), the
    version it replaced (the busiest in the baseline's latest traffic), when it first ran,
    tokens per call of each, and how input and output tokens per call changed between
    them (what the containment is chosen from: a longer prompt or longer answers)."""
    version, hour = found
    _, before = recent_mix(store, "prompt_version", endpoint, baseline_window, scope)
    previous = max(
        (k for k in before if k[0]),
        key=lambda k: (before[k].logical_requests, k[0] or ""),
        default=(None,),
    )[0]
    first = first_seen(store, {"endpoint_tag": endpoint, "prompt_version": version}, hour, scope)
    seen = TimeWindow(first, first + 1).iso()[0] if first else None
    by_value = {d.value: d for d in versions}
    new_figures = by_value[version].current
    old_figures = by_value[previous].baseline if previous in by_value else None
    tokens = {"previous": _tokens(old_figures), "new": _tokens(new_figures)}
    change: dict[str, float | None] = {"input": None, "output": None}
    if old_figures is not None:
        old, new = old_figures, new_figures
        change = {
            "input": _change_pct(old["input_tokens"], old["attempts"], new["input_tokens"], new["attempts"]),
            "output": _change_pct(
                old["output_tokens"], old["attempts"], new["output_tokens"], new["attempts"]
            ),
        }
    return {
        "version": version,
        "previous": previous,
        "first_seen": seen,
        "tokens_per_call": tokens,
        "tokens_per_call_change_pct": change,
    }


def _tokens(figures: SideFigures | None) -> float | None:
    """Input plus output tokens per call (attempt)."""
    if not figures:
        return None
    return per(figures["input_tokens"] + figures["output_tokens"], figures["attempts"], 1)
