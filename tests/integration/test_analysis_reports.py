"""report weekly (markdown, HTML with charts, a real browser screenshot) and the streaming
exports, checked against the API and the raw rows."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from spanmeter.analysis.common import parse_range
from spanmeter.analysis.report_weekly import parse_week
from spanmeter.api import make_api
from spanmeter.cli import main
from spanmeter.store import MEASURES, SQLiteStore
from spanmeter.synthetic import PromptDeploy, SyntheticConfig, SyntheticDataset, TenantBurst, generate, to_ns
from support.analysis_oracle import group
from support.png import pixels

MONDAY = datetime(2026, 3, 2, tzinfo=timezone.utc)
CONFIG = SyntheticConfig(
    start=MONDAY,
    days=14,
    requests_per_hour=25,
    incidents=(
        PromptDeploy("support.reply", "support_v6", at=datetime(2026, 3, 11, 9, tzinfo=timezone.utc)),
        TenantBurst(
            "t_0007",
            datetime(2026, 3, 12, tzinfo=timezone.utc),
            datetime(2026, 3, 13, 12, tzinfo=timezone.utc),
            60,
        ),
    ),
)
WEEK = "2026-W11"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SQLiteStore, SyntheticDataset]]:
    dataset = generate(CONFIG)
    with SQLiteStore(tmp_path_factory.mktemp("weekly") / "reports.db") as store:
        dataset.write_to(store, batch_size=2000)
        yield store, dataset


def _get(store: SQLiteStore, path: str, query: str) -> tuple[str, bytes]:
    seen: list[tuple[str, list[tuple[str, str]]]] = []
    body = b"".join(
        make_api(store)({"PATH_INFO": path, "QUERY_STRING": query}, lambda s, h: seen.append((s, h)))
    )
    assert seen[0][0] == "200 OK", body
    return dict(seen[0][1])["Content-Type"], body


def test_weekly_report_numbers_match_the_api_and_the_rows(
    built: tuple[SQLiteStore, SyntheticDataset],
) -> None:
    store, dataset = built
    _, body = _get(store, "/api/v1/reports/weekly", f"week={WEEK}&workspace=reports")
    document = json.loads(body)
    week = parse_week(WEEK)
    assert week == parse_range("2026-03-09..2026-03-16")
    # daily spend and the top drivers come from the rows
    for day in document["daily"]:
        start = to_ns(datetime.fromisoformat(day["date"]).replace(tzinfo=timezone.utc))
        (acc,) = group(dataset.rows, start, start + 86_400 * 10**9, []).values()
        assert day["cost_nano_usd"] == acc.cost and day["logical_requests"] == acc.logical
    endpoints = group(dataset.rows, week.start_ns, week.end_ns, ["endpoint_tag"])
    top = document["top_endpoints"][0]
    assert top["cost_nano_usd"] == max(acc.cost for acc in endpoints.values())
    assert document["top_tenants"][0]["value"] == "t_0007"
    (change,) = document["prompt_version_changes"]
    assert (change["prompt_version"], change["previous_version"]) == ("support_v6", "support_v5")
    assert change["delta_pct"] > 50
    assert document["decisions"]["classification"] in {"abuse", "deploy"}
    # markdown and HTML render the same document, from the CLI and from the API
    result = CliRunner().invoke(
        main,
        [
            "report",
            "weekly",
            "--db",
            str(store.path),
            "--week",
            WEEK,
            "--workspace",
            "reports",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == document
    markdown = CliRunner().invoke(
        main, ["report", "weekly", "--db", str(store.path), "--week", WEEK, "--workspace", "reports"]
    )
    content_type, api_markdown = _get(
        store, "/api/v1/reports/weekly", f"week={WEEK}&workspace=reports&format=markdown"
    )
    assert content_type.startswith("text/markdown") and api_markdown.decode() == markdown.output
    text = markdown.output
    for needle in (
        "# Weekly AI spend review",
        "Top drivers (endpointTag):",
        "Top drivers (tenant/user):",
        "support_v6",
        "One durable control to add this week:",
        f"{change['delta_pct']:+.1f}%",
    ):
        assert needle in text, needle
    for day in document["daily"]:
        assert f"- {day['date']}: " in text
    _, html = _get(store, "/api/v1/reports/weekly", f"week={WEEK}&workspace=reports&format=html")
    assert (
        html.count(b"<svg") == 3
        and b"<script" not in html
        and b"http://" not in html.replace(b'xmlns="http://www.w3.org/2000/svg"', b"")
    )


def test_weekly_html_shows_its_charts_in_a_browser(
    built: tuple[SQLiteStore, SyntheticDataset], tmp_path: Path
) -> None:
    # Not skipped when missing: `make test` installs Debian's chromium (scripts/install-system-deps).
    assert shutil.which("chromium"), "needs Debian's chromium: run ./scripts/install-system-deps"
    store, _ = built
    page, shot = tmp_path / "weekly.html", tmp_path / "weekly.png"
    result = CliRunner().invoke(
        main,
        ["report", "weekly", "--db", str(store.path), "--week", WEEK, "--format", "html", "-o", str(page)],
    )
    assert result.exit_code == 0, result.output
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=800,1400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    width, height, colours = pixels(shot.read_bytes())
    assert (width, height) == (800, 1400)
    bar = colours[(0x3B, 0x6F, 0xD8)]
    # seven daily columns and two sets of horizontal bars: tens of thousands of bar pixels
    assert bar > 20_000, bar
    assert colours[(255, 255, 255)] > width * height // 3  # and a readable page around them


def test_export_requests_streams_every_row(
    built: tuple[SQLiteStore, SyntheticDataset], tmp_path: Path
) -> None:
    store, dataset = built
    window = "2026-03-10T00:00..2026-03-11T00:00"
    span = parse_range(window)
    expected = [r for r in dataset.rows if span.start_ns <= r.event_time_ns < span.end_ns]
    out = tmp_path / "requests.csv"
    result = CliRunner().invoke(
        main, ["export", "requests", "--db", str(store.path), "--window", window, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "exporting" not in result.output  # no progress bar off a terminal
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == len(expected)
    assert [r["span_id"] for r in rows] == [
        r.span_id.hex() for r in sorted(expected, key=lambda r: r.start_time_ns)
    ]
    assert sum(int(r["cost_nano_usd"] or 0) for r in rows) == sum(r.cost_nano_usd or 0 for r in expected)
    content_type, body = _get(store, "/api/v1/export/requests", f"window={window}&format=csv")
    assert content_type.startswith("text/csv") and body.decode() == out.read_text()
    as_json = json.loads(_get(store, "/api/v1/export/requests", f"window={window}&format=json")[1])
    assert len(as_json) == len(expected) and as_json[0]["span_id"] == rows[0]["span_id"]
    lines = _get(store, "/api/v1/export/requests", f"window={window}&format=ndjson")[1].decode().splitlines()
    assert len(lines) == len(expected) and json.loads(lines[-1])["span_id"] == rows[-1]["span_id"]


def test_export_rollups_add_up_to_the_rows(built: tuple[SQLiteStore, SyntheticDataset]) -> None:
    store, dataset = built
    window = "2026-03-09..2026-03-16"
    span = parse_range(window)
    result = CliRunner().invoke(
        main, ["export", "rollups", "--db", str(store.path), "--window", window, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    groups: list[dict[str, Any]] = json.loads(result.output)
    (acc,) = group(dataset.rows, span.start_ns, span.end_ns, []).values()
    assert sum(g["cost_nano_usd"] for g in groups) == acc.cost
    assert sum(g["logical_requests"] for g in groups) == acc.logical
    assert set(MEASURES) <= set(groups[0]) and {"hour", "tenant_id", "user_id", "endpoint_tag"} <= set(
        groups[0]
    )
    minute = CliRunner().invoke(
        main,
        [
            "export",
            "rollups",
            "--db",
            str(store.path),
            "--window",
            window,
            "--granularity",
            "minute",
            "--format",
            "csv",
        ],
    )
    rows = list(csv.DictReader(io.StringIO(minute.output)))
    assert sum(int(r["attempts"]) for r in rows) == acc.attempts and "prompt_version" in rows[0]


def run_on_a_terminal(args: list[str], timeout_s: float = 120.0) -> bytes:
    """Run ``args`` with a pseudo-terminal as stdin, stdout and stderr; returns what it showed.

    The standard library's ``pty`` rather than ``script(1)``: no system binary to depend on,
    and the same on every POSIX system.
    """
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(args, stdin=terminal, stdout=terminal, stderr=terminal, close_fds=True)
    finally:
        os.close(terminal)  # the child holds its copies; the end of output is then EOF (EIO)
    shown = bytearray()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every terminal copy is closed, the child is done
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(max(1.0, deadline - time.monotonic())) == 0, bytes(shown).decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    return bytes(shown)


def test_export_progress_bar_on_a_terminal(
    built: tuple[SQLiteStore, SyntheticDataset], tmp_path: Path
) -> None:
    store, _ = built
    out = tmp_path / "all.csv"
    args = [sys.executable, "-m", "spanmeter", "export", "requests", "--db", str(store.path)]
    shown = run_on_a_terminal([*args, "--window", "2026-03-02..2026-03-16", "-o", str(out)])
    assert b"exporting requests" in shown
    assert (
        out.read_text().count("\n")
        == store.count_requests(to_ns(MONDAY), to_ns(MONDAY) + 14 * 86_400 * 10**9) + 1
    )
