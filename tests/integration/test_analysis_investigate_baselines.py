"""investigate with a baseline of the window's length and with one of another length.

Each injected incident (volume, tokens, deploy, concentration, retries, routing, unknown
model) starts with a 2-hour window and is investigated twice: against the 2 hours before
(equal lengths: totals compared as they are) and against the whole day before (24 hours:
compared per hour, the baseline scaled by 1/12). Both must name the same class and the
same driver; the per-hour numbers must equal an independent recomputation from the raw
rows (exact Fractions, rounded once); and the table, the triage note, the CLI and the
API must say which comparison they made.

Traffic is flat over the day (``daily_amplitude=0``) so that a day's hourly rate is what
the 2 hours before would have had: the incident is the only change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from spanmeter.analysis.common import parse_range
from spanmeter.analysis.investigate import investigate, resolve_baseline
from spanmeter.analysis.investigate_render import render_investigate
from spanmeter.api import make_api
from spanmeter.cli import main
from spanmeter.store import SpanRow, SQLiteStore
from spanmeter.synthetic import (
    ContextGrowth,
    Incident,
    ModelFallback,
    PromptDeploy,
    RetryStorm,
    SyntheticConfig,
    TenantBurst,
    UnknownModel,
    VolumeSurge,
    generate,
)
from support.analysis_oracle import Acc, group, integer_effects

DAY3 = datetime(2026, 3, 3, tzinfo=timezone.utc)
START = datetime(2026, 3, 4, 22, tzinfo=timezone.utc)
END = datetime(2026, 3, 5, tzinfo=timezone.utc)
WINDOW_TEXT = "2026-03-04T22:00..2026-03-05T00:00"
WINDOW = parse_range(WINDOW_TEXT)
DAY_BEFORE = "2026-03-03T00:00..2026-03-04T00:00"
BASELINES = {"equal": "previous", "unequal": DAY_BEFORE}
USER = "uh_" + "b" * 24

# incident, expected class, expected driver (dimension, value)
CASES: dict[str, tuple[Incident, str, tuple[str, str]]] = {
    # about four times the traffic on one endpoint, from everyone
    "volume": (
        VolumeSurge("support.reply", START, END, requests_per_hour=360),
        "volume",
        ("endpoint_tag", "support.reply"),
    ),
    "tokens": (
        ContextGrowth("docs.summarize", START, START + timedelta(minutes=1), input_factor=2.5),
        "token",
        ("endpoint_tag", "docs.summarize"),
    ),
    "deploy": (
        PromptDeploy("support.reply", "support_v6", at=START),
        "deploy",
        ("endpoint_tag", "support.reply"),
    ),
    "concentration": (
        TenantBurst("t_0012", START, END, requests_per_hour=150, user=USER),
        "abuse",
        ("tenant_id", "t_0012"),
    ),
    "retries": (
        RetryStorm(START, END, endpoint="docs.summarize", extra_attempts=2),
        "retries",
        ("endpoint_tag", "docs.summarize"),
    ),
    "routing": (
        ModelFallback("checkout.ai_summary", START, END, response_model="gpt-4o"),
        "routing",
        ("endpoint_tag", "checkout.ai_summary"),
    ),
    "unknown_model": (
        UnknownModel("acme-llm-2", START, END, endpoint="search.rerank"),
        "unknown_model",
        ("model", "acme-llm-2"),
    ),
}

Built = tuple[SQLiteStore, list[SpanRow], Path]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Built]]:
    """A store per incident, built once per module on first use."""
    built: dict[str, Built] = {}

    def get(name: str) -> Built:
        if name not in built:
            config = SyntheticConfig(
                start=DAY3, days=2, requests_per_hour=120, daily_amplitude=0.0, incidents=(CASES[name][0],)
            )
            dataset = generate(config)
            path = tmp_path_factory.mktemp(name) / "store.db"
            store = SQLiteStore(path)
            dataset.write_to(store, batch_size=700)
            built[name] = (store, dataset.rows, path)
        return built[name]

    yield get
    for store, _, _ in built.values():
        store.close()


@pytest.fixture(
    params=[(name, kind) for name in sorted(CASES) for kind in BASELINES], ids=lambda p: "-".join(p)
)
def case(request: pytest.FixtureRequest, build: Callable[[str], Built]) -> tuple[str, str, Built]:
    name, kind = request.param
    return name, kind, build(name)


def _report(store: SQLiteStore, kind: str, limit: int = 10_000) -> dict[str, Any]:
    return investigate(store, WINDOW, BASELINES[kind], limit=limit)


def test_class_and_driver_are_the_same_whatever_the_baseline_length(case: tuple[str, str, Built]) -> None:
    name, kind, (store, _rows, _path) = case
    _incident, expected, (dimension, value) = CASES[name]
    report = _report(store, kind)
    classification = report["classification"]
    assert classification["type"] == expected, classification["evidence"]
    assert (classification["driver"]["dimension"], classification["driver"]["value"]) == (dimension, value)
    ranked = {d["dimension"]: d for d in report["dimensions"]}
    if expected != "unknown_model":  # an unpriced model costs nothing: it is found by its attempts
        assert ranked[dimension]["drivers"][0]["value"] == value
    else:
        assert ranked["model"]["unpriced_drivers"][0]["value"] == value
    # an unpriced model's calls cost nothing: spend may fall while the story is the gap
    assert report["totals"]["delta_nano_usd"] > 0 or expected == "unknown_model"
    comparison = report["comparison"]
    if kind == "equal":
        assert comparison["basis"] == "totals" and comparison["baseline_scale"] == "1"
    else:
        assert comparison["basis"] == "per_hour" and comparison["baseline_scale"] == "1/12"
        assert (comparison["window_hours"], comparison["baseline_hours"]) == (2, 24)
        # the bug this guards: the day's total is far above the 2 hours' one, so comparing
        # totals called every one of these spikes a drop ("none: no containment needed")
        assert report["totals"]["baseline"]["cost_nano_usd"] > report["totals"]["current"]["cost_nano_usd"]
        assert report["totals"]["delta_nano_usd"] > 0 or expected == "unknown_model"
        assert "No containment needed" not in classification["containment"]


def test_numbers_match_the_raw_rows_per_hour(case: tuple[str, str, Built]) -> None:
    """Every derived figure uses the same scaled baseline: totals, driver deltas, shares,
    the effect split, the order of drivers and the unpriced rise, exact until rounded."""
    _name, kind, (store, rows, _path) = case
    report = _report(store, kind)
    base = resolve_baseline(WINDOW, BASELINES[kind])
    scale = Fraction(WINDOW.end_ns - WINDOW.start_ns, base.end_ns - base.start_ns)
    assert str(scale) == report["comparison"]["baseline_scale"]
    before = group(rows, base.start_ns, base.end_ns, []).get((), Acc())
    now = group(rows, WINDOW.start_ns, WINDOW.end_ns, []).get((), Acc())
    exact_total = now.cost - scale * before.cost
    totals = report["totals"]
    assert totals["baseline"]["cost_nano_usd"] == before.cost  # as measured
    assert totals["baseline_scaled_cost_nano_usd"] == round(scale * before.cost)
    assert totals["delta_nano_usd"] == round(exact_total)
    assert totals["delta_pct"] == round(float(100 * exact_total / (scale * before.cost)), 2)
    hours = {"baseline": Fraction(base.end_ns - base.start_ns, 3600 * 10**9), "current": Fraction(2)}
    for side, acc in (("baseline", before), ("current", now)):
        per_hour = Fraction(acc.cost, 1) / hours[side]
        assert report["comparison"]["cost_per_hour_usd"][side] == f"{Decimal(round(per_hour)) / 10**9:.9f}"
    summed = [0, 0, 0, 0]
    for entry in report["dimensions"]:
        dimension = entry["dimension"]
        b_groups = group(rows, base.start_ns, base.end_ns, [dimension])
        c_groups = group(rows, WINDOW.start_ns, WINDOW.end_ns, [dimension])
        exact = {
            key[0]: c_groups.get(key, Acc()).cost - scale * b_groups.get(key, Acc()).cost
            for key in set(b_groups) | set(c_groups)
        }
        sign = -1 if exact_total < 0 else 1  # ranked in the total's direction
        order = sorted(exact, key=lambda v: (-sign * exact[v], v is None, v or ""))
        assert [d["value"] for d in entry["drivers"]] == order
        against = sorted(
            (v for v in exact if sign * exact[v] < 0), key=lambda v: (sign * exact[v], v is None, v or "")
        )
        assert [d["value"] for d in entry["offsetting_drivers"]] == against
        assert entry["moves"] == {
            "up": sum(x > 0 for x in exact.values()),
            "down": sum(x < 0 for x in exact.values()),
            "unchanged": sum(x == 0 for x in exact.values()),
        }
        for driver in entry["drivers"]:
            key = (driver["value"],)
            b, c = b_groups.get(key, Acc()), c_groups.get(key, Acc())
            assert driver["delta_nano_usd"] == round(exact[driver["value"]])
            assert driver["baseline_scaled_cost_nano_usd"] == round(scale * b.cost)
            assert driver["baseline"]["cost_nano_usd"] == b.cost  # as measured
            assert driver["share"] == round(float(exact[driver["value"]] / exact_total), 4)
            assert list(driver["effects_nano_usd"].values()) == integer_effects(b, c, scale)
            if dimension == "endpoint_tag":
                summed = [x + y for x, y in zip(summed, driver["effects_nano_usd"].values(), strict=True)]
        if dimension == "model":
            rise = {
                key[0]: c_groups.get(key, Acc()).unpriced - scale * b_groups.get(key, Acc()).unpriced
                for key in set(b_groups) | set(c_groups)
            }
            rising = sorted((v for v in rise if rise[v] > 0), key=lambda v: (-rise[v], v or ""))
            assert [d["value"] for d in entry["unpriced_drivers"]] == rising
    assert list(totals["effects_nano_usd"].values()) == summed


def test_evidence_quotes_rates_when_lengths_differ(build: Callable[[str], Built]) -> None:
    """A 24-hour count next to a 2-hour one would mislead: the counts the evidence quotes
    are per hour when the lengths differ, as they are when they are equal."""
    store, rows, _path = build("volume")
    equal, unequal = _report(store, "equal"), _report(store, "unequal")
    base = resolve_baseline(WINDOW, DAY_BEFORE)
    where = {"endpoint_tag": "support.reply"}
    before = group(rows, base.start_ns, base.end_ns, [], where)[()]
    now = group(rows, WINDOW.start_ns, WINDOW.end_ns, [], where)[()]
    line = f"logical requests per hour on support.reply: {round(before.logical / 24, 2)} -> {round(now.logical / 2, 2)}"
    assert any(line in e for e in unequal["classification"]["evidence"]), unequal["classification"][
        "evidence"
    ]
    assert any("logical requests on support.reply: " in e for e in equal["classification"]["evidence"])
    store, rows, _path = build("retries")
    evidence = " ".join(_report(store, "unequal")["classification"]["evidence"])
    assert "errors per hour " in evidence


def test_table_honours_limit_and_shows_the_largest_drops(build: Callable[[str], Built]) -> None:
    """A deploy moves traffic from support_v5 to support_v6: the table shows the rise and,
    apart, the old version's drop, at most --limit rows each."""
    _store, _rows, path = build("deploy")
    for kind, baseline in BASELINES.items():
        result = CliRunner().invoke(
            main,
            [
                "investigate",
                "--db",
                str(path),
                "--window",
                WINDOW_TEXT,
                "--baseline",
                baseline,
                "--limit",
                "2",
            ],
        )
        assert result.exit_code == 0, result.output
        text = result.output
        assert ("compared per hour: baseline scaled by 1/12" in text) == (kind == "unequal")
        sections = text.split("\n\n")
        versions = next(s for s in sections if s.startswith("prompt_version ("))
        rows = versions.splitlines()
        up, down = (
            rows.index("  up, largest first:"),
            rows.index("  down (against the total), largest first:"),
        )
        rising = [r.split()[0] for r in rows[up + 1 : down]]
        falling = [r.split()[0] for r in rows[down + 1 :]]
        assert rising[0] == "support_v6" and len(rising) <= 2
        assert falling[0] == "support_v5" and len(falling) <= 2
        users = next(s for s in sections if s.startswith("user_id (")).splitlines()
        assert sum(1 for r in users if r.startswith("  uh_")) <= 4  # 2 up, 2 down of ~200 users
        report = json.loads(
            CliRunner()
            .invoke(
                main,
                [
                    "investigate",
                    *("--db", str(path), "--window", WINDOW_TEXT, "--baseline", baseline),
                    *("--limit", "2", "--format", "json"),
                ],
            )
            .output
        )
        entry = next(d for d in report["dimensions"] if d["dimension"] == "prompt_version")
        drop = entry["offsetting_drivers"][0]
        assert drop["value"] == "support_v5" and drop["delta_nano_usd"] < 0
        assert f"{drop['share']:.1%}" in next(
            r for r in versions.splitlines() if r.startswith("  support_v5")
        )
        assert all(len(d["drivers"]) <= 2 and len(d["offsetting_drivers"]) <= 2 for d in report["dimensions"])
        # scripts reading the CSV see the drops too
        lines = render_investigate(report, "csv").splitlines()
        assert any(line.startswith("prompt_version,support_v5,") for line in lines)


def test_triage_note_says_per_hour_and_uses_snake_case(build: Callable[[str], Built]) -> None:
    store, _rows, _path = build("deploy")
    equal = render_investigate(_report(store, "equal"), "triage")
    unequal = render_investigate(_report(store, "unequal"), "triage")
    for note in (equal, unequal):
        assert "endpointTag" not in note and "promptVersion" not in note
        assert "- top endpoint_tag: support.reply (+" in note
        assert "- prompt_version correlation: " in note
        drops = next(x for x in note.splitlines() if x.startswith("- largest drops (against the rise): "))
        assert "prompt_version support_v5 (-" in drops
    assert "Compared per hour:" not in equal
    report = _report(store, "unequal")
    totals = report["totals"]
    line = next(x for x in unequal.splitlines() if x.startswith("Compared per hour: "))
    assert " over 24 h x 1/12 = " in line and " at the window's 2 h" in line
    cost = next(x for x in unequal.splitlines() if x.startswith("Cost: "))
    scaled = Decimal(totals["baseline_scaled_cost_nano_usd"]) / 10**9
    assert scaled >= 1 and cost.startswith(f"Cost: {scaled.quantize(Decimal('0.01'), ROUND_HALF_EVEN)} -> ")


def test_cli_and_api_compare_the_same_way(build: Callable[[str], Built]) -> None:
    store, _rows, path = build("volume")
    result = CliRunner().invoke(
        main,
        [
            "investigate",
            "--db",
            str(path),
            "--window",
            WINDOW_TEXT,
            "--baseline",
            DAY_BEFORE,
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    captured: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"] = status

    body = b"".join(
        make_api(store)(
            {
                "PATH_INFO": "/api/v1/investigate",
                "QUERY_STRING": f"window={WINDOW_TEXT}&baseline={DAY_BEFORE}&limit=10",
            },
            start_response,
        )
    )
    assert captured["status"] == "200 OK"
    answer = json.loads(body)
    assert answer == json.loads(result.output)
    assert answer["comparison"]["basis"] == "per_hour"
    assert answer["classification"]["type"] == "volume"
