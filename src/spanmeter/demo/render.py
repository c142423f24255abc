"""The demo's output: short sections an operator reads top to bottom, and the commands to run next.

Every figure comes from the documents in :class:`~spanmeter.demo.session.DemoResult` (the
API's shapes); the ranking is printed by :func:`spanmeter.analysis.render_top`, exactly as
``spanmeter top`` prints it. Commands are quoted for a POSIX shell so they can be copied.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..analysis import TimeWindow, render_top
from ..money import money_text, nano_usd
from .scenario import INCIDENT_ENDPOINT, NEW_VERSION, PREVIOUS_VERSION, DemoScenario
from .session import DemoResult

__all__ = ["keep_running_command", "live_urls", "next_commands", "render_intro", "render_result"]

_RULE: Final = "-" * 78
_OK_STATES_SHOWN: Final = 3
_ALERTS_SHOWN: Final = 10


def _usd(text: str | None) -> str:
    return money_text(nano_usd(text))


def _minute(iso: str) -> str:
    """``2026-03-04T05:00:00+00:00`` -> ``2026-03-04 05:00Z``."""
    return iso[:16].replace("T", " ") + "Z"


def _heading(number: int, title: str) -> str:
    return f"\n{number}. {title}\n{_RULE}\n"


def render_intro(scenario: DemoScenario, *, db: str, budgets_file: str, http_url: str, grpc: str) -> str:
    """What runs and what is about to happen."""
    start, end = TimeWindow(scenario.start_ns, scenario.end_ns).iso()
    deploy = TimeWindow(scenario.deploy_ns, scenario.end_ns).iso()[0]
    return (
        "spanmeter demo: two days of an app's GenAI traffic, sent in seconds\n"
        f"  receiver  OTLP/HTTP + API + /metrics {http_url}, OTLP/gRPC {grpc}\n"
        f"  store     {db}\n"
        f"  budgets   {budgets_file}\n"
        "  app       5 endpoints, 40 tenants, 240 users; OTel SDK -> spanmeter.configure() -> OTLP/HTTP\n"
        f"  traffic   {_minute(start)} .. {_minute(end)}, each span at its own time\n"
        f"  incident  {_minute(deploy)}: {INCIDENT_ENDPOINT} ships prompt {NEW_VERSION}"
        f" (was {PREVIOUS_VERSION}), twice the tokens per call\n"
    )


def render_result(result: DemoResult) -> str:
    """The four sections: where the money went, budgets, alerts, the investigation."""
    parts = [
        f"sent {result.spans_sent:,} spans in {result.traffic_seconds:.1f} s;"
        f" stored {result.spans_stored:,}; alerts delivered to the demo webhook: {result.webhook_received}\n",
        _heading(1, "Where the money went: the last 24 hours by endpoint"),
        render_top(result.top, "table"),
        _heading(2, "Budget posture (now)"),
        _budgets(result.budgets),
        _heading(3, "Alerts inbox"),
        _alerts(result.alerts),
        _heading(4, "Investigation: the last 24 hours against the 24 before"),
        _investigation(result.investigation),
    ]
    return "".join(part if part.endswith("\n") else part + "\n" for part in parts)


def _budgets(document: Mapping[str, Any]) -> str:
    states: list[dict[str, Any]] = sorted(document["states"], key=lambda s: (-s["ratio"], s["budget"]))
    shown = [s for s in states if s["state"] != "ok"] + [s for s in states if s["state"] == "ok"][
        :_OK_STATES_SHOWN
    ]
    header = f"{'budget':<22}{'scope':<30}{'spend USD':>11}{'limit USD':>11}{'used':>7}  state"
    lines = [header, "-" * len(header)]
    for item in shown:
        scope = ", ".join(f"{d}={v}" for d, v in sorted(item["scope"].items()) if d != "data_mode")
        lines.append(
            f"{item['budget'][:21]:<22}{scope[:29]:<30}{_usd(item['spend_usd']):>11}{_usd(item['limit_usd']):>11}"
            f"{item['ratio']:>7.0%}  {item['state']}"
        )
    hidden = len(states) - len(shown)
    if hidden:
        lines.append(f"... and {hidden} more states, all ok")
    counts = document["counts"]
    window = states[0]["window"] if states else None
    lines.append(
        f"{counts['exceeded']} exceeded, {counts['warning']} warning, {counts['ok']} ok"
        + (f"  (window {_minute(window['from'])} .. {_minute(window['to'])}, rolling 24h)" if window else "")
    )
    return "\n".join(lines)


def _alerts(alerts: Sequence[Mapping[str, Any]]) -> str:
    header = f"{'id':>4}  {'state':<9}{'kind':<34}title"
    lines = [header, "-" * 78]
    for alert in alerts[:_ALERTS_SHOWN]:
        lines.append(f"{alert['id']:>4}  {alert['state']:<9}{alert['kind'][:33]:<34}{alert['title']}")
    if len(alerts) > _ALERTS_SHOWN:
        lines.append(f"... and {len(alerts) - _ALERTS_SHOWN} more (spanmeter alerts list)")
    if not alerts:
        lines.append("no alerts")
    exceeded = next((a for a in alerts if a["kind"] == "budget.exceeded"), None)
    if exceeded is not None:
        lines += [
            "",
            f"alert {exceeded['id']} ({exceeded['kind']}, {exceeded['severity']}): {exceeded['title']}",
        ]
        context: Mapping[str, Any] = exceeded.get("context") or {}
        drivers: Mapping[str, Mapping[str, Any]] = context.get("drivers", {})
        for dimension, info in drivers.items():
            lines.append(
                f"  driver {dimension}: {info['value']} ${_usd(info['cost_usd'])}"
                f" ({info['share']:.0%} of the window), baseline ${_usd(info['baseline_cost_usd'])}"
            )
        for delivery in exceeded.get("deliveries", []):
            lines.append(
                f"  delivered to {delivery['channel']}: {delivery['state']} after {delivery['attempts']} attempt(s)"
            )
    return "\n".join(lines)


def _investigation(report: Mapping[str, Any]) -> str:
    totals = report["totals"]
    base, current = totals["baseline"], totals["current"]
    classification = report["classification"]
    driver: Mapping[str, Any] = classification.get("driver") or {}
    versions = next((d for d in report["dimensions"] if d["dimension"] == "prompt_version"), None)
    top_version = versions["drivers"][0] if versions and versions.get("drivers") else None
    pct = totals["delta_pct"]
    lines = [
        f"window {_minute(report['window']['from'])} .. {_minute(report['window']['to'])}"
        f" vs baseline {_minute(report['baseline']['from'])} .. {_minute(report['baseline']['to'])}",
        f"cost {_usd(base['cost_usd'])} -> {_usd(current['cost_usd'])} USD"
        f" (delta {_usd(totals['delta_usd'])} USD" + (f", {pct:+.1f}%)" if pct is not None else ")"),
        f"classification: {classification['type']} ({classification['label']})",
    ]
    if driver:
        share = driver.get("share")
        lines.append(
            f"top driver: {driver['dimension']}={driver['value']}, delta {_usd(driver.get('delta_usd'))} USD"
            + (f" ({share:.0%} of the delta)" if share is not None else "")
        )
    deploy = classification.get("facts", {}).get("deploy")
    if deploy:
        lines.append(
            f"deploy: prompt_version={deploy['version']} (previous {deploy['previous']}),"
            f" first seen {deploy['first_seen']}"
        )
    if top_version is not None:
        lines.append(
            f"top prompt version: {top_version['value']}, delta {_usd(top_version['delta_usd'])} USD"
        )
    lines += [f"  - {line}" for line in classification.get("evidence", [])]
    lines.append(f"contain:   {classification['containment']}")
    lines.append(f"guardrail: {classification['durable_control']}")
    return "\n".join(lines)


def program() -> list[str]:
    """How the user's shell can run spanmeter again, so the printed commands paste as they are.

    ``spanmeter`` when it is on ``PATH`` (an activated virtualenv, pipx); otherwise the
    console script next to this interpreter (``make run`` calls ``.venv/bin/spanmeter``
    without activating the virtualenv), relative to the current directory when it lies
    below it; failing that, ``python -m spanmeter`` with this interpreter.
    """
    if shutil.which("spanmeter"):
        return ["spanmeter"]
    script = os.path.join(os.path.dirname(sys.executable), "spanmeter")
    if os.path.exists(script):
        relative = os.path.relpath(script)
        return [relative if not relative.startswith("..") else script]
    return [sys.executable, "-m", "spanmeter"]


def _command(*words: str) -> str:
    if words and words[0] == "spanmeter":
        words = (*program(), *words[1:])
    return " ".join(shlex.quote(word) for word in words)


def keep_running_command() -> str:
    """The demo again with the receiver left up, as the user's shell can run it."""
    return _command("spanmeter", "demo", "--keep-running")


def next_commands(result: DemoResult) -> list[str]:
    """Commands that ask the same store again, ready to paste.

    They follow the incident. ``doctor`` is not among them: it checks tracking, which the
    demo sets up right (it passes the demo's spans, sent two days late on purpose, as a
    back-fill rather than a skewed clock: see :mod:`spanmeter.analysis.clock_skew`).
    """
    db = str(result.db)
    start, end = result.scenario.incident_window.iso()
    window = f"{start}..{end}"
    exceeded = next((a for a in result.alerts if a["kind"] == "budget.exceeded"), None)
    commands = [
        _command("spanmeter", "top", "--db", db, "--by", "prompt_version", "--from", start, "--to", end),
        _command("spanmeter", "investigate", "--db", db, "--window", window),
        _command("spanmeter", "investigate", "--db", db, "--window", window, "--format", "triage"),
        _command(
            "spanmeter",
            "compare",
            "prompt-versions",
            "--db",
            db,
            "--endpoint",
            INCIDENT_ENDPOINT,
            "--window",
            window,
        ),
        _command("spanmeter", "alerts", "list", "--db", db),
    ]
    if exceeded is not None:
        commands.append(_command("spanmeter", "alerts", "show", str(exceeded["id"]), "--db", db))
    commands += [
        _command("spanmeter", "budgets", "status", "--db", db, "--file", str(result.budgets_file)),
        _command("spanmeter", "economics", "--db", db, "--window", window),
    ]
    return commands


def live_urls(result: DemoResult) -> list[tuple[str, str]]:
    """(what, URL) of a running demo receiver, for Prometheus, Grafana and curl."""
    base = result.http_url
    start, end = result.scenario.incident_window.iso()
    return [
        ("OTLP/HTTP (point an SDK or Collector here)", f"{base}  (traces: {base}/v1/traces)"),
        ("OTLP/gRPC", result.grpc_endpoint),
        ("Prometheus scrape target", f"{base}/metrics"),
        ("top by endpoint", f"{base}/api/v1/top?by=endpoint_tag&since=48h"),
        ("budget status", f"{base}/api/v1/budgets/status"),
        ("alerts inbox", f"{base}/api/v1/alerts"),
        ("investigation", f"{base}/api/v1/investigate?window={start}..{end}".replace("+", "%2B")),
        ("health", f"{base}/healthz"),
    ]
