"""Render an :func:`~spanmeter.analysis.investigate.investigate` report for people and scripts.

``table`` for a terminal, ``json`` (the report as is, the same document the API returns),
``csv`` (one line per driver and dimension, every effect a column) and ``triage``: the
cost-spike triage note in markdown, filled from the report, ready to paste into an
incident channel.

The table lists, per dimension, the drivers in the direction of the total (the largest
rises first when spend rose) and then, apart, the largest moves against it (the biggest
drops during a rise), each up to the report's ``--limit``. Why both: an on-call engineer
reading a spike needs what grew, but also what shrank at the same time. A deploy moves
traffic from the old prompt version to the new one, a re-route moves it from one model
to another, and seeing only the rise (which then holds more than 100% of the delta)
hides that half of the story; ranking by absolute delta instead would mix the two and
put a drop where the reader looks for the cause. Groups that did not move are counted,
not listed. When the baseline has another length than the window, every line says the
comparison is per hour and shows the baseline scaled to the window's length next to
what it measured.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from ..money import money_text, nano_usd, usd
from .documents import dump

__all__ = ["INVESTIGATE_FORMATS", "render_investigate", "render_triage"]

INVESTIGATE_FORMATS: Final = ("table", "json", "csv", "triage")
_EFFECTS: Final = ("volume", "retry", "efficiency", "price")


def _money(nano: int) -> str:
    """Table columns keep one precision (4 decimals) so that they line up."""
    return f"{Decimal(usd(nano) or 0):+.4f}"


def render_investigate(report: Mapping[str, Any], fmt: str, *, limit: int | None = None) -> str:
    """The report as ``table``, ``json``, ``csv`` or ``triage`` (markdown).

    ``limit`` caps the table's rows per dimension and direction (None: every driver the
    report holds, which :func:`~spanmeter.analysis.investigate.investigate` already cut to
    its ``limit``).

    Raises:
        ValueError: An unknown format.
    """
    if fmt == "json":
        return dump(report, indent=2) + "\n"
    if fmt == "csv":
        return _csv(report)
    if fmt == "triage":
        return render_triage(report)
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(INVESTIGATE_FORMATS)}")
    return _table(report, limit)


def _csv(report: Mapping[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "dimension",
            "value",
            "baseline_cost_usd",
            "current_cost_usd",
            "delta_usd",
            "share",
            *(f"{name}_effect_usd" for name in _EFFECTS),
            "baseline_logical_requests",
            "current_logical_requests",
            "baseline_attempts",
            "current_attempts",
        ]
    )
    for dimension in report["dimensions"]:
        drivers = dimension.get("drivers", [])
        listed = {d["value"] for d in drivers}
        offsetting = [d for d in dimension.get("offsetting_drivers", []) if d["value"] not in listed]
        for driver in [*drivers, *offsetting]:
            effects = driver["effects_nano_usd"]
            writer.writerow(
                [
                    dimension["dimension"],
                    driver["value"] or "",
                    usd(driver["baseline"]["cost_nano_usd"]),
                    usd(driver["current"]["cost_nano_usd"]),
                    driver["delta_usd"],
                    driver["share"],
                    *(usd(effects[name]) for name in _EFFECTS),
                    driver["baseline"]["logical_requests"],
                    driver["current"]["logical_requests"],
                    driver["baseline"]["attempts"],
                    driver["current"]["attempts"],
                ]
            )
    return buffer.getvalue()


def _scaled(report: Mapping[str, Any]) -> bool:
    return report.get("comparison", {}).get("basis") == "per_hour"


def _cost_line(report: Mapping[str, Any]) -> str:
    """Cost before and after, the delta and its percent; per hour when the lengths differ."""
    totals = report["totals"]
    base, current = totals["baseline"], totals["current"]
    pct = totals["delta_pct"]
    delta = f"delta {money_text(totals['delta_nano_usd'], signed=True)} USD" + (
        f" ({pct:+.1f}%)" if pct is not None else ""
    )
    if not _scaled(report):
        return f"{money_text(base['cost_nano_usd'])} -> {money_text(current['cost_nano_usd'])} USD  {delta}"
    return (
        f"{money_text(totals['baseline_scaled_cost_nano_usd'])} -> {money_text(current['cost_nano_usd'])} USD"
        f"  {delta}  ({_per_hour_text(report)})"
    )


def _per_hour_text(report: Mapping[str, Any]) -> str:
    """What the baseline measured, how it was scaled, and the cost per hour of both."""
    comparison, totals = report["comparison"], report["totals"]
    per_hour = comparison["cost_per_hour_usd"]
    return (
        f"baseline {money_text(totals['baseline']['cost_nano_usd'])} USD over {comparison['baseline_hours']:g} h"
        f" x {comparison['baseline_scale']} = {money_text(totals['baseline_scaled_cost_nano_usd'])} USD"
        f" at the window's {comparison['window_hours']:g} h; cost per hour {_usd_text(per_hour['baseline'])}"
        f" -> {_usd_text(per_hour['current'])} USD"
    )


def _usd_text(text: str | None) -> str:
    return money_text(nano_usd(text))


def _driver_row(driver: Mapping[str, Any]) -> str:
    share = driver["share"]
    value = (driver["value"] or "(none)")[:29]
    effects = driver["effects_nano_usd"]
    return (
        f"  {value:<30}{_money(driver['delta_nano_usd']):>12}"
        f"{(f'{share:.1%}' if share is not None else '-'):>8}"
        + "".join(f"{_money(effects[n]):>12}" for n in _EFFECTS)
    )


def _dimension_rows(dimension: Mapping[str, Any], falling: bool, limit: int | None) -> list[str]:
    """The drivers moving with the total, then those moving against it, ``limit`` each."""
    sign = -1 if falling else 1
    with_total = [d for d in dimension["drivers"] if sign * d["delta_nano_usd"] > 0][:limit]
    against = [d for d in dimension.get("offsetting_drivers", []) if sign * d["delta_nano_usd"] < 0][:limit]
    moves = dimension.get("moves")
    counts = (
        f": {moves['up']} up, {moves['down']} down, {moves['unchanged']} unchanged"
        if moves is not None
        else ""
    )
    lines = [f"{dimension['dimension']} ({dimension['groups']} values{counts})"]
    lines.append(f"  {'value':<30}{'delta USD':>12}{'share':>8}" + "".join(f"{n:>12}" for n in _EFFECTS))
    lines.append(f"  {'down' if falling else 'up'}, largest first:")
    lines += [_driver_row(d) for d in with_total] or ["  (none)"]
    if against:
        lines.append(f"  {'up' if falling else 'down'} (against the total), largest first:")
        lines += [_driver_row(d) for d in against]
    return lines


def _table(report: Mapping[str, Any], limit: int | None) -> str:
    totals = report["totals"]
    base, current = totals["baseline"], totals["current"]
    window, baseline = report["window"], report["baseline"]
    scaled = _scaled(report)
    lines = [
        f"investigate {window['from']} .. {window['to']}  vs baseline {baseline['from']} .. {baseline['to']}",
        f"  data_mode={report['data_mode'] or 'all'} environment={report['environment'] or 'all'}"
        + (
            f" where {', '.join(f'{k}={v}' for k, v in report['filters'].items())}"
            if report["filters"]
            else ""
        ),
    ]
    if scaled:
        lines.append(f"  compared per hour: {report['comparison']['note']}")
    lines += [
        "",
        f"cost      {_cost_line(report)}",
        (
            f"per hour  {base['requests_per_hour']} -> {current['requests_per_hour']} logical requests,"
            f" attempts per request {base['attempts_per_request']} -> {current['attempts_per_request']}"
            if scaled
            else f"requests  {base['logical_requests']} -> {current['logical_requests']} logical,"
            f" {base['attempts']} -> {current['attempts']} attempts"
        ),
        "effects   "
        + "  ".join(f"{n} {_money(totals['effects_nano_usd'][n])}" for n in _EFFECTS)
        + "  (within endpoints"
        + (", per hour over the window's length)" if scaled else ")"),
        "",
    ]
    classification = report["classification"]
    driver = classification["driver"]
    lines.append(f"classification: {classification['type']} - {classification['label']}")
    if driver:
        lines.append(f"  driver: {driver['dimension']}={driver['value']}")
    lines += [f"  - {line}" for line in classification["evidence"]]
    lines.append(f"  contain: {classification['containment']}")
    lines.append(f"  next:    {classification['next_step']['text']}")
    if classification["next_step"]["cli"]:
        lines.append(f"           {classification['next_step']['cli']}")
    falling = totals["delta_nano_usd"] < 0
    for dimension in report["dimensions"]:
        lines.append("")
        if not dimension["available"]:
            lines.append(f"{dimension['dimension']}: {dimension['note']}")
            continue
        lines += _dimension_rows(dimension, falling, limit)
    return "\n".join(lines) + "\n"


def _per_request(summary: Mapping[str, Any]) -> str:
    """Cost per request for people (the summary's exact figure, rounded for reading)."""
    logical = summary["logical_requests"]
    return money_text(summary["cost_nano_usd"] // logical if logical else None)


def _first(report: Mapping[str, Any], dimension: str) -> str:
    for entry in report["dimensions"]:
        if entry["dimension"] == dimension and entry.get("drivers"):
            top = entry["drivers"][0]
            share = f", {top['share']:.0%} of the delta" if top["share"] is not None else ""
            return f"{top['value'] or '(none)'} ({money_text(top['delta_nano_usd'], signed=True)} USD{share})"
    return "n/a"


def _drops(report: Mapping[str, Any]) -> list[str]:
    """One line with the largest move against the total in each dimension where it offsets
    at least a tenth of the delta (smaller ones are noise in a triage note; the table lists
    them), or nothing."""
    delta = report["totals"]["delta_nano_usd"]
    found: list[str] = []
    for entry in report["dimensions"]:
        against: Sequence[Mapping[str, Any]] = entry.get("offsetting_drivers") or []
        if against and delta and abs(against[0]["delta_nano_usd"]) * 10 >= abs(delta):
            top = against[0]
            found.append(
                f"{entry['dimension']} {top['value'] or '(none)'}"
                f" ({money_text(top['delta_nano_usd'], signed=True)} USD)"
            )
    if not found:
        return []
    label = "largest rises (against the drop)" if delta < 0 else "largest drops (against the rise)"
    return [f"{label}: {'; '.join(found)}"]


def _version_correlation(report: Mapping[str, Any]) -> str:
    """The triage note's prompt-version line: the deploy the classification found, else the
    versions on the top endpoint, else any version new in the window; a version change is
    the first thing an on-call engineer rules in or out."""
    facts = report["classification"]["facts"]
    deploy = facts.get("deploy")
    versions = [d for d in report["dimensions"] if d["dimension"] == "prompt_version" and d.get("drivers")]
    new_versions = [
        d["value"]
        for entry in versions
        for d in entry["drivers"]
        if d["value"] and d["baseline"]["logical_requests"] == 0 and d["current"]["logical_requests"] > 0
    ]
    on_endpoint = facts.get("prompt_versions")
    if deploy:
        tokens: Mapping[str, Any] = deploy.get("tokens_per_call") or {}
        return (
            f"{deploy['version']} first seen {deploy['first_seen']} (previous {deploy['previous']}):"
            f" tokens per call {tokens.get('previous')} -> {tokens.get('new')}"
        )
    if on_endpoint:
        change = facts["endpoint"]["tokens_per_call_change_pct"]["total"]
        found = ", ".join(f"{n['version']} (first seen {n['first_seen']})" for n in on_endpoint["new"])
        return (
            f"on {on_endpoint['endpoint'] or '(untagged)'}: "
            + " -> ".join(
                ", ".join(v or "(none)" for v in on_endpoint[side]) or "-" for side in ("baseline", "current")
            )
            + (f"; new: {found}" if found else "; no new version on this endpoint")
            + f"; tokens per call there {'n/a' if change is None else f'{change:+.1f}%'}"
            + (f" (new elsewhere: {', '.join(new_versions)})" if new_versions and not found else "")
        )
    if new_versions:
        return "new in window: " + ", ".join(new_versions) + " (no token change attributed to them)"
    return "no prompt version first seen in the window"


def render_triage(report: Mapping[str, Any]) -> str:
    """The cost-spike triage note (markdown), filled from the report."""
    totals = report["totals"]
    base, current = totals["baseline"], totals["current"]
    classification = report["classification"]
    hypothesis = classification["hypothesis"]
    picks = " / ".join(
        f"**{h}**" if h == hypothesis else h for h in ("volume", "efficiency", "routing", "retries", "abuse")
    )
    correlation = _version_correlation(report)
    tenant, user = _first(report, "tenant_id"), _first(report, "user_id")

    def pair(name: str) -> str:
        return f"{base[name]} -> {current[name]}"

    filters = ", ".join(f"{k}={v}" for k, v in report["filters"].items()) or "none"
    lines = [
        "# Cost spike triage",
        "",
        f"Start time (UTC): {report['window']['from']} (window to {report['window']['to']})",
        f"Baseline window: {report['baseline']['from']} .. {report['baseline']['to']} ({report['baseline']['spec']})",
        f"Scope: data_mode={report['data_mode'] or 'all'}, environment={report['environment'] or 'all'},"
        f" filters: {filters}",
        f"Cost: {money_text(totals.get('baseline_scaled_cost_nano_usd', base['cost_nano_usd']))}"
        f" -> {money_text(current['cost_nano_usd'])} USD"
        f" (delta {money_text(totals['delta_nano_usd'], signed=True)} USD"
        + (f", {totals['delta_pct']:+.1f}%)" if totals["delta_pct"] is not None else ")"),
        *([f"Compared per hour: {_per_hour_text(report)}"] if _scaled(report) else []),
        "",
        f"Hypothesis (pick one): {picks}",
        f"Classification: {classification['type']} ({classification['label']})",
        "",
        "Evidence:",
        f"- requests/hour: {pair('requests_per_hour')}",
        f"- tokens/request (in/out, per call): {base['input_tokens_per_call']}/{base['output_tokens_per_call']}"
        f" -> {current['input_tokens_per_call']}/{current['output_tokens_per_call']}",
        f"- cost/request: {_per_request(base)} -> {_per_request(current)} USD"
        f" (attempts/request {pair('attempts_per_request')})",
        f"- top endpoint_tag: {_first(report, 'endpoint_tag')}",
        f"- top tenant/user: {tenant} / {user}",
        f"- prompt_version correlation: {correlation}",
        *(f"- {drop}" for drop in _drops(report)),
        *(f"- {line}" for line in classification["evidence"]),
        "",
        "Containment taken:",
        f"- (suggested) {classification['containment']}",
        "- (taken) ",
        "",
        "Next verification step:",
        f"- {classification['next_step']['text']}",
    ]
    if classification["next_step"]["cli"]:
        lines.append(f"  `{classification['next_step']['cli']}`")
    lines += ["", "Durable control to add:", f"- {classification['durable_control']}"]
    return "\n".join(lines) + "\n"
