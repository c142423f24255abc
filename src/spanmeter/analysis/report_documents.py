"""The shape of the weekly review document (:func:`.report_weekly.weekly_report`), which
the markdown and HTML renderings (:mod:`.report_render`) read; see :mod:`.documents` for
why it is a :class:`~typing.TypedDict` document."""

from __future__ import annotations

from typing import TypedDict

from .documents import Span
from .investigate_documents import BaselineSpan, ClassifiedDriver, NextStep

__all__ = [
    "AlertEntry",
    "Day",
    "Decisions",
    "TopEntry",
    "VersionChange",
    "WeekTotals",
    "WeeklyReport",
]


class AlertEntry(TypedDict):
    """A budget or alert event about the week's spend."""

    at: str
    spend_window: Span
    kind: str
    severity: str
    state: str
    subject: str
    title: str


class TopEntry(TypedDict):
    """One of the week's top endpoints, tenants or users, against the week before."""

    value: str | None
    cost_usd: str
    cost_nano_usd: int
    share: float | None
    previous_cost_usd: str
    delta_usd: str
    logical_requests: int


class VersionChange(TypedDict):
    """A prompt version first used this week, against the version it replaced."""

    endpoint_tag: str | None
    prompt_version: str
    first_seen_hour: str
    logical_requests: int
    cost_per_request_usd: str
    previous_version: str | None
    previous_cost_per_request_usd: str | None
    delta_pct: float | None
    regression: bool


class Day(TypedDict):
    """Spend of one day of the week."""

    date: str
    cost_nano_usd: int
    cost_usd: str
    logical_requests: int


class WeekTotals(TypedDict):
    """The week's spend against the week before."""

    cost_usd: str
    previous_cost_usd: str
    delta_usd: str
    delta_pct: float | None
    logical_requests: int
    cost_per_request_usd: str | None
    unpriced_attempts: int


class Decisions(TypedDict):
    """What the week's classification calls for."""

    classification: str
    label: str
    driver: ClassifiedDriver | None
    evidence: list[str]
    containment: str
    next_step: NextStep


class WeeklyReport(TypedDict):
    """The weekly AI spend review."""

    window: Span
    previous_window: BaselineSpan
    workspace: str | None
    environment: str | None
    data_mode: str | None
    totals: WeekTotals
    daily: list[Day]
    top_endpoints: list[TopEntry]
    top_tenants: list[TopEntry]
    top_users: list[TopEntry]
    prompt_version_changes: list[VersionChange]
    alerts: list[AlertEntry] | None
    decisions: Decisions
    durable_control: str
