"""Classify a spike (volume, token, deploy, abuse, retries, routing, unknown model) with evidence.

The rules, in order (each threshold is a constant below, so a report can cite it):

1. **unknown_model**: attempts on models that arrived with usage but no price (a model
   group with tokens, no cost) make up at least :data:`UNKNOWN_SHARE_MIN` of the window
   and rose by :data:`UNKNOWN_RISE_MIN`. Checked first: no cost attribution can be trusted
   while part of the traffic has no price.
2. **none**: spend did not rise.
3. Otherwise the *within-endpoint* effects decide: each endpoint's delta is split
   (:mod:`.decompose`) and the effects are summed over endpoints. Summing within
   endpoints (rather than splitting the window total) keeps a shift of traffic towards an
   expensive endpoint a volume effect instead of a fake efficiency change. The largest
   positive effect names the mechanism:

   * retry -> **retries** (driver: the endpoint with the largest retry effect);
   * price -> **routing** (driver: the endpoint with the largest price effect; evidence:
     its models and how many calls were answered by another model than requested);
   * efficiency -> **deploy** when the driving endpoint has a prompt version not seen in
     the baseline, else **token**;
   * volume -> **abuse** when one tenant (or user) holds at least
     :data:`CONCENTRATION_SHARE` of the delta, else **volume**.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Final

from ..store import SpanStore
from .common import drilldown, per, usd
from .evidence import HOUR_NS, fallback_share, first_seen, new_versions_on, recent_mix
from .window import TimeWindow

__all__ = ["CONCENTRATION_SHARE", "CONTAINMENT", "UNKNOWN_RISE_MIN", "UNKNOWN_SHARE_MIN", "classify"]

CONCENTRATION_SHARE: Final = Fraction(1, 2)
"""Share of the delta one tenant or user must hold for a volume spike to count as abuse."""
UNKNOWN_SHARE_MIN: Final = Fraction(1, 100)
"""Share of attempts on unpriced models that makes the cost numbers untrustworthy."""
UNKNOWN_RISE_MIN: Final = Fraction(1, 200)
"""Rise of that share against the baseline that makes it this spike's story."""

_HYPOTHESIS: Final = {
    "volume": "volume",
    "abuse": "abuse",
    "token": "efficiency",
    "deploy": "efficiency",
    "retries": "retries",
    "routing": "routing",
    "unknown_model": "routing",
    "none": "none",
}
_LABELS: Final = {
    "volume": "volume spike: more logical requests",
    "abuse": "concentration: one tenant or user drives the spike",
    "token": "token spike: more tokens per call",
    "deploy": "deploy: a new prompt version uses more tokens per call",
    "retries": "retry storm: more attempts per logical request",
    "routing": "routing/fallback: calls answered by a pricier model",
    "unknown_model": "pricing gap: calls on models with no price",
    "none": "no spike: spend did not rise",
}
CONTAINMENT: Final = {
    "volume": "Throttle non-critical traffic on {endpoint}.",
    "abuse": "Enforce a per-{dimension} limit on {value} and check its traffic for abuse.",
    "token": "Cap output tokens (max_tokens) on {endpoint} and review prompt/context growth.",
    "deploy": "Roll {endpoint} back to prompt version {previous} (or cap output tokens) until {version}'s "
    "cost per request is accepted.",
    "retries": "Cap attempts per request and add backoff on {endpoint}; fix the failing dependency first.",
    "routing": "Pin {endpoint} to the requested model or fix the fallback route ({answered} answers instead).",
    "unknown_model": "Add prices for {models} to the override file before finance reconciliation.",
    "none": "No containment needed.",
}
"""Containment by driver type, from the alert-to-root-cause workflow."""
_CONTROLS: Final = {
    "volume": "a daily budget on endpoint {endpoint} with a warning at 80%",
    "abuse": "a per-{dimension} daily budget (hard limit) for {value}",
    "token": "an alert on tokens per call for {endpoint}",
    "deploy": "an alert on cost per request drift by prompt version on {endpoint}",
    "retries": "an alert on attempts per logical request for {endpoint}",
    "routing": "an alert on calls whose response model differs from the request model on {endpoint}",
    "unknown_model": "a data-quality gate on the unknown-model ratio (spanmeter doctor in CI)",
    "none": "keep the existing budgets; nothing new this week",
}


def _top(drivers: list[dict[str, Any]], effect: str) -> dict[str, Any] | None:
    candidates = [d for d in drivers if d["effects_nano_usd"][effect] > 0]
    return max(candidates, key=lambda d: (d["effects_nano_usd"][effect], d["value"] or ""), default=None)


def _unknown_models(drivers: list[dict[str, Any]], side: str) -> dict[str, int]:
    """Models (by attempts) whose traffic has tokens but no cost at all."""
    found: dict[str, int] = {}
    for driver in drivers:
        figures = driver[side]
        tokens = figures["input_tokens"] + figures["output_tokens"]
        if (
            driver["value"]
            and tokens > 0
            and figures["cost_nano_usd"] == 0
            and figures["unpriced_attempts"] == figures["attempts"]
        ):
            found[driver["value"]] = figures["attempts"]
    return found


def classify(
    store: SpanStore,
    report: dict[str, Any],
    rankings: dict[str, list[dict[str, Any]]],
    *,
    window: TimeWindow,
    baseline_window: TimeWindow,
    scope: Mapping[str, Any],
) -> dict[str, Any]:
    """The spike's type, driver, evidence, containment and next verification step."""
    totals = report["totals"]
    base, current = totals["baseline"], totals["current"]
    delta = totals["delta_nano_usd"]
    endpoints = rankings["endpoint_tag"]
    evidence: list[str] = []
    facts: dict[str, Any] = {}
    fill: dict[str, str] = {}
    driver: tuple[str, str | None, dict[str, Any] | None] | None = None
    kind = "none"
    models = rankings.get("model", [])
    unknown_now, unknown_before = _unknown_models(models, "current"), _unknown_models(models, "baseline")
    share_now = Fraction(sum(unknown_now.values()), current["attempts"] or 1)
    share_before = Fraction(sum(unknown_before.values()), base["attempts"] or 1)
    if unknown_now and share_now >= UNKNOWN_SHARE_MIN and share_now - share_before >= UNKNOWN_RISE_MIN:
        kind = "unknown_model"
        rising = sorted(unknown_now, key=lambda m: (unknown_before.get(m, 0) - unknown_now[m], m))
        top = next(d for d in models if d["value"] == rising[0])
        driver = ("model", rising[0], top)
        fill["models"] = ", ".join(rising)
        facts["unknown_models"] = {m: unknown_now[m] for m in rising}
        evidence.append(
            f"{float(share_now):.1%} of attempts ({sum(unknown_now.values())}) are on models with no price"
            f" (baseline {float(share_before):.1%}): {', '.join(rising)}"
        )
        evidence.append("cost figures below undercount the window until these models are priced")
    elif delta > 0:
        effects = totals["effects_nano_usd"]
        dominant = max(("volume", "retry", "efficiency", "price"), key=lambda name: (effects[name], name))
        facts["dominant_effect"] = dominant
        evidence.append(
            "within-endpoint effects: "
            + ", ".join(f"{name} {usd(value)} USD" for name, value in effects.items())
            + f" (dominant: {dominant})"
        )
        top = _top(endpoints, dominant) or endpoints[0]
        endpoint = top["value"] or ""
        fill["endpoint"] = endpoint or "(untagged)"
        driver = ("endpoint_tag", top["value"], top)
        b, c = top["baseline"], top["current"]
        if dominant == "retry":
            kind = "retries"
            evidence.append(
                f"attempts per logical request on {fill['endpoint']}: "
                f"{per(b['attempts'], b['logical_requests'], 3)} -> {per(c['attempts'], c['logical_requests'], 3)};"
                f" errors {b['errors']} -> {c['errors']}"
            )
        elif dominant == "price":
            kind = "routing"
            piece_before, before = recent_mix(store, "model", top["value"], baseline_window, scope)
            piece_now, now = recent_mix(store, "model", top["value"], window, scope)
            answered = sorted(k[0] or "" for k in now if k not in before)
            fill["answered"] = ", ".join(answered) or ", ".join(sorted(k[0] or "" for k in now))
            differing_before, calls_before = fallback_share(store, top["value"], piece_before, scope)
            differing, calls = fallback_share(store, top["value"], piece_now, scope)
            facts["fallback"] = {"baseline": [differing_before, calls_before], "current": [differing, calls]}
            facts["slices"] = {"baseline": _span(piece_before), "current": _span(piece_now)}
            evidence.append(
                f"cost per 1k tokens on {fill['endpoint']}: {_per_k(b)} -> {_per_k(c)} USD;"
                f" models {', '.join(sorted(k[0] or '' for k in before))} -> {', '.join(sorted(k[0] or '' for k in now))}"
                f" ({_slice_label(piece_now, window)} of each window)"
            )
            evidence.append(
                f"calls answered by another model than requested: {differing_before}/{calls_before}"
                f" -> {differing}/{calls} ({_slice_label(piece_now, window)} of each window)"
            )
        elif dominant == "efficiency":
            kind = "token"
            evidence.append(
                f"tokens per call on {fill['endpoint']}: {per(b['input_tokens'], b['attempts'], 1)} in /"
                f" {per(b['output_tokens'], b['attempts'], 1)} out -> {per(c['input_tokens'], c['attempts'], 1)}"
                f" / {per(c['output_tokens'], c['attempts'], 1)}"
            )
            versions = rankings.get("prompt_version", [])
            found = new_versions_on(store, endpoint, versions, window, scope) if top["value"] else []
            if found:
                kind = "deploy"
                version, hour = found[0]
                _, before = recent_mix(store, "prompt_version", endpoint, baseline_window, scope)
                previous = max(
                    (k for k in before if k[0]),
                    key=lambda k: (before[k].logical_requests, k[0] or ""),
                    default=(None,),
                )[0]
                fill["version"], fill["previous"] = version, previous or "the previous version"
                first = first_seen(store, {"endpoint_tag": endpoint, "prompt_version": version}, hour, scope)
                seen = TimeWindow(first, first + 1).iso()[0] if first else None
                facts["deploy"] = {"version": version, "previous": previous, "first_seen": seen}
                by_value = {d["value"]: d for d in versions}
                new_figures = by_value[version]["current"]
                old_figures = by_value[previous]["baseline"] if previous in by_value else None
                evidence.append(
                    f"prompt version {version} first seen {seen} on {fill['endpoint']} (baseline: {previous});"
                    f" tokens per call {_tokens(old_figures)} -> {_tokens(new_figures)}"
                )
        else:
            kind = "volume"
            evidence.append(
                f"logical requests per hour: {base['requests_per_hour']} -> {current['requests_per_hour']};"
                f" on {fill['endpoint']}: {b['logical_requests']} -> {c['logical_requests']}"
            )
            for dimension in ("tenant_id", "user_id"):
                ranked = rankings.get(dimension)
                if not ranked:
                    continue
                lead = ranked[0]
                if Fraction(lead["delta_nano_usd"], delta) >= CONCENTRATION_SHARE:
                    kind = "abuse"
                    driver = (dimension, lead["value"], lead)
                    fill["dimension"] = dimension.removesuffix("_id")
                    fill["value"] = lead["value"] or "(none)"
                    evidence.append(
                        f"{dimension} {lead['value']} holds {lead['share']:.0%} of the delta: logical requests "
                        f"{lead['baseline']['logical_requests']} -> {lead['current']['logical_requests']}"
                    )
                    break
    return _result(kind, driver, evidence, facts, fill, window, scope, report)


def _tokens(figures: Mapping[str, int] | None) -> float | None:
    if not figures:
        return None
    return per(figures["input_tokens"] + figures["output_tokens"], figures["attempts"], 1)


def _span(piece: TimeWindow) -> dict[str, str]:
    start, end = piece.iso()
    return {"from": start, "to": end}


def _slice_label(piece: TimeWindow, window: TimeWindow) -> str:
    length = piece.end_ns - piece.start_ns
    if length >= window.end_ns - window.start_ns:
        return "all"
    return "last hour" if length <= HOUR_NS else "last day"


def _per_k(figures: Mapping[str, int]) -> str | None:
    tokens = figures["input_tokens"] + figures["output_tokens"]
    return usd(figures["cost_nano_usd"] * 1000 // tokens) if tokens else None


def _result(
    kind: str,
    driver: tuple[str, str | None, dict[str, Any] | None] | None,
    evidence: list[str],
    facts: dict[str, Any],
    fill: dict[str, str],
    window: TimeWindow,
    scope: Mapping[str, Any],
    report: dict[str, Any],
) -> dict[str, Any]:
    defaults = {"endpoint": "the top endpoint", "previous": "", "version": "", "answered": "", "models": ""}
    values = {**defaults, "dimension": "tenant", "value": "", **fill}
    next_step = _next_step(kind, driver, window, scope, report)
    return {
        "type": kind,
        "label": _LABELS[kind],
        "hypothesis": _HYPOTHESIS[kind],
        "driver": None
        if driver is None
        else {
            "dimension": driver[0],
            "value": driver[1],
            "delta_usd": driver[2]["delta_usd"] if driver[2] else None,
            "share": driver[2]["share"] if driver[2] else None,
        },
        "evidence": evidence,
        "facts": facts,
        "containment": CONTAINMENT[kind].format(**values),
        "durable_control": _CONTROLS[kind].format(**values),
        "next_step": next_step,
    }


def _next_step(
    kind: str,
    driver: tuple[str, str | None, dict[str, Any] | None] | None,
    window: TimeWindow,
    scope: Mapping[str, Any],
    report: dict[str, Any],
) -> dict[str, str]:
    common = {"environment": scope["environment"], "data_mode": scope["data_mode"]}
    where = dict(scope["where"])
    value = driver[1] or "" if driver else ""
    if kind == "deploy":
        view = drilldown(
            ["spanmeter", "compare", "prompt-versions"],
            "/api/v1/compare/prompt-versions",
            window,
            where={},
            extra={"endpoint": value},
            **common,
        )
        text = "Compare cost per request by prompt version on the endpoint, same window."
    elif kind == "abuse" and driver:
        inner = "user_id" if driver[0] == "tenant_id" else "endpoint_tag"
        view = drilldown(
            ["spanmeter", "top"],
            "/api/v1/top",
            window,
            where={**where, driver[0]: value},
            extra={"by": inner},
            **common,
        )
        text = f"Rank {inner} within {driver[0]} {value} to find who sends the traffic."
    elif kind == "unknown_model":
        start, end = window.iso()
        view = {  # re-pricing covers every data mode and environment: no scope to keep
            "cli": f"spanmeter reprice --from {start} --to {end} --dry-run",
            "api": drilldown(
                [], "/api/v1/reprice/preview", window, where={}, environment=None, data_mode=None
            )["api"],
        }
        text = "Add the prices, then preview the re-pricing of the window (--dry-run) and apply it."
    elif driver:
        by = "model" if kind == "routing" else "tenant_id"
        view = drilldown(
            ["spanmeter", "top"],
            "/api/v1/top",
            window,
            where={**where, driver[0]: value},
            extra={"by": by},
            **common,
        )
        text = (
            f"Rank {by} on {driver[0]} {value} in the same window, then re-run investigate after containment."
        )
    else:
        view = {"cli": "", "api": ""}
        text = "Nothing to verify."
    return {"text": text, **view}
