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
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final, NamedTuple

from ..money import money_text, usd
from ..store import SpanStore
from ..timeunits import NS_PER_HOUR
from .common import per
from .decompose import EFFECTS, EffectName
from .documents import Scope, Span, Summary, span
from .evidence import fallback_share, new_versions_on, recent_mix
from .investigate_documents import (
    Classification,
    EndpointFigures,
    Facts,
    Lead,
    SideFigures,
    TokenChange,
    Totals,
)
from .next_step import next_step
from .ranked import DriverRef, Ranked
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


def _top(drivers: list[Ranked], effect: EffectName) -> Ranked | None:
    candidates = [d for d in drivers if d.effect(effect) > 0]
    return max(candidates, key=lambda d: (d.effect(effect), d.value or ""), default=None)


def _unknown_models(drivers: list[Ranked], current: bool) -> dict[str, int]:
    """Models (by attempts) whose traffic has tokens but no cost at all, in the window
    (``current``) or in the baseline."""
    found: dict[str, int] = {}
    for driver in drivers:
        figures = driver.current if current else driver.baseline
        tokens = figures["input_tokens"] + figures["output_tokens"]
        if (
            driver.value
            and tokens > 0
            and figures["cost_nano_usd"] == 0
            and figures["unpriced_attempts"] == figures["attempts"]
        ):
            found[driver.value] = figures["attempts"]
    return found


@dataclass(slots=True)
class _Finding:
    """What the rules have established so far. Each step appends its evidence after the
    previous step's, so the sentences read in the order the rules were applied."""

    kind: str = "none"
    """The spike's type (a key of :data:`CONTAINMENT`)."""
    driver: DriverRef | None = None
    """Who drives it (None: nobody, e.g. when spend did not rise)."""
    evidence: list[str] = field(default_factory=list[str])
    """Sentences for the reader, in order."""
    facts: Facts = field(default_factory=lambda: Facts())
    """The figures behind the sentences, for machines."""
    fill: dict[str, str] = field(default_factory=dict[str, str])
    """Values for the containment and durable-control templates."""


class _Spike(NamedTuple):
    """What every rule reads: the store (some evidence reads raw rows), the rankings, both
    windows, the filters and the (per-hour normalised) delta of spend."""

    store: SpanStore
    rankings: Mapping[str, list[Ranked]]
    window: TimeWindow
    baseline_window: TimeWindow
    scope: Scope
    delta: int


def classify(
    store: SpanStore,
    totals: Totals,
    rankings: Mapping[str, list[Ranked]],
    *,
    window: TimeWindow,
    baseline_window: TimeWindow,
    scope: Scope,
) -> Classification:
    """The spike's type, driver, evidence, containment and next verification step, from the
    report's ``totals`` and every dimension's ranked values."""
    models = rankings.get("model", [])
    found = _unknown_model(models, totals["baseline"], totals["current"])
    if found is None:
        found = _Finding()
        if totals["delta_nano_usd"] > 0:
            spike = _Spike(store, rankings, window, baseline_window, scope, totals["delta_nano_usd"])
            _rise(spike, totals, found)
    return _result(found.kind, found.driver, found.evidence, found.facts, found.fill, window, scope)


def _unknown_model(models: list[Ranked], base: Summary, current: Summary) -> _Finding | None:
    """The **unknown_model** finding, or None when unpriced traffic is too small or did not
    rise enough. Checked before anything else: no cost attribution can be trusted while
    part of the traffic has no price."""
    unknown_now, unknown_before = _unknown_models(models, True), _unknown_models(models, False)
    share_now = Fraction(sum(unknown_now.values()), current["attempts"] or 1)
    share_before = Fraction(sum(unknown_before.values()), base["attempts"] or 1)
    if not (unknown_now and share_now >= UNKNOWN_SHARE_MIN and share_now - share_before >= UNKNOWN_RISE_MIN):
        return None
    found = _Finding(kind="unknown_model")
    rising = sorted(unknown_now, key=lambda m: (unknown_before.get(m, 0) - unknown_now[m], m))
    top = next(d for d in models if d.value == rising[0])
    found.driver = ("model", rising[0], top)
    found.fill["models"] = ", ".join(rising)
    found.facts["unknown_models"] = {m: unknown_now[m] for m in rising}
    found.evidence.append(
        f"{float(share_now):.1%} of attempts ({sum(unknown_now.values())}) are on models with no price"
        f" (baseline {float(share_before):.1%}): {', '.join(rising)}"
    )
    found.evidence.append("cost figures below undercount the window until these models are priced")
    return found


def _rise(spike: _Spike, totals: Totals, found: _Finding) -> None:
    """Spend rose: the largest within-endpoint effect names the mechanism, and the endpoint
    with the largest such effect drives it; each mechanism's step adds its evidence."""
    effects = totals["effects_nano_usd"]
    dominant = max(EFFECTS, key=lambda name: (effects[name], name))
    found.facts["dominant_effect"] = dominant
    found.evidence.append(
        "within-endpoint effects: "
        + ", ".join(
            f"{name} {money_text(value, signed=True)} USD"
            for name, value in ((n, effects[n]) for n in EFFECTS)
        )
        + f" (dominant: {dominant})"
    )
    endpoints = spike.rankings["endpoint_tag"]
    top = _top(endpoints, dominant) or endpoints[0]
    found.fill["endpoint"] = top.value or "(untagged)"
    found.driver = ("endpoint_tag", top.value, top)
    figures = found.facts["endpoint"] = endpoint_figures(top, spike.window, spike.baseline_window)
    found.evidence.append(endpoint_line(figures))
    mechanism = _price_mechanism(spike, top, figures, found) if dominant == "price" else dominant
    if mechanism == "retry":
        _retries(spike, top, found)
    elif mechanism == "price":
        found.kind = "routing"
    elif mechanism == "efficiency":
        _efficiency(spike, top, figures, found)
    else:
        _volume(spike, totals, top, figures, found)


class _Routing(NamedTuple):
    """The driving endpoint's models and fallbacks in a recent slice of each window (the
    slices :func:`~.evidence.recent_mix` picks, so the comparison stays cheap)."""

    piece_before: TimeWindow
    piece_now: TimeWindow
    models_before: list[str]
    models_now: list[str]
    answered: list[str]
    """Models answering now that did not in the baseline."""
    fallback_before: tuple[int, int]
    """(calls answered by another model than requested, calls) in the baseline's slice."""
    fallback_now: tuple[int, int]


def _routing(spike: _Spike, endpoint: str | None) -> _Routing:
    """Read the endpoint's model mix and fallbacks in both windows."""
    piece_before, before = recent_mix(spike.store, "model", endpoint, spike.baseline_window, spike.scope)
    piece_now, now = recent_mix(spike.store, "model", endpoint, spike.window, spike.scope)
    return _Routing(
        piece_before,
        piece_now,
        models_before=sorted(k[0] or "" for k in before),
        models_now=sorted(k[0] or "" for k in now),
        answered=sorted(k[0] or "" for k in now if k not in before),
        fallback_before=fallback_share(spike.store, endpoint, piece_before, spike.scope),
        fallback_now=fallback_share(spike.store, endpoint, piece_now, spike.scope),
    )


def _price_mechanism(spike: _Spike, top: Ranked, figures: EndpointFigures, found: _Finding) -> str:
    """``price`` (routing) or ``efficiency``: when the endpoint kept its models, no call fell
    back and its tokens per call rose, cost per token moved only with the token mix
    (output tokens cost several times input ones), so the price effect is the token
    change's, not a routing one."""
    routing = _routing(spike, top.value)
    b, c = top.baseline, top.current
    label = _slice_label(routing.piece_now, spike.window)
    models = f"{', '.join(routing.models_before)} -> {', '.join(routing.models_now)}"
    change = figures["tokens_per_call_change_pct"]
    (differing_before, calls_before), (differing, calls) = routing.fallback_before, routing.fallback_now
    if not routing.answered and not differing and max(change["input"] or 0, change["output"] or 0) > 0:
        found.facts["token_mix"] = {"models": routing.models_now, "calls_falling_back": differing}
        found.evidence.append(
            f"cost per 1k tokens on {found.fill['endpoint']}: {_per_k(b)} -> {_per_k(c)} USD with the same"
            f" models ({models}, {label} of each window) and no fallback: the token mix moved"
            f" (per call {_signed(change['input'])} in, {_signed(change['output'])} out)"
        )
        return "efficiency"
    found.fill["answered"] = ", ".join(routing.answered) or ", ".join(routing.models_now)
    found.facts["fallback"] = {"baseline": [differing_before, calls_before], "current": [differing, calls]}
    found.facts["slices"] = {"baseline": _span(routing.piece_before), "current": _span(routing.piece_now)}
    found.evidence.append(
        f"cost per 1k tokens on {found.fill['endpoint']}: {_per_k(b)} -> {_per_k(c)} USD;"
        f" models {models} ({label} of each window)"
    )
    found.evidence.append(
        f"calls answered by another model than requested: {differing_before}/{calls_before}"
        f" -> {differing}/{calls} ({label} of each window)"
    )
    return "price"


def _retries(spike: _Spike, top: Ranked, found: _Finding) -> None:
    """**retries**: attempts per logical request and errors on the driving endpoint."""
    b, c = top.baseline, top.current
    found.kind = "retries"
    found.evidence.append(
        f"attempts per logical request on {found.fill['endpoint']}: "
        f"{per(b['attempts'], b['logical_requests'], 3)} -> {per(c['attempts'], c['logical_requests'], 3)};"
        f" {_moved('errors', b['errors'], c['errors'], spike.baseline_window, spike.window)}"
    )


def _efficiency(spike: _Spike, top: Ranked, figures: EndpointFigures, found: _Finding) -> None:
    """**deploy** when the driving endpoint runs a prompt version not seen in the baseline,
    else **token**."""
    endpoint = top.value or ""
    versions = spike.rankings.get("prompt_version", [])
    new = new_versions_on(spike.store, endpoint, versions, spike.window, spike.scope) if top.value else []
    if new:
        _deploy(spike, new[0], endpoint, versions, figures, found)
    else:
        _token(spike, top, figures, found)


def _deploy(
    spike: _Spike,
    new_version: tuple[str, int],
    endpoint: str,
    versions: list[Ranked],
    figures: EndpointFigures,
    found: _Finding,
) -> None:
    """**deploy**: the new version, the one it replaced and how its tokens per call moved
    (what the rollback names and what the mitigation acts on)."""
    found.kind = "deploy"
    deploy = found.facts["deploy"] = deploy_facts(
        spike.store, new_version, endpoint, versions, spike.baseline_window, spike.scope
    )
    found.fill["version"], found.fill["previous"] = (
        deploy["version"],
        deploy["previous"] or "the previous version",
    )
    found.fill["mitigation"] = _deploy_mitigation(
        deploy["tokens_per_call_change_pct"],
        figures["tokens_per_call_change_pct"],
        deploy["version"],
    )
    tokens = deploy["tokens_per_call"]
    found.evidence.append(
        f"prompt version {deploy['version']} first seen {deploy['first_seen']} on {found.fill['endpoint']}"
        f" (baseline: {deploy['previous']}); tokens per call {tokens['previous']} -> {tokens['new']}"
    )


def _token(spike: _Spike, top: Ranked, figures: EndpointFigures, found: _Finding) -> None:
    """**token**: the prompt versions that ran (so the reader sees why it is not a deploy),
    how spread the delta is, and which side's growth the containment caps."""
    found.kind = "token"
    change = figures["tokens_per_call_change_pct"]
    versions = found.facts["prompt_versions"] = version_facts(
        spike.store, top.value, [], spike.window, spike.baseline_window, spike.scope
    )
    found.evidence.append(
        version_line(
            versions,
            f"tokens per call {_signed(change['total'])} with no new prompt version"
            " (input or context growth, not a deploy)",
        )
    )
    leads = found.facts["spread"] = spread(spike.rankings, spike.delta)
    found.evidence.append(spread_line(leads, CONCENTRATION_SHARE))
    if (change["output"] or 0) > (change["input"] or 0):
        found.fill["grown"], found.fill["how"] = "output tokens", "max_tokens"


def _volume(spike: _Spike, totals: Totals, top: Ranked, figures: EndpointFigures, found: _Finding) -> None:
    """**volume**, or **abuse** when one tenant or user holds at least
    :data:`CONCENTRATION_SHARE` of the delta."""
    b, c = top.baseline, top.current
    base, current = totals["baseline"], totals["current"]
    found.kind = "volume"
    found.evidence.append(
        f"logical requests per hour in total: {base['requests_per_hour']} -> {current['requests_per_hour']};"
        " "
        + _moved(
            "logical requests",
            b["logical_requests"],
            c["logical_requests"],
            spike.baseline_window,
            spike.window,
            on=found.fill["endpoint"],
        )
    )
    leads = found.facts["spread"] = spread(spike.rankings, spike.delta)
    for dimension, lead in leads.items():
        if Fraction(lead["delta_nano_usd"], spike.delta) >= CONCENTRATION_SHARE:
            _abuse(spike, dimension, lead, found)
            return
    _spread_out(spike, top, figures, leads, found)


def _abuse(spike: _Spike, dimension: str, lead: Lead, found: _Finding) -> None:
    """**abuse**: the tenant or user holding the delta drives it (the limit goes on them)."""
    found.kind = "abuse"
    ranked = spike.rankings[dimension][0]
    found.driver = (dimension, lead["value"], ranked)
    found.fill["dimension"] = dimension.removesuffix("_id")
    found.fill["value"] = lead["value"] or "(none)"
    found.evidence.append(
        f"{dimension} {lead['value']} holds {lead['share']:.0%} of the delta: "
        + _moved(
            "logical requests",
            ranked.baseline["logical_requests"],
            ranked.current["logical_requests"],
            spike.baseline_window,
            spike.window,
        )
    )


def _spread_out(
    spike: _Spike,
    top: Ranked,
    figures: EndpointFigures,
    leads: Mapping[str, Lead],
    found: _Finding,
) -> None:
    """A volume spike nobody holds: say per-tenant caps would not hold it, and show the
    prompt versions (tokens per call barely moved, so the prompt did not drive it)."""
    found.evidence.append(spread_line(leads, CONCENTRATION_SHARE))
    largest = max((lead["share"] for lead in leads.values()), default=0.0)
    found.fill["spread"] = (
        f" (no tenant or user holds more than {largest:.0%} of the delta,"
        " so per-tenant caps would not hold it)"
    )
    endpoint = top.value or ""
    versions = spike.rankings.get("prompt_version", [])
    new = new_versions_on(spike.store, endpoint, versions, spike.window, spike.scope) if top.value else []
    facts = found.facts["prompt_versions"] = version_facts(
        spike.store, top.value, new, spike.window, spike.baseline_window, spike.scope
    )
    change = figures["tokens_per_call_change_pct"]["total"]
    found.evidence.append(
        version_line(
            facts,
            f"tokens per call {_signed(change)}, so the prompt is not what drove the spike",
        )
    )


def _deploy_mitigation(versions: Mapping[str, float | None], endpoint: TokenChange, version: str) -> str:
    """What to do short of a rollback, from which tokens grew: a longer prompt or context
    is trimmed, longer answers are capped (max_tokens caps output only, so suggesting it
    for input growth would contain nothing).

    ``versions`` compares the new version with the one it replaced; without a previous
    version, ``endpoint`` (the endpoint's change between the windows) stands in.
    """
    sides: dict[str, float | None] = {"input": endpoint["input"], "output": endpoint["output"]}
    change = versions if any(v is not None for v in versions.values()) else sides
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
        before_text, now_text = (
            str(per(before * NS_PER_HOUR, lengths[0])),
            str(per(now * NS_PER_HOUR, lengths[1])),
        )
    else:
        before_text, now_text = str(before), str(now)
    return f"{label} on {on}: {before_text} -> {now_text}" if on else f"{label} {before_text} -> {now_text}"


def _signed(pct: float | None) -> str:
    return "n/a" if pct is None else f"{pct:+.1f}%"


def _span(piece: TimeWindow) -> Span:
    return span(*piece.iso())


def _slice_label(piece: TimeWindow, window: TimeWindow) -> str:
    length = piece.end_ns - piece.start_ns
    if length >= window.end_ns - window.start_ns:
        return "all"
    return "last hour" if length <= NS_PER_HOUR else "last day"


def _per_k(figures: SideFigures) -> str | None:
    tokens = figures["input_tokens"] + figures["output_tokens"]
    return money_text(figures["cost_nano_usd"] * 1000 // tokens) if tokens else None


def _result(
    kind: str,
    driver: DriverRef | None,
    evidence: list[str],
    facts: Facts,
    fill: dict[str, str],
    window: TimeWindow,
    scope: Scope,
) -> Classification:
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
            "delta_usd": usd(driver[2].delta_nano_usd) if driver[2] else None,
            "share": driver[2].share if driver[2] else None,
        },
        "evidence": evidence,
        "facts": facts,
        "containment": CONTAINMENT[kind].format(**values),
        "durable_control": _CONTROLS[kind].format(**values),
        "next_step": step,
    }
