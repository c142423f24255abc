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
     its models and how many calls were answered by another model than requested),
     unless that endpoint kept its models, no call fell back and its tokens per call
     rose: then cost per token moved only with the token mix (output tokens cost several
     times input ones, so longer answers raise it) and the efficiency rule below applies;
   * efficiency -> **deploy** when the driving endpoint has a prompt version not seen in
     the baseline, else **token**;
   * volume -> **abuse** when one tenant (or user) holds at least
     :data:`CONCENTRATION_SHARE` of the delta, else **volume**.

Every endpoint-driven type also reports the driving endpoint's requests/hour, tokens per
call in and out and cost per request in both windows (:mod:`.spike_figures`, as
``facts["endpoint"]``). **volume** and **token** add the prompt versions that ran on that
endpoint (``facts["prompt_versions"]``), so the reader sees why it is not a deploy, and
**volume** adds how spread the delta is over tenants and users (``facts["spread"]``).

Every threshold reads the report's normalised figures: with a baseline of another length
than the window, the delta, the effects and each driver's share compare per-hour rates
(see :mod:`.investigate`), the unknown-model shares are ratios of attempts (the same per
hour as in total), and the counts the evidence quotes (logical requests, errors) are per
hour, so no sentence sets a 2-hour count against a 24-hour one.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Final

from ..store import SpanStore
from .common import money_text, per
from .evidence import HOUR_NS, fallback_share, new_versions_on, recent_mix
from .next_step import next_step
from .spike_figures import (
    deploy_facts,
    endpoint_figures,
    endpoint_line,
    spread,
    spread_line,
    version_facts,
    version_line,
)
from .window import TimeWindow

__all__ = [
    "CONCENTRATION_SHARE",
    "CONTAINMENT",
    "TOKEN_GROWTH_MIN_PCT",
    "UNKNOWN_RISE_MIN",
    "UNKNOWN_SHARE_MIN",
    "classify",
]

CONCENTRATION_SHARE: Final = Fraction(1, 2)
"""Share of the delta one tenant or user must hold for a volume spike to count as abuse."""
UNKNOWN_SHARE_MIN: Final = Fraction(1, 100)
"""Share of attempts on unpriced models that makes the cost numbers untrustworthy."""
UNKNOWN_RISE_MIN: Final = Fraction(1, 200)
"""Rise of that share against the baseline that makes it this spike's story."""
TOKEN_GROWTH_MIN_PCT: Final = 10.0
"""Rise of input or output tokens per call (percent) that a deploy's containment treats as
growth to act on; when neither side reaches it, the side that rose more is acted on."""

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
    "volume": "Rate-limit or queue non-critical traffic on {endpoint}{spread}; confirm whether the growth"
    " is expected (a launch, a campaign, a new client) before raising its budget.",
    "abuse": "Enforce a per-{dimension} limit on {value} and check its traffic for abuse.",
    "token": "Cap {grown} on {endpoint} ({how}) and find what made its calls longer without a prompt"
    " change (history, retrieved documents, tool output).",
    "deploy": "Roll {endpoint} back to prompt version {previous}, or {mitigation}, until {version}'s"
    " cost per request is accepted.",
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
            + ", ".join(f"{name} {money_text(value, signed=True)} USD" for name, value in effects.items())
            + f" (dominant: {dominant})"
        )
        top = _top(endpoints, dominant) or endpoints[0]
        endpoint = top["value"] or ""
        fill["endpoint"] = endpoint or "(untagged)"
        driver = ("endpoint_tag", top["value"], top)
        b, c = top["baseline"], top["current"]
        figures = facts["endpoint"] = endpoint_figures(top, window, baseline_window)
        evidence.append(endpoint_line(figures))
        mechanism = dominant
        if dominant == "price":
            piece_before, before = recent_mix(store, "model", top["value"], baseline_window, scope)
            piece_now, now = recent_mix(store, "model", top["value"], window, scope)
            answered = sorted(k[0] or "" for k in now if k not in before)
            differing_before, calls_before = fallback_share(store, top["value"], piece_before, scope)
            differing, calls = fallback_share(store, top["value"], piece_now, scope)
            label = _slice_label(piece_now, window)
            models = f"{', '.join(sorted(k[0] or '' for k in before))} -> {', '.join(sorted(k[0] or '' for k in now))}"
            change = figures["tokens_per_call_change_pct"]
            if not answered and not differing and max(change["input"] or 0, change["output"] or 0) > 0:
                # Same models, no fallback, more tokens per call: cost per token rose only
                # because the mix moved (output tokens cost several times input ones), so
                # the price effect is the token change's, not a routing one.
                mechanism = "efficiency"
                facts["token_mix"] = {
                    "models": sorted(k[0] or "" for k in now),
                    "calls_falling_back": differing,
                }
                evidence.append(
                    f"cost per 1k tokens on {fill['endpoint']}: {_per_k(b)} -> {_per_k(c)} USD with the same"
                    f" models ({models}, {label} of each window) and no fallback: the token mix moved"
                    f" (per call {_signed(change['input'])} in, {_signed(change['output'])} out)"
                )
            else:
                fill["answered"] = ", ".join(answered) or ", ".join(sorted(k[0] or "" for k in now))
                facts["fallback"] = {
                    "baseline": [differing_before, calls_before],
                    "current": [differing, calls],
                }
                facts["slices"] = {"baseline": _span(piece_before), "current": _span(piece_now)}
                evidence.append(
                    f"cost per 1k tokens on {fill['endpoint']}: {_per_k(b)} -> {_per_k(c)} USD;"
                    f" models {models} ({label} of each window)"
                )
                evidence.append(
                    f"calls answered by another model than requested: {differing_before}/{calls_before}"
                    f" -> {differing}/{calls} ({label} of each window)"
                )
        if mechanism == "retry":
            kind = "retries"
            evidence.append(
                f"attempts per logical request on {fill['endpoint']}: "
                f"{per(b['attempts'], b['logical_requests'], 3)} -> {per(c['attempts'], c['logical_requests'], 3)};"
                f" {_moved('errors', b['errors'], c['errors'], baseline_window, window)}"
            )
        elif mechanism == "price":
            kind = "routing"
        elif mechanism == "efficiency":
            kind = "token"
            versions = rankings.get("prompt_version", [])
            found = new_versions_on(store, endpoint, versions, window, scope) if top["value"] else []
            if found:
                kind = "deploy"
                facts["deploy"] = deploy_facts(store, found[0], endpoint, versions, baseline_window, scope)
                deploy = facts["deploy"]
                fill["version"], fill["previous"] = (
                    deploy["version"],
                    deploy["previous"] or "the previous version",
                )
                fill["mitigation"] = _deploy_mitigation(
                    deploy["tokens_per_call_change_pct"],
                    figures["tokens_per_call_change_pct"],
                    deploy["version"],
                )
                tokens = deploy["tokens_per_call"]
                evidence.append(
                    f"prompt version {deploy['version']} first seen {deploy['first_seen']} on {fill['endpoint']}"
                    f" (baseline: {deploy['previous']}); tokens per call {tokens['previous']} -> {tokens['new']}"
                )
            else:
                change = figures["tokens_per_call_change_pct"]
                facts["prompt_versions"] = version_facts(
                    store, top["value"], [], window, baseline_window, scope
                )
                evidence.append(
                    version_line(
                        facts["prompt_versions"],
                        f"tokens per call {_signed(change['total'])} with no new prompt version"
                        " (input or context growth, not a deploy)",
                    )
                )
                facts["spread"] = spread(rankings, delta)
                evidence.append(spread_line(facts["spread"], CONCENTRATION_SHARE))
                if (change["output"] or 0) > (change["input"] or 0):
                    fill["grown"], fill["how"] = "output tokens", "max_tokens"
        else:
            kind = "volume"
            evidence.append(
                f"logical requests per hour in total: {base['requests_per_hour']} -> {current['requests_per_hour']};"
                " "
                + _moved(
                    "logical requests",
                    b["logical_requests"],
                    c["logical_requests"],
                    baseline_window,
                    window,
                    on=fill["endpoint"],
                )
            )
            leads = facts["spread"] = spread(rankings, delta)
            for dimension, lead in leads.items():
                if Fraction(lead["delta_nano_usd"], delta) >= CONCENTRATION_SHARE:
                    kind = "abuse"
                    ranked = rankings[dimension][0]
                    driver = (dimension, lead["value"], ranked)
                    fill["dimension"] = dimension.removesuffix("_id")
                    fill["value"] = lead["value"] or "(none)"
                    evidence.append(
                        f"{dimension} {lead['value']} holds {lead['share']:.0%} of the delta: "
                        + _moved(
                            "logical requests",
                            ranked["baseline"]["logical_requests"],
                            ranked["current"]["logical_requests"],
                            baseline_window,
                            window,
                        )
                    )
                    break
            else:
                evidence.append(spread_line(leads, CONCENTRATION_SHARE))
                largest = max((lead["share"] for lead in leads.values()), default=0.0)
                fill["spread"] = (
                    f" (no tenant or user holds more than {largest:.0%} of the delta,"
                    " so per-tenant caps would not hold it)"
                )
                versions = rankings.get("prompt_version", [])
                found = new_versions_on(store, endpoint, versions, window, scope) if top["value"] else []
                facts["prompt_versions"] = version_facts(
                    store, top["value"], found, window, baseline_window, scope
                )
                change = figures["tokens_per_call_change_pct"]["total"]
                evidence.append(
                    version_line(
                        facts["prompt_versions"],
                        f"tokens per call {_signed(change)}, so the prompt is not what drove the spike",
                    )
                )
    return _result(kind, driver, evidence, facts, fill, window, scope)


def _deploy_mitigation(
    versions: Mapping[str, float | None], endpoint: Mapping[str, float | None], version: str
) -> str:
    """What to do short of a rollback, from which tokens grew: a longer prompt or context
    is trimmed, longer answers are capped (max_tokens caps output only, so suggesting it
    for input growth would contain nothing).

    ``versions`` compares the new version with the one it replaced; without a previous
    version, ``endpoint`` (the endpoint's change between the windows) stands in.
    """
    change = versions if any(v is not None for v in versions.values()) else endpoint
    rise = {side: change.get(side) or 0.0 for side in ("input", "output")}
    grown = [side for side, pct in rise.items() if pct >= TOKEN_GROWTH_MIN_PCT]
    if not grown:
        grown = [max(rise, key=lambda side: (rise[side], side == "output"))]
    actions = {
        "input": f"trim the prompt or context {version} sends",
        "output": "cap output tokens with max_tokens",
    }
    figures = ", ".join(f"{side} tokens per call {_signed(change.get(side))}" for side in grown)
    return f"{' and '.join(actions[side] for side in grown)} ({figures})"


def _moved(
    name: str, before: int, now: int, baseline_window: TimeWindow, window: TimeWindow, *, on: str = ""
) -> str:
    """``name [on X:] before -> now``, per hour when the windows' lengths differ (the report
    then compares per hour, and a 24-hour count next to a 2-hour one would mislead)."""
    lengths = (baseline_window.end_ns - baseline_window.start_ns, window.end_ns - window.start_ns)
    label = name if lengths[0] == lengths[1] else f"{name} per hour"
    if lengths[0] != lengths[1]:
        before_text, now_text = str(per(before * HOUR_NS, lengths[0])), str(per(now * HOUR_NS, lengths[1]))
    else:
        before_text, now_text = str(before), str(now)
    return f"{label} on {on}: {before_text} -> {now_text}" if on else f"{label} {before_text} -> {now_text}"


def _signed(pct: float | None) -> str:
    return "n/a" if pct is None else f"{pct:+.1f}%"


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
    return money_text(figures["cost_nano_usd"] * 1000 // tokens) if tokens else None


def _result(
    kind: str,
    driver: tuple[str, str | None, dict[str, Any] | None] | None,
    evidence: list[str],
    facts: dict[str, Any],
    fill: dict[str, str],
    window: TimeWindow,
    scope: Mapping[str, Any],
) -> dict[str, Any]:
    defaults = {
        "endpoint": "the top endpoint",
        "previous": "",
        "version": "",
        "answered": "",
        "models": "",
        "spread": "",
        "mitigation": "trim the prompt or cap output tokens",
        "grown": "the input context",
        "how": "truncate or summarise history and retrieved documents to a token budget",
    }
    values = {**defaults, "dimension": "tenant", "value": "", **fill}
    step = next_step(kind, driver, window, scope)
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
        "next_step": step,
    }
