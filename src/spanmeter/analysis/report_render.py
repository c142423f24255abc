"""Markdown and self-contained HTML renderings of the weekly review document.

The HTML has no external resource at all (inline CSS, charts as inline SVG), so it can be
mailed, attached to a ticket or opened offline and look the same. Charts are drawn from
the document's numbers: daily spend as columns, top endpoints and tenants as bars.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from html import escape
from typing import Any, Final

from ..money import money_column, money_text, nano_usd
from .documents import dump

__all__ = ["REPORT_FORMATS", "render_html", "render_markdown", "render_report"]

REPORT_FORMATS: Final = ("markdown", "html", "json")
_BAR: Final = "#3b6fd8"
_UP: Final = "#c8553d"
_ALARM_BG: Final = "#fbe3dd"
"""Background of the regressions box (a screenshot test finds the box by it)."""
_CODE: Final = re.compile(r"`([^`]*)`")
_FONT: Final = "font-family:DejaVu Sans,Helvetica,Arial,sans-serif"


def _num(value: str | None) -> Decimal:
    return Decimal(value) if value else Decimal(0)


def _money(value: str | None) -> str:
    """A document's USD string for people (:func:`.money_text`); ``-`` for None."""
    return money_text(nano_usd(value))


def _delta(entry: Mapping[str, Any]) -> str:
    return money_text(nano_usd(entry.get("delta_usd")) or 0, signed=True)


def render_report(report: Mapping[str, Any], fmt: str) -> str:
    """``markdown``, ``html`` or ``json``."""
    if fmt == "json":
        return dump(report, indent=2) + "\n"
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report)
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(REPORT_FORMATS)}")


def _driver_lines(entries: Sequence[Mapping[str, Any]], label: str) -> list[str]:
    if not entries:
        return ["- (no traffic)"]
    return [
        f"- {label} `{e['value'] or '(none)'}`: {_money(e['cost_usd'])} USD"
        f" ({(e['share'] or 0):.0%} of spend), {_delta(e)} USD vs the week before,"
        f" {e['logical_requests']} requests"
        for e in entries
    ]


def _version_lines(report: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    changes = report["prompt_version_changes"]
    if not changes:
        return ["- none"], ["- none"]
    names = [
        f"`{c['prompt_version']}` on `{c['endpoint_tag'] or '(untagged)'}` from {_hour(c)}"
        + (
            f" (replacing `{c['previous_version']}`)"
            if c["previous_version"] is not None
            else " (the first version seen on this endpoint)"
        )
        for c in changes
    ]
    deltas: list[str] = []
    for c in changes:
        new, old = money_column(
            [nano_usd(c["cost_per_request_usd"]), nano_usd(c["previous_cost_per_request_usd"])]
        )
        if c["previous_version"] is None:
            deltas.append(f"`{c['prompt_version']}`: {new.strip()} USD/request (nothing earlier to compare)")
            continue
        pct = "n/a" if c["delta_pct"] is None else f"{c['delta_pct']:+.1f}%"
        deltas.append(
            f"`{c['prompt_version']}`: {new.strip()} USD/request vs {old.strip()} for `{c['previous_version']}`"
            f" ({pct}){': regression' if c['regression'] else ''}"
        )
    return [f"- {n}" for n in names], [f"- {d}" for d in deltas]


def _hour(change: Mapping[str, Any]) -> str:
    """``2026-03-11 09:00 UTC`` from the change's ISO hour."""
    return change["first_seen_hour"][:16].replace("T", " ") + " UTC"


def _regression_lines(report: Mapping[str, Any]) -> list[str]:
    """One line per prompt version that made its endpoint dearer per request (the week's
    deploy incidents), named as ``old -> new``."""
    lines: list[str] = []
    for c in report["prompt_version_changes"]:
        if not c["regression"]:
            continue
        old, new = money_column(
            [nano_usd(c["previous_cost_per_request_usd"]), nano_usd(c["cost_per_request_usd"])]
        )
        lines.append(
            f"- `{c['previous_version']}` -> `{c['prompt_version']}` on `{c['endpoint_tag'] or '(untagged)'}`"
            f" (from {_hour(c)}): cost/request {old.strip()} -> {new.strip()} USD ({c['delta_pct']:+.1f}%)"
        )
    return lines


def _alert_lines(report: Mapping[str, Any]) -> list[str]:
    alerts = report["alerts"]
    if alerts is None:
        return ["- budgets are not configured on this store"]
    if not alerts:
        return ["- no budget or alert events about this week's spend"]
    return [
        f"- {a['at'][:16].replace('T', ' ')} [{a['severity']}] {a['title']} ({a['state']});"
        f" spend {_span(a['spend_window'])}"
        for a in alerts
    ]


def _span(window: Mapping[str, str]) -> str:
    return f"{window['from'][:16].replace('T', ' ')} .. {window['to'][:16].replace('T', ' ')} UTC"


def _unpriced_note(totals: Mapping[str, Any]) -> str | None:
    count = totals["unpriced_attempts"]
    return f"Note: {count} attempts had no price; spend above undercounts them." if count else None


def render_markdown(report: Mapping[str, Any]) -> str:
    """The weekly AI spend review template, filled."""
    totals, decisions = report["totals"], report["decisions"]
    names, deltas = _version_lines(report)
    regressions = _regression_lines(report)
    pct = totals["delta_pct"]
    lines = [
        "# Weekly AI spend review",
        "",
        f"Window (UTC): {report['window']['from']} .. {report['window']['to']}",
        f"Workspace: {report['workspace'] or 'spanmeter'}"
        f" (environment={report['environment'] or 'all'}, data_mode={report['data_mode'] or 'all'})",
        f"Spend: {_money(totals['cost_usd'])} USD ({_delta(totals)} USD"
        + (f", {pct:+.1f}%" if pct is not None else "")
        + f" vs the week before); {totals['logical_requests']} requests,"
        f" {_money(totals['cost_per_request_usd'])} USD/request",
        "",
        "Daily spend (USD):",
        *(f"- {d['date']}: {_money(d['cost_usd'])}" for d in report["daily"]),
        "",
        "Top drivers (endpointTag):",
        *_driver_lines(report["top_endpoints"], "endpoint"),
        "",
        "Top drivers (tenant/user):",
        *_driver_lines(report["top_tenants"], "tenant"),
        *_driver_lines(report["top_users"][:3], "user"),
        "",
        "Deploy correlation:",
        *(
            ["- cost/request regressions (prompt deploys):", *(f"  {line}" for line in regressions)]
            if regressions
            else []
        ),
        "- promptVersion changes in window:",
        *(f"  {line}" for line in names),
        "- cost/request deltas:",
        *(f"  {line}" for line in deltas),
        "",
        "Budgets and alerts about this week's spend:",
        *_alert_lines(report),
        "",
        "Decisions:",
        f"- week classified as: {decisions['classification']} ({decisions['label']})",
        *(f"  - {line}" for line in decisions["evidence"]),
        f"- containment (caps/throttles/routing): {decisions['containment']}",
        "- follow-up owner + ETA: ",
        "",
        "One durable control to add this week:",
        f"- {report['durable_control']}",
    ]
    note = _unpriced_note(totals)
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def _columns_svg(days: Sequence[Mapping[str, Any]], width: int = 640, height: int = 220) -> str:
    """Daily spend as columns, with the value above each."""
    values = [_num(d["cost_usd"]) for d in days]
    top = max(values, default=Decimal(0)) or Decimal(1)
    pad, base = 30, height - 30
    step = (width - 2 * pad) / max(len(values), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img"'
        f' aria-label="daily spend" style="{_FONT}">',
        f'<line x1="{pad}" y1="{base}" x2="{width - pad}" y2="{base}" stroke="#999"/>',
    ]
    for index, (day, value) in enumerate(zip(days, values, strict=True)):
        bar = float(value / top) * (base - 30)
        x = pad + index * step + step * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{base - bar:.1f}" width="{step * 0.7:.1f}" height="{bar:.1f}" fill="{_BAR}">'
            f"<title>{escape(day['date'])}: {_money(day['cost_usd'])} USD</title></rect>"
        )
        parts.append(
            f'<text x="{x + step * 0.35:.1f}" y="{base - bar - 6:.1f}" font-size="11" text-anchor="middle">'
            f"{_money(day['cost_usd'])}</text>"
        )
        parts.append(
            f'<text x="{x + step * 0.35:.1f}" y="{base + 16}" font-size="11" text-anchor="middle">'
            f"{escape(day['date'][5:])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _bars_svg(entries: Sequence[Mapping[str, Any]], width: int = 640) -> str:
    """Horizontal bars: this week's cost per value, the change against last week in red/green."""
    height = 28 * max(len(entries), 1) + 10
    values = [_num(e["cost_usd"]) for e in entries]
    top = max(values, default=Decimal(0)) or Decimal(1)
    label_width, right = 200, 150
    span = width - label_width - right
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" style="{_FONT}">'
    ]
    for index, (entry, value) in enumerate(zip(entries, values, strict=True)):
        y = 8 + index * 28
        bar = float(value / top) * span
        delta = _num(entry.get("delta_usd"))
        colour = _UP if delta > 0 else "#3d9c5a"
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 15}" font-size="12" text-anchor="end">'
            f"{escape((entry['value'] or '(none)')[:28])}</text>"
        )
        parts.append(f'<rect x="{label_width}" y="{y}" width="{bar:.1f}" height="20" fill="{_BAR}"/>')
        parts.append(
            f'<text x="{label_width + bar + 6:.1f}" y="{y + 15}" font-size="12">{_money(entry["cost_usd"])}'
            f' <tspan fill="{colour}">({_delta(entry)})</tspan></text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _list(items: Sequence[str]) -> str:
    """Markdown list lines as an HTML list (backticks become ``<code>``)."""
    cells = (_CODE.sub(r"<code>\1</code>", escape(item.removeprefix("- ").strip())) for item in items)
    return "<ul>" + "".join(f"<li>{cell}</li>" for cell in cells) + "</ul>"


def _regression_box(lines: Sequence[str]) -> str:
    if not lines:
        return ""
    return f'<div class="regression"><b>Cost/request regressions (prompt deploys)</b>{_list(lines)}</div>'


def render_html(report: Mapping[str, Any]) -> str:
    """A self-contained HTML page: the review with its charts."""
    totals, decisions = report["totals"], report["decisions"]
    names, deltas = _version_lines(report)
    regressions = _regression_lines(report)
    note = _unpriced_note(totals)
    pct = totals["delta_pct"]
    window = f"{report['window']['from']} .. {report['window']['to']}"
    change = f"{_delta(totals)} USD" + (f" ({pct:+.1f}%)" if pct is not None else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Weekly AI spend review {escape(window)}</title>
<style>
body {{ {_FONT}; margin: 24px auto; max-width: 720px; color: #1d2330; }}
h1 {{ font-size: 22px; margin-bottom: 4px; }} h2 {{ font-size: 16px; margin-top: 26px; border-bottom: 1px solid #dde; }}
.kpi {{ display: flex; gap: 24px; margin: 14px 0; }} .kpi div {{ background: #f2f5fb; padding: 8px 14px; border-radius: 6px; }}
.kpi b {{ display: block; font-size: 18px; }} .muted {{ color: #667; font-size: 13px; }}
.regression {{ background: {_ALARM_BG}; border-left: 6px solid {_UP}; padding: 6px 12px; margin: 10px 0; }}
.regression ul {{ margin: 4px 0; padding-left: 18px; }}
.note {{ background: #fff6dc; padding: 6px 12px; font-size: 13px; }}
</style></head><body>
<h1>Weekly AI spend review</h1>
<div class="muted">Window (UTC): {escape(window)} &middot; Workspace: {escape(report["workspace"] or "spanmeter")}
 &middot; environment={escape(report["environment"] or "all")}, data_mode={escape(report["data_mode"] or "all")}</div>
<div class="kpi"><div>Spend<b>{_money(totals["cost_usd"])} USD</b></div>
<div>vs week before<b>{escape(change)}</b></div>
<div>Requests<b>{totals["logical_requests"]:,}</b></div>
<div>Cost/request<b>{escape(_money(totals["cost_per_request_usd"]))} USD</b></div></div>
{f'<p class="note">{escape(note)}</p>' if note else ""}
<h2>Daily spend (USD)</h2>
{_columns_svg(report["daily"])}
<h2>Top drivers (endpointTag)</h2>
{_bars_svg(report["top_endpoints"])}
<h2>Top drivers (tenant)</h2>
{_bars_svg(report["top_tenants"])}
{_list(_driver_lines(report["top_users"][:3], "user"))}
<h2>Deploy correlation</h2>
{_regression_box(regressions)}
<p>promptVersion changes in window:</p>{_list(names)}
<p>cost/request deltas:</p>{_list(deltas)}
<h2>Budgets and alerts about this week's spend</h2>
{_list(_alert_lines(report))}
<h2>Decisions</h2>
<p>Week classified as <b>{escape(decisions["classification"])}</b> ({escape(decisions["label"])})</p>
{_list(decisions["evidence"])}
<p>Containment (caps/throttles/routing): {escape(decisions["containment"])}</p>
<p>Follow-up owner + ETA: ____________</p>
<h2>One durable control to add this week</h2>
<p>{escape(report["durable_control"])}</p>
</body></html>
"""
