"""``report weekly``: the weekly AI spend review, filled from the data.

One document (the API's JSON) holds every number; the markdown and the HTML (with charts)
are renderings of it (:mod:`.report_render`), so the report and the API cannot disagree.
Sections follow the review template: window, top drivers by endpoint tag and by
tenant/user (with the change against the week before), prompt-version changes in the
window with their cost/request deltas, budgets and alerts of the week, decisions (the
containment the week's classification calls for) and one durable control to add.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final

from ..store import SpanStore
from .common import usd
from .investigate import investigate
from .window import TimeWindow

__all__ = ["parse_week", "week_alerts", "weekly_report"]

_NS: Final = 1_000_000_000
_DAY_NS: Final = 86_400 * _NS


def _monday_ns(day: date) -> int:
    monday = day - timedelta(days=day.weekday())
    return int(datetime(monday.year, monday.month, monday.day, tzinfo=timezone.utc).timestamp()) * _NS


def parse_week(text: str | None, *, now_ns: int | None = None) -> TimeWindow:
    """``2026-W10``, a date inside the week (``2026-03-04``), or None for the last complete
    week; weeks run Monday 00:00 to Monday 00:00 UTC.

    Raises:
        ValueError: Not one of those forms.
    """
    if text is None or not text.strip():
        now = datetime.fromtimestamp((time.time_ns() if now_ns is None else now_ns) // _NS, tz=timezone.utc)
        end = _monday_ns(now.date())
        return TimeWindow(end - 7 * _DAY_NS, end)
    value = text.strip()
    if match := re.fullmatch(r"(\d{4})-W(\d{2})", value):
        start = _monday_ns(date.fromisocalendar(int(match[1]), int(match[2]), 1))
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        start = _monday_ns(date.fromisoformat(value))
    else:
        raise ValueError(f"invalid week {text!r}: use 2026-W10 or a date inside the week")
    return TimeWindow(start, start + 7 * _DAY_NS)


def week_alerts(store: SpanStore, week: TimeWindow, limit: int = 200) -> list[dict[str, Any]] | None:
    """The budget and alert events of the week, when the store keeps them (None otherwise)."""
    try:  # budgets and alerts live in the same store when that side is installed
        from ..store import SupportsBudgets
    except ImportError:
        return None
    if not isinstance(store, SupportsBudgets):
        return None
    events = store.budget_store.list_alerts(since_ns=week.start_ns, limit=limit)
    return [
        {
            "at": TimeWindow(event.occurred_at_ns, event.occurred_at_ns + 1).iso()[0],
            "kind": event.kind,
            "severity": event.severity,
            "state": event.state,
            "subject": event.subject,
            "title": event.title,
        }
        for event in sorted(events, key=lambda e: (e.occurred_at_ns, e.id))
        if event.occurred_at_ns < week.end_ns
    ]


def _top(report: Mapping[str, Any], dimension: str, limit: int) -> list[dict[str, Any]]:
    entry = next(d for d in report["dimensions"] if d["dimension"] == dimension)
    if not entry["available"]:
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
    store: SpanStore, week: TimeWindow, previous: TimeWindow, scope: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Prompt versions first used this week, with cost/request against the endpoint's
    main version of the week before (rollups: exact, and cheap over two weeks)."""
    pairs = ("endpoint_tag", "prompt_version")
    now = store.aggregate(pairs, week.start_ns, week.end_ns, **scope).by_key()
    before = store.aggregate(pairs, previous.start_ns, previous.end_ns, **scope).by_key()
    changes = []
    for (endpoint, version), measures in sorted(now.items(), key=lambda item: [k or "" for k in item[0]]):
        if version is None or (endpoint, version) in before or not measures.logical_requests:
            continue
        old = [
            (k[1], m)
            for k, m in before.items()
            if k[0] == endpoint and k[1] is not None and m.logical_requests
        ]
        per_request = measures.cost_nano_usd // measures.logical_requests
        entry: dict[str, Any] = {
            "endpoint_tag": endpoint,
            "prompt_version": version,
            "logical_requests": measures.logical_requests,
            "cost_per_request_usd": usd(per_request),
            "previous_version": None,
            "previous_cost_per_request_usd": None,
            "delta_pct": None,
        }
        if old:
            old_version, old_measures = max(old, key=lambda item: (item[1].logical_requests, item[0] or ""))
            old_per_request = old_measures.cost_nano_usd // old_measures.logical_requests
            entry.update(
                previous_version=old_version,
                previous_cost_per_request_usd=usd(old_per_request),
                delta_pct=round(100 * (per_request - old_per_request) / old_per_request, 1)
                if old_per_request
                else None,
            )
        changes.append(entry)
    return changes


def weekly_report(
    store: SpanStore,
    week: TimeWindow,
    *,
    environment: str | None = None,
    data_mode: str | None = "real",
    workspace: str | None = None,
    alerts: Sequence[Mapping[str, Any]] | None = None,
    limit: int = 5,
) -> dict[str, Any]:
    """The weekly review document for ``week`` (see the module docstring)."""
    scope: dict[str, Any] = {"where": {}, "environment": environment, "data_mode": data_mode}
    review = investigate(store, week, "previous", environment=environment, data_mode=data_mode, limit=100_000)
    previous = TimeWindow(week.start_ns - (week.end_ns - week.start_ns), week.start_ns)
    daily = []
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
    totals = review["totals"]
    classification = review["classification"]
    begin, end = week.iso()
    return {
        "window": {"from": begin, "to": end},
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
