"""compare prompt-versions, unit economics, the quality score and re-pricing, each checked
against an independent recomputation from the raw rows."""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from spanmeter.analysis.common import parse_range
from spanmeter.analysis.economics import render_economics, unit_economics
from spanmeter.analysis.prompt_versions import compare_prompt_versions, render_prompt_versions
from spanmeter.analysis.quality import CHECKS, quality_report
from spanmeter.analysis.reprice import apply_plan, plan_repricing
from spanmeter.analysis.revenue import parse_revenue_csv
from spanmeter.api import make_api
from spanmeter.cli import main
from spanmeter.money import money_text
from spanmeter.pricing import PriceBook
from spanmeter.store import MEASURES, ROLLUPS, SpanRow, SpanStore, SQLiteStore, StaleRepricing
from spanmeter.synthetic import (
    DataFaults,
    ModelFallback,
    PromptDeploy,
    SyntheticConfig,
    SyntheticDataset,
    UnknownModel,
    generate,
    to_ns,
)
from support.analysis_oracle import group, nearest_rank
from support.stores import BACKENDS, backend_target, opened_store

DAY3 = datetime(2026, 3, 3, tzinfo=timezone.utc)
DAY4 = datetime(2026, 3, 4, tzinfo=timezone.utc)
DAY5 = datetime(2026, 3, 5, tzinfo=timezone.utc)
WINDOW = "2026-03-03T00:00..2026-03-05T00:00"
CONFIG = SyntheticConfig(
    start=DAY3,
    days=2,
    requests_per_hour=60,
    retry_share=0.05,
    faults=DataFaults(
        untagged_share=0.03,
        unversioned_share=0.05,
        no_usage_share=0.01,
        pii_user_share=0.004,
        test_traffic_share=0.01,
        clock_skew_share=0.02,
        clock_skew_s=-1200,
    ),
    incidents=(
        PromptDeploy("support.reply", "support_v6", at=DAY4),
        ModelFallback(
            "checkout.ai_summary", datetime(2026, 3, 4, 12, tzinfo=timezone.utc), DAY5, "gpt-4o", share=0.3
        ),
        UnknownModel("acme-llm-2", DAY4, DAY5, endpoint="search.rerank", share=0.5),
    ),
)
OVERRIDES = """
version: 1
models:
  - provider: vllm
    model: acme-llm-2
    prices:
      - effective_from: 2025-01-01
        input_mtok: "0.40"
        output_mtok: "1.20"
  - provider: openai
    model: gpt-4o
    prices:
      - effective_from: 2026-03-04
        input_mtok: "2.00"
        output_mtok: "8.00"
"""


@pytest.fixture(scope="module")
def dataset() -> SyntheticDataset:
    return generate(CONFIG)


@pytest.fixture(params=BACKENDS)
def store(dataset: SyntheticDataset, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SpanStore]:
    """The dataset in each backend: the analyses must answer the same from every store."""
    with opened_store(backend_target(str(request.param), tmp_path, request, "units")) as store:
        dataset.write_to(store, batch_size=900)
        yield store


@pytest.fixture
def sqlite_store(dataset: SyntheticDataset, tmp_path: Path) -> Iterator[SQLiteStore]:
    """The dataset in a SQLite file, for the tests that compare the file's tables directly."""
    with SQLiteStore(tmp_path / "units.db") as store:
        dataset.write_to(store, batch_size=900)
        yield store


def _api(store: SpanStore, path: str, query: str) -> Any:
    status: list[str] = []
    body = b"".join(
        make_api(store)({"PATH_INFO": path, "QUERY_STRING": query}, lambda s, h: status.append(s))
    )
    assert status == ["200 OK"], body
    return json.loads(body)


def _decimals(text: str) -> int:
    return -int(Decimal(text).as_tuple().exponent)


def _assert_money_column(texts: list[str], nanos: Sequence[int | None]) -> None:
    """A printed USD column: each figure is the exact amount rounded to the column's one
    precision, the finest a person would get for any figure alone (cents from 1 USD up,
    4 decimals from a cent, 4 significant digits below), never the raw nano-USD string."""
    decimals = max(_decimals(money_text(n)) for n in nanos if n is not None)
    assert decimals < 9 or any(n is not None and abs(n) < 10_000 for n in nanos)
    for text, nano in zip(texts, nanos, strict=True):
        if nano is None:
            assert text == "-"
            continue
        assert _decimals(text) == decimals, (text, nano)
        assert abs(Decimal(text) - Decimal(nano) / 10**9) <= Decimal(5).scaleb(-decimals - 1), (text, nano)


def _table_rows(text: str, heading: str) -> list[list[str]]:
    """The whitespace-split data lines of the table under ``heading`` (up to a blank line)."""
    lines = text.splitlines()
    start = lines.index(heading) + 2  # the heading, then the column header
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return [line.split() for line in lines[start:end]]


# -- compare prompt-versions -------------------------------------------------------------


def test_compare_prompt_versions_matches_the_raw_rows(store: SpanStore, dataset: SyntheticDataset) -> None:
    window = parse_range(WINDOW)
    report = compare_prompt_versions(store, window, endpoint="support.reply")
    rows = [
        r
        for r in dataset.rows
        if r.endpoint_tag == "support.reply" and window.start_ns <= r.event_time_ns < window.end_ns
    ]
    expected: dict[str | None, dict[str, Any]] = {}
    owner: dict[str, str | None] = {}
    request_cost: dict[object, int] = {}
    request_ok: dict[object, bool] = {}
    for index, row in enumerate(sorted(rows, key=lambda r: r.start_time_ns)):
        key: object = row.external_request_id or ("solo", index)
        version = (
            owner.setdefault(str(key), row.prompt_version) if isinstance(key, str) else row.prompt_version
        )
        entry = expected.setdefault(
            row.prompt_version,
            {"attempts": 0, "in": 0, "out": 0, "cost": 0, "tokens": [], "times": [], "requests": []},
        )
        entry["attempts"] += 1
        entry["in"] += row.input_tokens or 0
        entry["out"] += row.output_tokens or 0
        entry["cost"] += row.cost_nano_usd or 0
        entry["times"].append(row.start_time_ns)
        if row.input_tokens is not None:
            entry["tokens"].append(row.input_tokens + (row.output_tokens or 0))
        if key not in request_cost:
            expected[version]["requests"].append(key)
        request_cost[key] = request_cost.get(key, 0) + (row.cost_nano_usd or 0)
        request_ok[key] = request_ok.get(key, False) or row.outcome == "success"
    versions = {v["prompt_version"]: v for v in report["versions"]}
    assert set(versions) == set(expected) == {"support_v5", "support_v6", None}
    for version, entry in expected.items():
        got = versions[version]
        logical = len(entry["requests"])
        assert got["logical_requests"] == logical and got["attempts"] == entry["attempts"]
        assert got["cost_nano_usd"] == entry["cost"]
        assert got["cost_per_request_nano_usd"] == entry["cost"] // logical
        assert got["input_tokens_per_call"] == round(entry["in"] / entry["attempts"], 1)
        assert got["output_tokens_per_call"] == round(entry["out"] / entry["attempts"], 1)
        for percent in (50, 95, 99):
            assert got[f"tokens_p{percent}"] == nearest_rank(entry["tokens"], percent)
        assert got["success_rate"] == round(sum(request_ok[k] for k in entry["requests"]) / logical, 4)
        assert (
            got["first_seen"]
            == datetime.fromtimestamp(min(entry["times"]) // 10**9, tz=timezone.utc).isoformat()
        )
    v5, v6 = versions["support_v5"], versions["support_v6"]
    assert v6["previous_version"] == "support_v5" and v5["previous_version"] is None
    delta = v6["delta"]
    assert (
        delta["cost_per_request_nano_usd"]
        == v6["cost_per_request_nano_usd"] - v5["cost_per_request_nano_usd"]
    )
    costs = [[request_cost[k] for k in expected[v]["requests"]] for v in ("support_v5", "support_v6")]
    spread = math.sqrt(sum(statistics.variance(c) / len(c) for c in costs))
    z = (statistics.mean(costs[1]) - statistics.mean(costs[0])) / spread
    assert (
        delta["z"] == round(z, 2)
        and delta["significant"] is True
        and 90 < delta["cost_per_request_pct"] < 110
    )
    # a window with a handful of v6 requests: the same deploy is not significant yet
    early = compare_prompt_versions(
        store, parse_range("2026-03-03T23:30..2026-03-04T00:10"), endpoint="support.reply"
    )
    late = next(v for v in early["versions"] if v["prompt_version"] == "support_v6")
    assert late["delta"]["significant"] is False and "fewer than 30" in late["delta"]["note"]
    assert _api(store, "/api/v1/compare/prompt-versions", f"window={WINDOW}&endpoint=support.reply") == report
    # the table shows each version's cost per request, recomputed above, at a readable precision
    table = render_prompt_versions(report, "table").splitlines()[2:]
    printed = {(None if cells[1] == "(none)" else cells[1]): cells[3] for cells in map(str.split, table)}
    assert set(printed) == set(expected)
    order = list(printed)
    _assert_money_column(
        [printed[v] for v in order], [expected[v]["cost"] // len(expected[v]["requests"]) for v in order]
    )


# -- unit economics ----------------------------------------------------------------------


def test_unit_economics_matches_the_raw_rows(store: SpanStore, dataset: SyntheticDataset) -> None:
    window = parse_range(WINDOW)
    store.put_revenue(
        parse_revenue_csv("tenant,period,revenue\nt_0000,2026-03-04,20\nt_0003,2026-W10,900.5\n")
    )
    report = unit_economics(store, window, limit=1000)
    rows = dataset.rows
    (total,) = group(rows, window.start_ns, window.end_ns, []).values()
    totals = report["totals"]
    assert totals["cost_nano_usd"] == total.cost
    assert totals["successful_requests"] == total.attempts - total.errors
    assert totals["retry_ratio"] == round(total.attempts / total.logical, 4)
    assert Fraction(totals["cost_per_successful_request_usd"]) == Fraction(
        total.cost // (total.attempts - total.errors), 10**9
    )
    for dimension, section in (
        ("tenant_id", "per_tenant"),
        ("user_id", "per_user"),
        ("endpoint_tag", "per_endpoint"),
    ):
        expected = group(rows, window.start_ns, window.end_ns, [dimension])
        got = {row[dimension]: row for row in report[section]["rows"]}
        assert set(got) == {key[0] for key in expected}
        for (value,), acc in expected.items():
            assert got[value]["cost_nano_usd"] == acc.cost
            assert got[value]["logical_requests"] == acc.logical
            assert got[value]["successful_requests"] == acc.attempts - acc.errors
    in_window = [r for r in rows if window.start_ns <= r.event_time_ns < window.end_ns]
    fallbacks = sum(
        1 for r in in_window if r.request_model and r.response_model and r.request_model != r.response_model
    )
    assert report["fallbacks"] == {
        "attempts": len(in_window),
        "fallbacks": fallbacks,
        "rate": round(fallbacks / len(in_window), 4),
    }
    assert fallbacks > 0
    tokens = [(r.input_tokens or 0) + (r.output_tokens or 0) for r in in_window if r.input_tokens is not None]
    p99 = nearest_rank(tokens, 99)
    assert report["tails"]["tokens_p99"] == p99 and report["tails"]["tokens_p95"] == nearest_rank(tokens, 95)
    assert report["tails"]["outlier_calls"] == sum(t > p99 for t in tokens)
    profit = {(row["tenant_id"], row["period"]): row for row in report["profitability"]["rows"]}
    day = group(rows, to_ns(DAY4), to_ns(DAY5), ["tenant_id"])[("t_0000",)].cost
    assert profit[("t_0000", "2026-03-04")]["margin_nano_usd"] == 20 * 10**9 - day
    assert profit[("t_0000", "2026-03-04")]["flagged"] == (Fraction(day, 20 * 10**9) > Fraction(3, 10))
    week = parse_range("2026-03-02..2026-03-09")
    assert (
        profit[("t_0003", "2026-W10")]["margin_nano_usd"]
        == 900_500_000_000 - group(rows, week.start_ns, week.end_ns, ["tenant_id"])[("t_0003",)].cost
    )
    assert _api(store, "/api/v1/economics", f"window={WINDOW}&limit=1000") == report
    # the table: money per tenant at a readable precision, checked against the raw rows
    table = render_economics(report, "table")
    tenants = group(rows, window.start_ns, window.end_ns, ["tenant_id"])
    printed = {cells[0]: cells for cells in _table_rows(table, "per tenant_id")}
    assert set(printed) == {key[0] for key in tenants}
    order = sorted(printed)
    accs = [tenants[(tenant,)] for tenant in order]
    _assert_money_column([printed[t][1] for t in order], [acc.cost for acc in accs])
    _assert_money_column([printed[t][4] for t in order], [acc.cost // acc.logical for acc in accs])
    _assert_money_column(
        [printed[t][5] for t in order],
        [acc.cost // (acc.attempts - acc.errors) if acc.attempts > acc.errors else None for acc in accs],
    )
    summary = table.splitlines()[1].split()
    _assert_money_column([summary[1]], [total.cost])
    margins = [line.split() for line in table.splitlines() if " margin " in line]
    by_period = {(cells[-9], cells[-8]): cells for cells in margins}
    _assert_money_column([by_period[("t_0000", "2026-03-04")][-2]], [20 * 10**9 - day])


def test_revenue_csv_is_validated() -> None:
    with pytest.raises(ValueError, match="columns"):
        parse_revenue_csv("customer,amount\nx,1\n")
    with pytest.raises(ValueError, match="line 2"):
        parse_revenue_csv("tenant,period,revenue\nt1,March,10\n")
    (row,) = parse_revenue_csv('tenant_id,period,revenue\nt1,2026-12,"1,250.10"\n')
    assert row.revenue_nano_usd == 1_250_100_000_000 and row.end_ns == to_ns(datetime(2027, 1, 1))


# -- quality score -----------------------------------------------------------------------


def test_quality_score_matches_the_raw_rows(store: SpanStore, dataset: SyntheticDataset) -> None:
    window = parse_range(WINDOW)
    report = quality_report(store, window)
    rows = [r for r in dataset.rows if window.start_ns <= r.event_time_ns < window.end_ns]
    pii = lambda v: bool(v) and ("@" in v or v.startswith("+1-555"))  # noqa: E731  (what the generator leaks)
    skew = [r.received_at_ns - (r.end_time_ns or r.start_time_ns) for r in rows]
    expected = {
        "endpoint_tag": (sum(r.endpoint_tag is not None for r in rows), len(rows)),
        "prompt_version": (sum(r.prompt_version is not None for r in rows), len(rows)),
        "priced_models": (sum(r.pricing_status != "unknown_model" for r in rows), len(rows)),
        "usage": (
            sum(r.input_tokens is not None for r in rows if r.outcome == "success"),
            sum(r.outcome == "success" for r in rows),
        ),
        "data_mode": (sum(r.environment != "staging" for r in rows), len(rows)),
        "pii": (sum(not pii(r.user_id) for r in rows), len(rows)),
        "clock": (sum(-60 * 10**9 <= s <= 900 * 10**9 for s in skew), len(rows)),
        "reconciliation": (1, 1),
    }
    checks = {check["name"]: check for check in report["checks"]}
    score = Fraction(0)
    for spec in CHECKS:
        passed, applicable = expected[spec.name]
        assert (checks[spec.name]["passed"], checks[spec.name]["applicable"]) == (passed, applicable), (
            spec.name
        )
        score += spec.weight * Fraction(passed, applicable)
    assert report["score"] == round(float(score), 1)
    assert checks["priced_models"]["details"]["unknown_models"][0]["model"] == "acme-llm-2"
    assert "acme-llm-2" in checks["priced_models"]["details"]["override_snippet"]
    assert checks["pii"]["status"] == "fail" and "@" not in json.dumps(checks["pii"]["details"])
    assert checks["clock"]["status"] != "ok" and checks["reconciliation"]["status"] == "ok"
    assert _api(store, "/api/v1/quality", f"window={WINDOW}&data_mode=all") == report
    result = CliRunner().invoke(main, ["doctor", "--store", store.location, "--window", WINDOW])
    assert result.exit_code == 0, result.output
    assert f"score {report['score']}/100" in result.output and "acme-llm-2" in result.output


# -- re-pricing --------------------------------------------------------------------------


def _snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, rollups merged per group (what queries see)."""
    conn = sqlite3.connect(path)
    try:
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        snapshot = {}
        for table in tables:
            spec = next((s for s in ROLLUPS if s.table == table), None)
            if spec is None:
                snapshot[table] = sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            else:
                keys = ", ".join((spec.bucket_column, *spec.dimensions))
                sums = ", ".join(f"sum({m})" for m in MEASURES if m != "latency_ms_sum")
                snapshot[table] = conn.execute(
                    f"SELECT {keys}, {sums} FROM {table} GROUP BY {keys} ORDER BY {keys}"
                ).fetchall()
        return snapshot
    finally:
        conn.close()


def test_reprice_dry_run_changes_nothing(sqlite_store: SQLiteStore, tmp_path: Path) -> None:
    pricing = tmp_path / "prices.yaml"
    pricing.write_text(OVERRIDES)
    before = _snapshot(sqlite_store.path)
    plan = plan_repricing(sqlite_store, parse_range(WINDOW), PriceBook.from_file(pricing))
    assert plan.changes
    result = CliRunner().invoke(
        main,
        [
            "reprice",
            "--db",
            str(sqlite_store.path),
            "--window",
            WINDOW,
            "--pricing-file",
            str(pricing),
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "unknown_model -> priced" in result.output
    assert _snapshot(sqlite_store.path) == before
    # the diff's figures, recomputed from the planned changes, at a readable precision
    old_total = sum(c.old.cost_nano_usd or 0 for c in plan.changes)
    new_total = sum(c.new.cost_nano_usd or 0 for c in plan.changes)
    lines = result.output.splitlines()
    summary = lines[1].split()
    for text, nano in zip(
        (summary[5], summary[7], summary[10].strip(")")),
        (old_total, new_total, new_total - old_total),
        strict=True,
    ):
        _assert_money_column([text], [nano])  # a sentence: each figure at its own precision
    per_model: dict[str, list[int]] = {}
    for change in plan.changes:
        entry = per_model.setdefault(change.old.model or "(none)", [0, 0])
        entry[0] += change.old.cost_nano_usd or 0
        entry[1] += change.new.cost_nano_usd or 0
    start = lines.index("  by model:") + 1
    shown = [line.split() for line in lines[start : start + min(5, len(per_model))]]
    assert {cells[0] for cells in shown} <= set(per_model)
    # before and after are one column (read against each other), the delta its own
    _assert_money_column(
        [cells[3] for cells in shown] + [cells[5] for cells in shown],
        [per_model[cells[0]][0] for cells in shown] + [per_model[cells[0]][1] for cells in shown],
    )
    _assert_money_column(
        [cells[6].strip("()") for cells in shown],
        [per_model[cells[0]][1] - per_model[cells[0]][0] for cells in shown],
    )


def test_reprice_changes_exactly_the_rows_and_rollups_of_the_diff(
    sqlite_store: SQLiteStore, tmp_path: Path
) -> None:
    pricing = tmp_path / "prices.yaml"
    pricing.write_text(OVERRIDES)
    before = _snapshot(sqlite_store.path)
    plan = plan_repricing(sqlite_store, parse_range(WINDOW), PriceBook.from_file(pricing))
    statuses = plan.diff["status_changes"]
    assert statuses["unknown_model -> priced"] > 0 and statuses["priced -> priced"] > 0  # new gpt-4o price
    audit = apply_plan(sqlite_store, plan, reason="acme-llm-2 priced; gpt-4o price change")
    after = _snapshot(sqlite_store.path)
    # raw rows: exactly the planned ones changed, and only in their pricing fields
    columns = [
        name for (_, name, *_) in sqlite3.connect(sqlite_store.path).execute("PRAGMA table_info(requests)")
    ]
    old_rows = {(r[columns.index("trace_id")], r[columns.index("span_id")]): r for r in before["requests"]}
    new_rows = {(r[columns.index("trace_id")], r[columns.index("span_id")]): r for r in after["requests"]}
    changed = {key for key in old_rows if old_rows[key] != new_rows[key]}
    assert changed == {(c.old.trace_id, c.old.span_id) for c in plan.changes}
    cost = columns.index("cost_nano_usd")
    for change in plan.changes:
        assert new_rows[(change.old.trace_id, change.old.span_id)][cost] == change.new.cost_nano_usd
    # rollups: each group moved by exactly the cost and unpriced deltas of its changed rows
    for spec in ROLLUPS:
        expected: dict[tuple[Any, ...], list[int]] = {}
        for change in plan.changes:
            row: SpanRow = change.old
            key = (
                row.event_time_ns // spec.bucket_ns * spec.bucket_seconds,
                *(getattr(row, d) or "" for d in spec.dimensions),
            )
            delta = expected.setdefault(key, [0, 0])
            delta[0] += (change.new.cost_nano_usd or 0) - (row.cost_nano_usd or 0)
            delta[1] += (change.new.cost_nano_usd is None) - (row.cost_nano_usd is None)
        width = 1 + len(spec.dimensions)
        cost_at = width + [m for m in MEASURES if m != "latency_ms_sum"].index("cost_nano_usd")
        unpriced_at = width + [m for m in MEASURES if m != "latency_ms_sum"].index("unpriced")
        old_groups = {r[:width]: r for r in before[spec.table]}
        new_groups = {r[:width]: r for r in after[spec.table]}
        assert set(old_groups) == set(new_groups)
        for key, old in old_groups.items():
            new = new_groups[key]
            cost_delta, unpriced_delta = expected.get(key, [0, 0])
            assert new[cost_at] - old[cost_at] == cost_delta, key
            assert new[unpriced_at] - old[unpriced_at] == unpriced_delta, key
            assert [v for i, v in enumerate(new) if i not in (cost_at, unpriced_at)] == [
                v for i, v in enumerate(old) if i not in (cost_at, unpriced_at)
            ]
    # the audit trail says what and why; the untouched tables are untouched
    assert sqlite_store.reprice_audits()[0] == audit and audit.rows_changed == len(plan.changes)
    assert after["reprice_audit_rows"] and len(after["reprice_audit_rows"]) == len(plan.changes)
    assert after["logical_requests"] == before["logical_requests"]
    # every reader agrees with the new raw rows, before and after compaction
    window = parse_range(WINDOW)
    raw = sum(
        c or 0
        for (c,) in sqlite3.connect(sqlite_store.path).execute(
            "SELECT cost_nano_usd FROM requests WHERE billable AND start_time_ns >= ? AND start_time_ns < ?",
            (window.start_ns, window.end_ns),
        )
    )
    assert (
        sqlite_store.aggregate(
            ("endpoint_tag",), window.start_ns, window.end_ns, data_mode=None
        ).total.cost_nano_usd
        == raw
    )
    while sqlite_store.compact_rollups(to_ns(DAY5) + 10**13, max_buckets=1000):
        pass
    assert (
        sqlite_store.aggregate(("model",), window.start_ns, window.end_ns, data_mode=None).total.cost_nano_usd
        == raw
    )
    # ingest goes on into the same buckets after a re-pricing (no sequence-number clash)
    more = generate(SyntheticConfig(seed=99, start=DAY4, days=1, requests_per_hour=20)).rows
    assert sqlite_store.write_batch(more).inserted == len(more)
    # the same plan again is stale: refused whole
    with pytest.raises(StaleRepricing):
        apply_plan(sqlite_store, plan, reason="again")
    assert len(sqlite_store.reprice_audits()) == 1
    assert _api(sqlite_store, "/api/v1/reprice/audits", "")["audits"][0]["reason"] == audit.reason
