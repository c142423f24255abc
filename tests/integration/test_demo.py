"""``spanmeter demo`` run as a user runs it: a subprocess, its output checked against its store.

The demo's numbers are recomputed here from the raw rows of the SQLite store it leaves
behind (through the store API, not through the rollups or the analysis functions the demo
printed from), so a demo that printed the wrong figures, lost spans or put the incident in
the wrong window fails.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import IO

from spanmeter.analysis import parse_instant
from spanmeter.store import SpanRow, SQLiteStore

_NANO = Decimal(1_000_000_000)
_DEMO = [sys.executable, "-m", "spanmeter", "demo"]


def _usd(nano: int, places: str) -> Decimal:
    return (Decimal(nano) / _NANO).quantize(Decimal(places))


def _minute_ns(text: str) -> int:
    """``2026-03-04 05:00Z`` (the demo's short form) -> Unix ns."""
    return parse_instant(text.replace(" ", "T").replace("Z", ":00+00:00"))


def _rows(db: Path, start_ns: int, end_ns: int) -> list[SpanRow]:
    store = SQLiteStore(str(db))
    try:
        return [row for row in store.iter_requests(start_ns, end_ns, data_mode="real") if row.billable]
    finally:
        store.close()


def test_demo_shows_the_incident_and_its_numbers_match_the_store(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    started = time.monotonic()
    done = subprocess.run([*_DEMO, "--db", str(db)], capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.monotonic() - started
    out = done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert elapsed < 60, f"the demo took {elapsed:.1f} s"
    assert "Traceback" not in done.stderr, done.stderr
    assert "app: 48/48 hours of traffic sent" in out  # plain progress lines: stdout is not a TTY

    # everything sent was stored, and the store agrees
    counts = re.search(r"sent ([\d,]+) spans .*stored ([\d,]+)", out)
    assert counts is not None
    sent, stored = (int(n.replace(",", "")) for n in counts.groups())
    assert sent == stored > 10_000
    store = SQLiteStore(str(db))
    try:
        assert store.count_requests() == sent
        exceeded_alerts = store.budget_store.list_alerts(kind="budget.exceeded")
        regressions = store.budget_store.list_alerts(kind="rule.prompt_version_regression")
    finally:
        store.close()

    # 1. top by endpoint over the incident window: every printed cost and attempt count
    window = re.search(r"top endpoint_tag from (\S+) to (\S+)", out)
    assert window is not None
    start_ns, end_ns = parse_instant(window[1]), parse_instant(window[2])
    rows = _rows(db, start_ns, end_ns)
    cost: dict[str, int] = defaultdict(int)
    attempts: dict[str, int] = defaultdict(int)
    for row in rows:
        cost[row.endpoint_tag or ""] += row.cost_nano_usd or 0
        attempts[row.endpoint_tag or ""] += 1
    printed = {
        m[1]: (Decimal(m[2]), int(m[4]))
        for m in re.finditer(r"^(\S+)\s+(\d+\.\d{6})\s+([\d.]+%)\s+\d+\s+(\d+)\s", out, re.MULTILINE)
    }
    assert set(printed) == set(cost)
    for endpoint, (printed_cost, printed_attempts) in printed.items():
        assert printed_cost == _usd(cost[endpoint], "0.000001"), endpoint
        assert printed_attempts == attempts[endpoint], endpoint
    assert max(cost, key=cost.__getitem__) == "support.reply"
    (total,) = re.findall(r"^total\s+(\d+\.\d{6})", out, re.MULTILINE)
    assert Decimal(total) == _usd(sum(cost.values()), "0.000001")

    # 2. the exceeded budget: its spend is the endpoint's cost in the printed rolling window
    budget = re.search(
        r"^support-reply-daily\s+endpoint_tag=support\.reply\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+)%\s+exceeded$",
        out,
        re.MULTILINE,
    )
    assert budget is not None, out
    rolling = re.search(r"\(window (\S+ \S+) \.\. (\S+ \S+), rolling 24h\)", out)
    assert rolling is not None
    in_budget = _rows(db, _minute_ns(rolling[1]), _minute_ns(rolling[2]))
    spend = sum(r.cost_nano_usd or 0 for r in in_budget if r.endpoint_tag == "support.reply")
    assert Decimal(budget[1]) == _usd(spend, "0.01")
    assert Decimal(budget[2]) == Decimal("30.00") < Decimal(budget[1])

    # 3. the alert that fired is in the inbox, delivered to the demo's webhook
    assert len(exceeded_alerts) == 1 and exceeded_alerts[0].source == "support-reply-daily"
    alert_id = exceeded_alerts[0].id
    assert re.search(
        rf"^\s+{alert_id}\s+open\s+budget\.exceeded\s+Budget support-reply-daily", out, re.MULTILINE
    )
    assert f"spanmeter alerts show {alert_id} --db {db}" in out
    assert "delivered to demo-webhook: delivered" in out
    assert [a.subject for a in regressions] == ["endpoint_tag=support.reply&prompt_version=support_v6"]

    # 4. the investigation names the deploy: the endpoint and the new prompt version
    assert "classification: deploy" in out
    assert re.search(r"^top driver: endpoint_tag=support\.reply,", out, re.MULTILINE)
    assert "deploy: prompt_version=support_v6 (previous support_v5)" in out
    assert "top prompt version: support_v6," in out
    spans = re.search(
        r"^window (\S+ \S+) \.\. (\S+ \S+) vs baseline (\S+ \S+) \.\. (\S+ \S+)$", out, re.MULTILINE
    )
    assert spans is not None
    current = sum(r.cost_nano_usd or 0 for r in _rows(db, _minute_ns(spans[1]), _minute_ns(spans[2])))
    baseline = sum(r.cost_nano_usd or 0 for r in _rows(db, _minute_ns(spans[3]), _minute_ns(spans[4])))
    assert f"cost {_usd(baseline, '0.01')} -> {_usd(current, '0.01')} USD" in out
    assert current > baseline

    # the commands it suggests work against the same store
    # (pasted as printed: the program is one the user's shell can run, on PATH or not)
    command = next(line.strip() for line in out.splitlines() if " investigate --db " in line)
    again = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 0, again.stderr
    assert "classification: deploy" in again.stdout


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def _until(lines: queue.Queue[str], pattern: str, deadline: float, seen: list[str]) -> re.Match[str]:
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_demo_keep_running_serves_until_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*_DEMO, "--db", str(tmp_path / "live.db"), "--keep-running"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 90
        base = _until(lines, r"OTLP/HTTP \+ API \+ /metrics (http://127\.0\.0\.1:\d+)", deadline, seen)[1]
        _until(lines, r"The receiver keeps running", deadline, seen)
        metrics = _until(lines, r"Prometheus scrape target:\s+(\S+)", deadline, seen)[1]

        status, body = _get(base + "/healthz")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        status, body = _get(base + "/api/v1/top?by=endpoint_tag&since=48h")
        assert status == 200
        report = json.loads(body)
        assert report["groups"][0]["endpoint_tag"] == "support.reply"
        status, body = _get(metrics)
        assert status == 200 and b"# TYPE" in body

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, "".join(seen)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(10)
        process.stdout.close()
    _until(lines, r"stopping: every acknowledged span is committed", time.monotonic() + 5, seen)
    try:
        urllib.request.urlopen(base + "/healthz", timeout=2)
    except (urllib.error.URLError, OSError):
        pass  # the port is closed: the receiver stopped
    else:
        raise AssertionError("the receiver still answers after SIGTERM")
