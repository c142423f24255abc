"""``spanmeter doctor``'s clock check against real SQLite stores: back-filled traffic (spans
ending hours apart that arrive together, as the demo sends them) is not a skewed clock, and
a clock running behind or ahead on live traffic still fails, by the exact number of spans.
Also the priced-models line, which reads as the priced share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from spanmeter.analysis.quality import quality_report
from spanmeter.analysis.window import TimeWindow
from spanmeter.cli import main
from spanmeter.store import SpanRow, SQLiteStore
from support.rows import NS, span_row

T = 1_796_000_000 * NS  # a fixed arrival moment, 2026-11-30
MIN = 60 * NS
HOUR = 3600 * NS
WINDOW = TimeWindow(T - 50 * HOUR, T + HOUR)
WINDOW_TEXT = f"{WINDOW.start_ns // NS}..{WINDOW.end_ns // NS}"


def _span(end_ns: int, received_ns: int, service: str, **extra: Any) -> SpanRow:
    extra.setdefault("pricing_status", "priced")
    extra.setdefault("cost_nano_usd", 1000)
    return span_row(
        end_ns - NS, end_time_ns=end_ns, received_at_ns=received_ns, service_name=service, **extra
    )


def _clock(tmp_path: Path, rows: list[SpanRow]) -> tuple[dict[str, Any], Path]:
    db = tmp_path / "clock.db"
    with SQLiteStore(db) as store:
        store.write_batch(rows)
        report = quality_report(store, WINDOW)
    return next(c for c in report["checks"] if c["name"] == "clock"), db


def _live(service: str, count: int, offset_ns: int, *, start: int = T - 3 * HOUR) -> list[SpanRow]:
    """One span a minute, exported 2 s after it ended, from a host whose clock reads
    ``offset_ns`` off (negative: behind)."""
    return [_span(start + i * MIN + offset_ns, start + i * MIN + 2 * NS, service) for i in range(count)]


def test_back_filled_spans_pass_and_a_clock_ahead_among_them_still_fails(tmp_path: Path) -> None:
    # two days of spans sent within ten seconds (the demo's way), three of them ending
    # five minutes after they arrived: no transport delay explains that, the clock is ahead
    replay = [_span(T - 48 * HOUR + i * 17 * MIN, T + (i % 10) * NS, "replayer") for i in range(160)]
    ahead = [_span(T + 5 * MIN, T + i * NS, "replayer") for i in range(3)]
    clock, db = _clock(tmp_path, replay + ahead)
    assert (clock["passed"], clock["applicable"]) == (160, 163)
    assert clock["details"]["backfilled_attempts"] == 160
    assert clock["details"]["services"] == [{"service": "replayer", "attempts": 3}]
    assert clock["status"] == "warn"  # 160/163 = 98.2%: under the 99% for ok, over the 95% for warn
    table = CliRunner().invoke(main, ["doctor", "--db", str(db), "--window", WINDOW_TEXT])
    assert table.exit_code == 0, table.output
    assert "160 attempts arrived in back-filled batches" in table.output


def test_a_pure_back_fill_is_ok_in_the_doctor_table(tmp_path: Path) -> None:
    replay = [_span(T - 48 * HOUR + i * 7 * MIN, T + (i % 5) * NS, "demo-app") for i in range(400)]
    clock, db = _clock(tmp_path, replay)
    assert (clock["passed"], clock["applicable"], clock["status"]) == (400, 400, "ok")
    table = CliRunner().invoke(main, ["doctor", "--db", str(db), "--window", WINDOW_TEXT]).output
    line = next(line for line in table.splitlines() if "clock skew" in line)
    assert line.lstrip().startswith("[ok]") and "(400/400" in line, line


def test_a_live_clock_behind_fails_for_each_of_its_spans(tmp_path: Path) -> None:
    # 20 minutes behind (past the 15-minute bound) and 5 hours behind (a local time sent
    # as UTC): lateness alone looks like a back-fill, but each host's spans arrive one by
    # one, ending a minute apart, so the arrival dates them and the lateness is the clock
    rows = _live("sane", 120, 0) + _live("twenty-behind", 120, -20 * MIN) + _live("utc-5", 60, -5 * HOUR)
    clock, db = _clock(tmp_path, rows)
    assert (clock["passed"], clock["applicable"]) == (120, 300)
    assert clock["details"]["backfilled_attempts"] == 0
    assert clock["details"]["services"] == [
        {"service": "twenty-behind", "attempts": 120},
        {"service": "utc-5", "attempts": 60},
    ]
    assert clock["status"] == "fail"
    table = CliRunner().invoke(main, ["doctor", "--db", str(db), "--window", WINDOW_TEXT]).output
    assert "[FAIL] clock skew" in table and "twenty-behind: 120 attempts" in table
    assert "back-filled" not in table


def test_one_host_behind_among_sane_hosts_of_a_service_is_caught(tmp_path: Path) -> None:
    # the same service name on two hosts, one 20 minutes behind: its spans arrive next to
    # the sane host's, ending 20 minutes apart, which is well under the back-fill spread
    rows = _live("api", 120, 0) + _live("api", 12, -20 * MIN, start=T - 3 * HOUR + 30 * NS)
    clock, _ = _clock(tmp_path, rows)
    assert (clock["passed"], clock["applicable"]) == (120, 132)
    assert clock["details"]["services"] == [{"service": "api", "attempts": 12}]
    assert clock["details"]["backfilled_attempts"] == 0


def test_a_live_clock_ahead_fails(tmp_path: Path) -> None:
    clock, _ = _clock(tmp_path, _live("sane", 100, 0) + _live("ahead", 100, 2 * MIN))
    assert (clock["passed"], clock["applicable"]) == (100, 200)
    assert clock["details"]["services"] == [{"service": "ahead", "attempts": 100}]


def test_the_priced_models_line_reads_as_the_priced_share(tmp_path: Path) -> None:
    db = tmp_path / "models.db"
    unknown = _span(T - MIN, T, "app", model="acme-llm-2", pricing_status="unknown_model", cost_nano_usd=None)
    rows = [*_live("app", 99, 0), unknown]
    with SQLiteStore(db) as store:
        store.write_batch(rows)
    table = CliRunner().invoke(main, ["doctor", "--db", str(db), "--window", WINDOW_TEXT]).output
    line = next(line for line in table.splitlines() if "priced models" in line)
    assert "priced models (known to the price list)" in line and "99.00%" in line and "(99/100" in line, line
    assert "unknown-model ratio" not in table
    document = json.loads(
        CliRunner()
        .invoke(main, ["doctor", "--db", str(db), "--window", WINDOW_TEXT, "--format", "json"])
        .output
    )
    priced = next(c for c in document["checks"] if c["name"] == "priced_models")
    assert priced["share"] == 0.99 and priced["details"]["unknown_models"][0]["model"] == "acme-llm-2"
