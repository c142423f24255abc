"""``spanmeter report weekly`` and ``spanmeter doctor`` on the store ``spanmeter demo`` leaves
behind (the demo run as a user runs it, once for the module).

The demo's incident is a prompt deploy (``support_v5`` -> ``support_v6`` on
``support.reply``) inside the two days of traffic it sends, so the week holding the deploy
has both versions: its report must name that regression, with cost per request recomputed
here from the raw rows, file the demo's budget alerts (raised when the demo runs, about the
spend of the day before) under it, and never print Python's ``None``. The HTML is rendered
by headless Chromium and the regression box found on the screenshot by its colour.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from spanmeter.analysis.report_weekly import parse_week
from spanmeter.analysis.window import TimeWindow
from spanmeter.cli import main
from spanmeter.store import SpanRow, SQLiteStore
from support.analysis_oracle import group
from support.png import pixels

_HOUR_NS = 3600 * 10**9
_REGRESSION_BG = (0xFB, 0xE3, 0xDD)  # report_render's regression box
_BAR = (0x3B, 0x6F, 0xD8)


@dataclass(frozen=True)
class Demo:
    db: Path
    rows: list[SpanRow]
    deploy_ns: int
    """Start of support_v6's first span."""
    week: str
    """The week holding the deploy, as a date inside it."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    db = tmp_path_factory.mktemp("demo-report") / "demo.db"
    done = subprocess.run(
        [sys.executable, "-m", "spanmeter", "demo", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with SQLiteStore(db) as store:
        rows = list(store.iter_requests(0, 2**62))
    deploy_ns = min(r.start_time_ns for r in rows if r.prompt_version == "support_v6")
    day = datetime.fromtimestamp(deploy_ns // 10**9, tz=timezone.utc).date().isoformat()
    yield Demo(db, rows, deploy_ns, day)


def _report(demo: Demo, *args: str) -> str:
    result = CliRunner().invoke(main, ["report", "weekly", "--db", str(demo.db), "--week", demo.week, *args])
    assert result.exit_code == 0, result.output
    return result.output


def _per_request(demo: Demo, start_ns: int, end_ns: int, version: str) -> int:
    (acc,) = group(
        demo.rows, start_ns, end_ns, [], where={"endpoint_tag": "support.reply", "prompt_version": version}
    ).values()
    return acc.cost // acc.logical


def test_the_demo_week_names_the_regression_in_text_and_html(demo: Demo) -> None:
    week = parse_week(demo.week)
    document = json.loads(_report(demo, "--format", "json"))
    (change,) = [c for c in document["prompt_version_changes"] if c["prompt_version"] == "support_v6"]
    # compared with support_v5, which served support.reply before the deploy (that week or the one before)
    hour = demo.deploy_ns - demo.deploy_ns % _HOUR_NS
    new = _per_request(demo, week.start_ns, week.end_ns, "support_v6")
    old = _per_request(demo, week.start_ns - 7 * 24 * _HOUR_NS, hour, "support_v5")
    assert (change["previous_version"], change["regression"]) == ("support_v5", True)
    assert change["first_seen_hour"] == TimeWindow(hour, hour + 1).iso()[0]
    assert change["delta_pct"] == round(100 * (new - old) / old, 1) and change["delta_pct"] > 50

    text = _report(demo)
    assert "None" not in text
    regression = next(line for line in text.splitlines() if "`support_v5` -> `support_v6`" in line)
    assert "support.reply" in regression and f"{change['delta_pct']:+.1f}%" in regression
    # money for people: no raw 9-decimal nano-USD figures, cost per request to 4 significant digits
    assert not re.search(r"\d\.\d{9}", text), re.findall(r"\S*\d\.\d{9}\S*", text)
    cents = [
        (Decimal(n) / 10**9).quantize(Decimal("0.0001")) for n in (old, new)
    ]  # both are cents: 4 decimals
    assert f"{cents[0]} -> {cents[1]} USD" in regression
    # the demo's budget alerts are about this week's spend, wherever the week they were raised in
    assert "exceeded its limit" in text and "no budget or alert events" not in text

    html = _report(demo, "--format", "html")
    assert "None" not in html and not re.search(r"\d\.\d{9}", html)
    assert 'class="regression"' in html and "<code>support_v5</code> -&gt; <code>support_v6</code>" in html
    unpriced = group(demo.rows, week.start_ns, week.end_ns, [])[()].unpriced
    assert unpriced and f"Note: {unpriced} attempts had no price" in html and f"Note: {unpriced}" in text


def test_a_week_without_the_demo_has_no_regression_and_no_alerts(demo: Demo) -> None:
    week = parse_week(demo.week)
    before = datetime.fromtimestamp((week.start_ns - 8 * 24 * _HOUR_NS) // 10**9, tz=timezone.utc).date()
    result = CliRunner().invoke(
        main, ["report", "weekly", "--db", str(demo.db), "--week", before.isoformat()]
    )
    assert result.exit_code == 0, result.output
    assert "regression" not in result.output and "None" not in result.output
    assert "no budget or alert events about this week's spend" in result.output


def _screenshot(page: Path, shot: Path) -> tuple[int, int, dict[tuple[int, int, int], int]]:
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=800,1600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    width, height, colours = pixels(shot.read_bytes())
    return width, height, dict(colours)


def test_the_demo_week_html_shows_the_regression_in_a_browser(demo: Demo, tmp_path: Path) -> None:
    # Not skipped when missing: `make test` installs Debian's chromium (scripts/install-system-deps).
    assert shutil.which("chromium"), "needs Debian's chromium: run ./scripts/install-system-deps"
    page = tmp_path / "weekly.html"
    page.write_text(_report(demo, "--format", "html"), encoding="utf-8")
    width, height, colours = _screenshot(page, tmp_path / "weekly.png")
    assert (width, height) == (800, 1600)
    assert colours.get((255, 255, 255), 0) < width * height * 0.95  # not a blank page
    assert colours.get(_BAR, 0) > 10_000  # the daily columns and the driver bars are drawn
    # the regression box: a 720 px wide band of its background, a few lines high
    assert colours.get(_REGRESSION_BG, 0) > 720 * 30, colours.get(_REGRESSION_BG, 0)

    # and the box is the regression's: the same page without one has none of that colour
    quiet = tmp_path / "quiet.html"
    week = parse_week(demo.week)
    before = datetime.fromtimestamp((week.start_ns - 8 * 24 * _HOUR_NS) // 10**9, tz=timezone.utc).date()
    result = CliRunner().invoke(
        main,
        [
            "report",
            "weekly",
            "--db",
            str(demo.db),
            "--week",
            before.isoformat(),
            "--format",
            "html",
            "-o",
            str(quiet),
        ],
    )
    assert result.exit_code == 0, result.output
    _, _, quiet_colours = _screenshot(quiet, tmp_path / "quiet.png")
    assert quiet_colours.get(_REGRESSION_BG, 0) == 0


def test_doctor_passes_the_demo_spans_as_a_back_fill(demo: Demo) -> None:
    start = min(r.start_time_ns for r in demo.rows) // 10**9 - 3600
    end = max(r.received_at_ns for r in demo.rows) // 10**9 + 3600
    result = CliRunner().invoke(
        main, ["doctor", "--db", str(demo.db), "--window", f"{start}..{end}", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    clock = checks["clock"]
    billable = [r for r in demo.rows if r.billable]
    assert clock["status"] == "ok" and clock["passed"] == clock["applicable"] == len(billable)
    # sent two days late within seconds: the late ones are reported as back-filled, not skewed
    late = sum(r.received_at_ns - (r.end_time_ns or r.start_time_ns) > 15 * 60 * 10**9 for r in billable)
    assert late > len(billable) // 2 and clock["details"]["backfilled_attempts"] == late
    assert clock["details"]["services"] == []
