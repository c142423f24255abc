"""``report weekly``: the weekly AI spend review, filled from the data.

One document (the API's JSON) holds every number; the markdown and the HTML (with charts)
are renderings of it (:mod:`.report_render`), so the report and the API cannot disagree.
Sections follow the review template: window, top drivers by endpoint tag and by
tenant/user (with the change against the week before), prompt-version changes in the
window with their cost/request deltas against the version each replaced (a rise of
:data:`REGRESSION_PCT` or more flagged as a regression), the budgets and alerts about the
week's spend, decisions (the containment the week's classification calls for) and one
durable control to add. The document keeps exact USD strings (:func:`.usd`); the
renderings print them for people (:func:`.money_text`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Final

from ..budgets.rules.alert_window import alert_spend_window
from ..money import usd
from ..store import SpanStore
from ..timeunits import MAX_NS, NS_PER_SECOND
from .documents import Scope, span
from .evidence import first_hour, recent_mix
from .investigate import investigate
from .investigate_documents import InvestigateReport
from .report_documents import AlertEntry, Day, TopEntry, VersionChange, WeeklyReport
from .window import TimeWindow

__all__ = ["REGRESSION_PCT", "parse_week", "week_alerts", "weekly_report"]

_DAY_NS: Final = 86_400 * NS_PER_SECOND
REGRESSION_PCT: Final = 20
"""A new prompt version costing this much more per request (in percent) than the one it
replaced is flagged as a regression: the default of the prompt_version_regression rule."""
_INBOX_READ: Final = 10_000
"""Newest events read from the inbox: those raised since the week began, ahead of the filter."""


def _monday_ns(day: date) -> int:
    monday = day - timedelta(days=day.weekday())
    return (
        int(datetime(monday.year, monday.month, monday.day, tzinfo=timezone.utc).timestamp()) * NS_PER_SECOND
    )


def parse_week(text: str | None, *, now_ns: int | None = None) -> TimeWindow:
    """``2026-W10``, a date inside the week (``2026-03-04``), or None for the last complete
    week; weeks run Monday 00:00 to Monday 00:00 UTC.

    Raises:
        ValueError: Not one of those forms.
    """
    if text is None or not text.strip():
        now = datetime.fromtimestamp(
            (time.time_ns() if now_ns is None else now_ns) // NS_PER_SECOND, tz=timezone.utc
        )
        end = _monday_ns(now.date())
        return TimeWindow(end - 7 * _DAY_NS, end)
    value = text.strip()
    if match := re.fullmatch(r"(\d{4})-W(\d{2})", value):
        start = _monday_ns(date.fromisocalendar(int(match[1]), int(match[2]), 1))
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        start = _monday_ns(date.fromisoformat(value))
    else:
        raise ValueError(f"invalid week {text!r}: use 2026-W10 or a date inside the week")
    if not 0 <= start < MAX_NS - 7 * _DAY_NS:
        raise ValueError(f"week out of range {text!r}: between 1970 and 2262")
    return TimeWindow(start, start + 7 * _DAY_NS)


def week_alerts(store: SpanStore, week: TimeWindow, limit: int = 200) -> list[AlertEntry] | None:
    """The budget and alert events about the week's spend, when the store keeps them (None
    otherwise), oldest first, at most ``limit``.

    An event belongs to every week its spend window (:func:`.alert_spend_window`) overlaps,
    not to the week it was raised in: a daily budget crossed at 00:30 on a Monday is about
    the Sunday before, and the demo raises today alerts about yesterday's incident. Events
    are raised at or after the start of the spend they describe, and only a spend window
    ending after the week's start overlaps it, so the inbox is read from the week's start
    on; events raised later about the week are kept.
    """
    try:  # budgets and alerts live in the same store when that side is installed
        from ..store import SupportsBudgets
    except ImportError:
        return None
    if not isinstance(store, SupportsBudgets):
        return None
    events = store.budget_store.list_alerts(since_ns=week.start_ns, limit=_INBOX_READ)
    found: list[AlertEntry] = []
    for event in sorted(events, key=lambda e: (e.occurred_at_ns, e.id)):
        spent = alert_spend_window(event)
        if spent.start_ns >= week.end_ns or spent.end_ns <= week.start_ns:
            continue
        found.append(
            {
                "at": TimeWindow(event.occurred_at_ns, event.occurred_at_ns + 1).iso()[0],
                "spend_window": span(*spent.iso()),
                "kind": event.kind,
                "severity": event.severity,
                "state": event.state,
                "subject": event.subject,
                "title": event.title,
            }
        )
    return found[:limit]


def _top(report: InvestigateReport, dimension: str, limit: int) -> list[TopEntry]:
    entry = next(d for d in report["dimensions"] if d["dimension"] == dimension)
    if entry["available"] is False:
        return []
    total = report["totals"]["current"]["cost_nano_usd"]
    ranked = sorted(entry["drivers"], key=lambda d: (-d["current"]["cost_nano_usd"], d["value"] or ""))
    return [
        {
            "value": d["value"],
            "cost_usd": usd(d["current"]["cost_nano_usd"]),
            "cost_nano_usd": d["current"]["cost_nano_usd"],
            "share": round(d["current"]["cost_nano_usd"] / total, 4) if total else None,
            "previous_cost_usd": usd(d["baseline"]["cost_nano_usd"]),
            "delta_usd": d["delta_usd"],
            "logical_requests": d["current"]["logical_requests"],
        }
        for d in ranked[:limit]
        if d["current"]["cost_nano_usd"] or d["current"]["logical_requests"]
    ]


def _version_changes(
    store: SpanStore, week: TimeWindow, previous: TimeWindow, scope: Scope
) -> list[VersionChange]:
    """Prompt versions first used this week, each with the version it replaced and the
    change in cost per request.

    The replaced version is the one serving the endpoint just before the new one first
    appeared (the most requests in the hour before, else the day before, else since the
    start of the week before), whether that was last week or earlier this week: a version
    deployed on Tuesday and replaced on Friday is the Friday version's baseline, and a week
    holding both deploys still shows the second one as a change. Cost per request compares
    the new version's requests of the week with the replaced version's requests before the
    new one appeared. Rollups and the hour tier only (:mod:`.evidence`), so cheap over two
    weeks. A version with no versioned traffic before it on its endpoint is listed with
    ``previous_version`` None: the first version seen there, nothing to compare.
    """
    pairs = ("endpoint_tag", "prompt_version")
    now = store.aggregate(pairs, week.start_ns, week.end_ns, **scope).by_key()
    before = store.aggregate(pairs, previous.start_ns, previous.end_ns, **scope).by_key()
    changes: list[VersionChange] = []
    for (endpoint, version), measures in now.items():
        if version is None or (endpoint, version) in before or not measures.logical_requests:
            continue
        on_endpoint: Scope = {**scope, "where": {**scope["where"], "endpoint_tag": endpoint or ""}}
        hour = first_hour(store, "prompt_version", version, week, on_endpoint)
        first = week.start_ns if hour is None else hour
        per_request = measures.cost_nano_usd // measures.logical_requests
        old = _replaced(store, endpoint, version, TimeWindow(previous.start_ns, first), scope)
        old_version, old_per_request = old if old is not None else (None, None)
        delta = round(100 * (per_request - old_per_request) / old_per_request, 1) if old_per_request else None
        changes.append(
            {
                "endpoint_tag": endpoint,
                "prompt_version": version,
                "first_seen_hour": TimeWindow(first, first + 1).iso()[0],
                "logical_requests": measures.logical_requests,
                "cost_per_request_usd": usd(per_request),
                "previous_version": old_version,
                "previous_cost_per_request_usd": usd(old_per_request),
                "delta_pct": delta,
                "regression": delta is not None and delta >= REGRESSION_PCT,
            }
        )
    return sorted(changes, key=lambda c: (c["endpoint_tag"] or "", c["first_seen_hour"], c["prompt_version"]))


def _replaced(
    store: SpanStore, endpoint: str | None, version: str, before: TimeWindow, scope: Scope
) -> tuple[str, int] | None:
    """(version, cost per request in ``before``) of the version serving ``endpoint`` at the
    end of ``before`` (see :func:`_version_changes`), or None when none did."""
    if before.end_ns <= before.start_ns:
        return None
    _, groups = recent_mix(store, "prompt_version", endpoint, before, scope)
    candidates = [
        (key[0], m.logical_requests)
        for key, m in groups.items()
        if key[0] is not None and key[0] != version and m.logical_requests
    ]
    if not candidates:
        return None
    old_version = max(candidates, key=lambda c: (c[1], c[0]))[0]
    where = {**scope["where"], "endpoint_tag": endpoint or "", "prompt_version": old_version}
    total = store.aggregate(
        (),
        before.start_ns,
        before.end_ns,
        where=where,
        environment=scope["environment"],
        data_mode=scope["data_mode"],
    ).total
    if not total.logical_requests:
        return None
    return old_version, total.cost_nano_usd // total.logical_requests


def _daily(store: SpanStore, week: TimeWindow, scope: Scope) -> list[Day]:
    """Spend per day of the week, from the rollups: the shape of the week at a glance."""
    daily: list[Day] = []
    for start in range(week.start_ns, week.end_ns, _DAY_NS):
        total = store.aggregate((), start, min(start + _DAY_NS, week.end_ns), **scope).total
        daily.append(
            {
                "date": TimeWindow(start, start + 1).iso()[0][:10],
                "cost_nano_usd": total.cost_nano_usd,
                "cost_usd": usd(total.cost_nano_usd),
                "logical_requests": total.logical_requests,
            }
        )
    return daily


def weekly_report(
    store: SpanStore,
    week: TimeWindow,
    *,
    environment: str | None = None,
    data_mode: str | None = "real",
    workspace: str | None = None,
    alerts: Sequence[AlertEntry] | None = None,
    limit: int = 5,
) -> WeeklyReport:
    """The weekly review document for ``week`` (see the module docstring)."""
    scope: Scope = {"where": {}, "environment": environment, "data_mode": data_mode}
    review = investigate(store, week, "previous", environment=environment, data_mode=data_mode, limit=100_000)
    previous = TimeWindow(week.start_ns - (week.end_ns - week.start_ns), week.start_ns)
    daily = _daily(store, week, scope)
    totals = review["totals"]
    classification = review["classification"]
    return {
        "window": span(*week.iso()),
        "previous_window": review["baseline"],
        "workspace": workspace,
        "environment": environment,
        "data_mode": data_mode,
        "totals": {
            "cost_usd": totals["current"]["cost_usd"],
            "previous_cost_usd": totals["baseline"]["cost_usd"],
            "delta_usd": totals["delta_usd"],
            "delta_pct": totals["delta_pct"],
            "logical_requests": totals["current"]["logical_requests"],
            "cost_per_request_usd": totals["current"]["cost_per_request_usd"],
            "unpriced_attempts": totals["current"]["unpriced_attempts"],
        },
        "daily": daily,
        "top_endpoints": _top(review, "endpoint_tag", limit),
        "top_tenants": _top(review, "tenant_id", limit),
        "top_users": _top(review, "user_id", limit),
        "prompt_version_changes": _version_changes(store, week, previous, scope),
        "alerts": None if alerts is None else list(alerts),
        "decisions": {
            "classification": classification["type"],
            "label": classification["label"],
            "driver": classification["driver"],
            "evidence": classification["evidence"],
            "containment": classification["containment"],
            "next_step": classification["next_step"],
        },
        "durable_control": classification["durable_control"],
    }
