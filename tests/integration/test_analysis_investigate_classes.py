"""investigate on a volume surge and on token drift without a deploy: each is classified
right (and never as a deploy or as abuse), its evidence and the triage note carry the
numbers of the triage workflow, each equal to an independent recomputation from the raw
rows, and the containment fits the driver."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from spanmeter.analysis.common import parse_range
from spanmeter.analysis.investigate import investigate, resolve_baseline
from spanmeter.analysis.investigate_render import render_investigate
from spanmeter.analysis.window import TimeWindow
from spanmeter.store import SpanRow, SQLiteStore
from spanmeter.synthetic import (
    ContextGrowth,
    Incident,
    PromptDeploy,
    SyntheticConfig,
    VolumeSurge,
    generate,
    to_ns,
)
from support.analysis_oracle import Acc, billable_real, first_start, group, unit_figures

DAY3 = datetime(2026, 3, 3, tzinfo=timezone.utc)
DAY4 = datetime(2026, 3, 4, tzinfo=timezone.utc)
DAY5 = datetime(2026, 3, 5, tzinfo=timezone.utc)
WINDOW = parse_range("2026-03-04T00:00..2026-03-05T00:00")
BASELINE = resolve_baseline(WINDOW, "previous")
HOUR_NS = 3600 * 10**9

SURGE = VolumeSurge("support.reply", DAY4, DAY5, requests_per_hour=40)
CREEP = ContextGrowth("docs.summarize", DAY4, DAY5, input_factor=2.5)


def _noop_deploy(endpoint: str, version: str) -> PromptDeploy:
    """A new prompt version that leaves tokens per call as they were."""
    return PromptDeploy(endpoint, version, at=DAY4, input_factor=1.0, output_factor=1.0)


# name: incidents, expected type, driving endpoint, versions new on that endpoint
SCENARIOS: dict[str, tuple[tuple[Incident, ...], str, str, list[str]]] = {
    "surge": ((SURGE,), "volume", "support.reply", []),
    # a surge while the same endpoint ships a version that changes nothing: still volume
    "surge_with_noop_deploy": (
        (SURGE, _noop_deploy("support.reply", "support_v6")),
        "volume",
        "support.reply",
        ["support_v6"],
    ),
    "creep": ((CREEP,), "token", "docs.summarize", []),
    # context creep while another endpoint ships a version: token, the deploy is elsewhere
    "creep_with_deploy_elsewhere": (
        (CREEP, _noop_deploy("checkout.ai_summary", "summary_v4")),
        "token",
        "docs.summarize",
        [],
    ),
    # answers get longer (output tokens), same prompt
    "longer_answers": (
        (ContextGrowth("docs.summarize", DAY4, DAY5, input_factor=1.0, output_factor=6.0),),
        "token",
        "docs.summarize",
        [],
    ),
}

Built = tuple[dict[str, Any], list[SpanRow]]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Built]]:
    """The report and raw rows of each scenario, built once per module on first use."""
    built: dict[str, Built] = {}

    def get(name: str) -> Built:
        if name not in built:
            config = SyntheticConfig(start=DAY3, days=2, requests_per_hour=120, incidents=SCENARIOS[name][0])
            dataset = generate(config)
            path: Path = tmp_path_factory.mktemp(name) / "store.db"
            with SQLiteStore(path) as store:
                dataset.write_to(store, batch_size=700)
                report = investigate(store, WINDOW, "previous", limit=10_000)
            built[name] = (report, dataset.rows)
        return built[name]

    yield get


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest, build: Callable[[str], Built]) -> tuple[str, Built]:
    return request.param, build(request.param)


def _close(text: str, exact: Decimal) -> bool:
    """A number printed for people equals ``exact`` to the digits it shows."""
    shown = Decimal(text)
    exponent = shown.as_tuple().exponent
    assert isinstance(exponent, int)
    return abs(shown - exact) <= Decimal(5).scaleb(exponent - 1)


def _usd(nano: int | None) -> Decimal:
    assert nano is not None
    return Decimal(nano) / 10**9


def _figures(rows: list[SpanRow], endpoint: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    where = {"endpoint_tag": endpoint} if endpoint else None
    before = group(rows, BASELINE.start_ns, BASELINE.end_ns, [], where).get((), Acc())
    now = group(rows, WINDOW.start_ns, WINDOW.end_ns, [], where).get((), Acc())
    return unit_figures(before, 24), unit_figures(now, 24)


def test_classified_by_mechanism_never_as_deploy(scenario: tuple[str, Built]) -> None:
    name, (report, _rows) = scenario
    _incidents, kind, endpoint, _new = SCENARIOS[name]
    classification = report["classification"]
    assert classification["type"] == kind, classification["evidence"]
    assert classification["type"] not in ("deploy", "abuse")
    assert "deploy" not in classification["facts"]
    assert classification["driver"]["dimension"] == "endpoint_tag"
    assert classification["driver"]["value"] == endpoint
    dimensions = {d["dimension"]: d for d in report["dimensions"]}
    assert dimensions["endpoint_tag"]["drivers"][0]["value"] == endpoint
    effects = report["totals"]["effects_nano_usd"]
    dominant = max(effects, key=lambda name: effects[name])
    assert classification["facts"]["dominant_effect"] == dominant
    if name == "longer_answers":
        # output tokens cost more than input ones: longer answers raise cost per token too,
        # which the split books as price/mix; same models and no fallback make it a token spike
        assert dominant == "price" and "fallback" not in classification["facts"]
        assert classification["facts"]["token_mix"] == {"models": ["gpt-4o"], "calls_falling_back": 0}
    else:
        assert dominant == ("volume" if kind == "volume" else "efficiency")


def test_endpoint_figures_match_the_raw_rows(scenario: tuple[str, Built]) -> None:
    name, (report, rows) = scenario
    endpoint = SCENARIOS[name][2]
    facts = report["classification"]["facts"]["endpoint"]
    assert facts["value"] == endpoint
    expected = dict(zip(("baseline", "current"), _figures(rows, endpoint), strict=True))
    for side, figures in expected.items():
        for key, value in figures.items():
            assert facts[side][key] == value, (side, key)
        assert Decimal(facts[side]["cost_per_request_usd"]) == _usd(figures["cost_per_request_nano_usd"])
    # the sentence shows the same numbers, rounded for reading
    line = next(e for e in report["classification"]["evidence"] if e.startswith(f"on {endpoint}:"))
    found = re.search(
        r"requests/hour (\S+) -> (\S+); tokens per call in/out (\S+)/(\S+) -> (\S+)/(\S+) .*"
        r"cost per request (\S+) -> (\S+) USD; attempts per request (\S+) -> (\S+)$",
        line,
    )
    assert found is not None, line
    b, c = expected["baseline"], expected["current"]
    assert [float(x) for x in found.group(1, 2, 3, 4, 5, 6, 9, 10)] == [
        b["requests_per_hour"],
        c["requests_per_hour"],
        b["input_tokens_per_call"],
        b["output_tokens_per_call"],
        c["input_tokens_per_call"],
        c["output_tokens_per_call"],
        b["attempts_per_request"],
        c["attempts_per_request"],
    ]
    assert _close(found[7], _usd(b["cost_per_request_nano_usd"]))
    assert _close(found[8], _usd(c["cost_per_request_nano_usd"]))
    change = facts["tokens_per_call_change_pct"]
    bt, ct = b["input_tokens_per_call"], c["input_tokens_per_call"]
    assert bt and ct and change["input"] is not None
    assert abs(change["input"] - 100 * (ct / bt - 1)) < 0.2  # from rounded ratios, so close


def test_spread_over_tenants_and_users_matches_the_raw_rows(scenario: tuple[str, Built]) -> None:
    name, (report, rows) = scenario
    delta = report["totals"]["delta_nano_usd"]
    spread = report["classification"]["facts"]["spread"]
    line = next(e for e in report["classification"]["evidence"] if e.startswith("spread: "))
    for dimension in ("tenant_id", "user_id"):
        before = group(rows, BASELINE.start_ns, BASELINE.end_ns, [dimension])
        now = group(rows, WINDOW.start_ns, WINDOW.end_ns, [dimension])
        deltas = {
            key[0]: now.get(key, Acc()).cost - before.get(key, Acc()).cost for key in set(before) | set(now)
        }
        lead = min(deltas, key=lambda key: (-deltas[key], key is None, key or ""))
        assert spread[dimension]["value"] == lead
        assert spread[dimension]["delta_nano_usd"] == deltas[lead]
        assert spread[dimension]["share"] == round(deltas[lead] / delta, 4) < 0.5
        assert f"{lead} holds {deltas[lead] / delta:.0%} of the delta" in line
    if SCENARIOS[name][1] != "volume":
        return
    # the surge really came from many tenants, and the containment says per-tenant caps won't do
    where = {"endpoint_tag": "support.reply"}
    before = group(rows, BASELINE.start_ns, BASELINE.end_ns, ["tenant_id"], where)
    now = group(rows, WINDOW.start_ns, WINDOW.end_ns, ["tenant_id"], where)
    grew = [key for key in now if now[key].logical > before.get(key, Acc()).logical]
    assert len(grew) >= 20
    containment = report["classification"]["containment"]
    assert "support.reply" in containment and "per-tenant caps would not hold it" in containment
    assert f"{max(s['share'] for s in spread.values()):.0%} of the delta" in containment


def test_prompt_version_correlation_matches_the_raw_rows(scenario: tuple[str, Built]) -> None:
    name, (report, rows) = scenario
    _incidents, _kind, endpoint, new = SCENARIOS[name]
    facts = report["classification"]["facts"]["prompt_versions"]
    assert facts["endpoint"] == endpoint
    for side, window in (("baseline", BASELINE), ("current", WINDOW)):
        start, end = (parse_range("..".join(facts["slices"][side])).start_ns, window.end_ns)
        assert start == window.end_ns - HOUR_NS, "a busy endpoint is read in the last hour"
        seen = {r.prompt_version for r in billable_real(rows, start, end, endpoint_tag=endpoint)}
        assert facts[side] == sorted(seen, key=lambda v: (v is None, v or ""))
    before = {r.prompt_version for r in billable_real(rows, BASELINE.start_ns, BASELINE.end_ns)}
    on_endpoint = {
        r.prompt_version for r in billable_real(rows, WINDOW.start_ns, WINDOW.end_ns, endpoint_tag=endpoint)
    }
    assert sorted(v for v in on_endpoint - before if v) == new == [n["version"] for n in facts["new"]]
    for entry in facts["new"]:
        first = first_start(
            rows, WINDOW.start_ns, WINDOW.end_ns, endpoint_tag=endpoint, prompt_version=entry["version"]
        )
        assert first is not None
        assert parse_range(f"{entry['first_seen']}..2100-01-01").start_ns == first // 10**9 * 10**9
    line = next(e for e in report["classification"]["evidence"] if e.startswith("prompt versions on "))
    assert " -> ".join(", ".join(v or "(none)" for v in facts[s]) for s in ("baseline", "current")) in line
    assert ("new in the window: " + new[0]) in line if new else "no version first seen in the window" in line


def test_triage_note_carries_the_workflow_numbers(scenario: tuple[str, Built]) -> None:
    name, (report, rows) = scenario
    _incidents, kind, endpoint, new = SCENARIOS[name]
    note = render_investigate(report, "triage")
    b, c = _figures(rows)

    def line(prefix: str) -> str:
        return next(x for x in note.splitlines() if x.startswith(prefix))

    assert (
        line("- requests/hour: ") == f"- requests/hour: {b['requests_per_hour']} -> {c['requests_per_hour']}"
    )
    assert line("- tokens/request (in/out, per call): ").endswith(
        f"{b['input_tokens_per_call']}/{b['output_tokens_per_call']}"
        f" -> {c['input_tokens_per_call']}/{c['output_tokens_per_call']}"
    )
    cost = re.fullmatch(
        r"- cost/request: (\S+) -> (\S+) USD \(attempts/request (\S+) -> (\S+)\)", line("- cost/request")
    )
    assert cost is not None
    assert _close(cost[1], _usd(b["cost_per_request_nano_usd"]))
    assert _close(cost[2], _usd(c["cost_per_request_nano_usd"]))
    assert [float(cost[3]), float(cost[4])] == [b["attempts_per_request"], c["attempts_per_request"]]
    assert line("- top endpoint_tag: ").startswith(f"- top endpoint_tag: {endpoint} (+")
    tenant = report["classification"]["facts"].get("spread", {}).get("tenant_id", {}).get("value")
    top_tenant = next(d for d in report["dimensions"] if d["dimension"] == "tenant_id")["drivers"][0]["value"]
    assert tenant in (None, top_tenant)
    assert line("- top tenant/user: ").startswith(f"- top tenant/user: {top_tenant} (")
    correlation = line("- prompt_version correlation: ")
    assert f"on {endpoint}: " in correlation
    assert (f"new: {new[0]}" in correlation) if new else ("no new version on this endpoint" in correlation)
    if name == "creep_with_deploy_elsewhere":
        assert "new elsewhere: summary_v4" in correlation
    hypothesis = {"volume": "**volume**", "token": "**efficiency**"}[kind]
    assert "Hypothesis (pick one): " in note and hypothesis in line("Hypothesis")
    assert f"Classification: {kind} (" in note
    suggested = line("- (suggested) ")
    assert endpoint in suggested and "Roll" not in suggested and "back to prompt version" not in suggested
    if kind == "volume":
        assert suggested.startswith("- (suggested) Rate-limit or queue non-critical traffic")
    elif name == "longer_answers":
        assert "Cap output tokens" in suggested and "max_tokens" in suggested
    else:
        assert "Cap the input context" in suggested
    step = report["classification"]["next_step"]["cli"]
    if kind == "token":
        assert step.startswith("spanmeter compare prompt-versions") and f"--endpoint {endpoint}" in step
    else:
        assert "--by tenant_id" in step and f"endpoint_tag={endpoint}" in step


def test_people_read_rounded_usd_scripts_get_exact(build: Callable[[str], Built]) -> None:
    report, rows = build("surge")
    for text in (render_investigate(report, "table"), render_investigate(report, "triage")):
        assert not re.search(r"\d\.\d{7,}", text), "an amount printed to the nano-USD for people"
    effects = report["totals"]["effects_nano_usd"]
    evidence = report["classification"]["evidence"][0]
    for effect, nano in effects.items():
        shown = re.search(rf"{effect} ([+-]\S+) USD", evidence)
        assert shown is not None and _close(shown[1], _usd(nano)), evidence
    # JSON keeps the exact figures, facts included
    assert json.loads(render_investigate(report, "json")) == report
    now = group(rows, WINDOW.start_ns, WINDOW.end_ns, []).get((), Acc())
    assert report["totals"]["current"]["cost_usd"] == f"{_usd(now.cost):.9f}"
    assert to_ns(DAY5) == WINDOW.end_ns


def test_a_deploy_that_only_lengthens_answers_is_still_a_deploy(tmp_path: Path) -> None:
    """Longer answers raise cost per token (output costs more): with a new prompt version
    behind them that is a deploy, not routing and not a plain token spike."""
    deploy = PromptDeploy("docs.summarize", "docs_v3", at=DAY4, input_factor=1.0, output_factor=6.0)
    config = SyntheticConfig(start=DAY3, days=2, requests_per_hour=120, incidents=(deploy,))
    dataset = generate(config)
    with SQLiteStore(tmp_path / "store.db") as store:
        dataset.write_to(store)
        report = investigate(store, WINDOW, "previous")
    classification = report["classification"]
    assert classification["type"] == "deploy", classification["evidence"]
    assert classification["facts"]["dominant_effect"] == "price"
    assert classification["facts"]["deploy"]["version"] == "docs_v3"
    assert classification["facts"]["deploy"]["previous"] == "docs_v2"
    first = first_start(dataset.rows, WINDOW.start_ns, WINDOW.end_ns, prompt_version="docs_v3")
    assert first is not None
    assert classification["facts"]["deploy"]["first_seen"] == TimeWindow(first, first + 1).iso()[0]
    assert "Roll docs.summarize back to prompt version docs_v2" in classification["containment"]


def _per_call_change(rows: list[SpanRow], side: str) -> float:
    """Tokens per call on ``side`` of docs_v3 (window) against docs_v2 (baseline), in percent."""
    before = group(rows, BASELINE.start_ns, BASELINE.end_ns, [], {"prompt_version": "docs_v2"})[()]
    now = group(rows, WINDOW.start_ns, WINDOW.end_ns, [], {"prompt_version": "docs_v3"})[()]
    ratio = (getattr(now, side) / now.attempts) / (getattr(before, side) / before.attempts)
    return round(100 * (ratio - 1), 1)


# input factor, output factor, the sides whose growth the containment must act on
DEPLOY_GROWTH = {
    "longer_prompt": (2.5, 1.0, ["input"]),
    "longer_answers": (1.0, 6.0, ["output"]),
    "both": (2.0, 2.0, ["input", "output"]),
}


@pytest.mark.parametrize("name", sorted(DEPLOY_GROWTH))
def test_deploy_containment_fits_what_grew(name: str, tmp_path: Path) -> None:
    """max_tokens caps answers only: a deploy that lengthened the prompt is told to trim
    the prompt or context, one that lengthened answers to cap output tokens, and each
    suggestion cites the growth it acts on, as recomputed from the raw rows."""
    input_factor, output_factor, grown = DEPLOY_GROWTH[name]
    deploy = PromptDeploy(
        "docs.summarize", "docs_v3", at=DAY4, input_factor=input_factor, output_factor=output_factor
    )
    dataset = generate(SyntheticConfig(start=DAY3, days=2, requests_per_hour=120, incidents=(deploy,)))
    with SQLiteStore(tmp_path / "store.db") as store:
        dataset.write_to(store)
        report = investigate(store, WINDOW, "previous")
    classification = report["classification"]
    assert classification["type"] == "deploy", classification["evidence"]
    change = classification["facts"]["deploy"]["tokens_per_call_change_pct"]
    for side in ("input", "output"):
        assert change[side] == _per_call_change(dataset.rows, side), side
    containment = classification["containment"]
    assert containment.startswith("Roll docs.summarize back to prompt version docs_v2, or ")
    assert ("trim the prompt or context docs_v3 sends" in containment) == ("input" in grown)
    assert ("cap output tokens with max_tokens" in containment) == ("output" in grown)
    for side in ("input", "output"):
        cited = f"{side} tokens per call {change[side]:+.1f}%"
        assert (cited in containment) == (side in grown), containment
    # the growth cited is growth, and a side left out did not grow enough to act on
    assert all(change[side] >= 10 for side in grown)
    assert all(abs(change[side]) < 10 for side in ("input", "output") if side not in grown)
