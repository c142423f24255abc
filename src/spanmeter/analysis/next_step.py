"""The next verification step of a classified spike: which focused view to open next.

Each driver type has its own check (a deploy: compare prompt versions on the endpoint; a
token spike: tokens per request of the endpoint's version; abuse: who inside the tenant
sends the traffic; a pricing gap: preview the re-pricing), and the view keeps the window,
environment and data mode of the investigation, so following it never widens the question.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from .common import drilldown
from .documents import Link, Scope
from .investigate_documents import NextStep
from .ranked import DriverRef
from .window import TimeWindow

__all__ = ["next_step"]


class _Common(TypedDict):
    environment: str | None
    data_mode: str | None


def next_step(
    kind: str,
    driver: DriverRef | None,
    window: TimeWindow,
    scope: Scope,
) -> NextStep:
    """The next verification step for a spike of ``kind``: a sentence and the command (and
    API URL) of the focused view, on the same window, environment and data mode."""
    common: _Common = {"environment": scope["environment"], "data_mode": scope["data_mode"]}
    where = dict(scope["where"])
    value = driver[1] or "" if driver else ""
    if kind in ("deploy", "token"):
        return _prompt_versions_step(kind, value, window, common)
    if kind == "abuse" and driver:
        inner = "user_id" if driver[0] == "tenant_id" else "endpoint_tag"
        view = _top_view(inner, {**where, driver[0]: value}, window, common)
        return _step(f"Rank {inner} within {driver[0]} {value} to find who sends the traffic.", view)
    if kind == "unknown_model":
        return _reprice_step(window)
    if driver:
        by = "model" if kind == "routing" else "tenant_id"
        view = _top_view(by, {**where, driver[0]: value}, window, common)
        text = (
            f"Rank {by} on {driver[0]} {value} in the same window, then re-run investigate after containment."
        )
        return _step(text, view)
    return {"text": "Nothing to verify.", "cli": "", "api": ""}


def _step(text: str, view: Link) -> NextStep:
    return {"text": text, "cli": view["cli"], "api": view["api"]}


def _prompt_versions_step(kind: str, endpoint: str, window: TimeWindow, common: _Common) -> NextStep:
    """A deploy or a token spike: both are checked version against version on the endpoint."""
    view = drilldown(
        ["spanmeter", "compare", "prompt-versions"],
        "/api/v1/compare/prompt-versions",
        window,
        where={},
        extra={"endpoint": endpoint},
        **common,
    )
    text = (
        "Compare cost per request by prompt version on the endpoint, same window."
        if kind == "deploy"
        else "Check tokens per request (p50/p95/p99) of the endpoint's prompt version against the"
        " baseline: growth within one version is input or context growth."
    )
    return _step(text, view)


def _top_view(by: str, where: Mapping[str, str], window: TimeWindow, common: _Common) -> Link:
    """The ``top`` ranking by ``by`` inside the driver's slice, same window and scope."""
    return drilldown(
        ["spanmeter", "top"], "/api/v1/top", window, where=dict(where), extra={"by": by}, **common
    )


def _reprice_step(window: TimeWindow) -> NextStep:
    """A pricing gap: preview re-pricing the window once the prices are added."""
    start, end = window.iso()
    return {
        "text": "Add the prices, then preview the re-pricing of the window (--dry-run) and apply it.",
        # re-pricing covers every data mode and environment: no scope to keep
        "cli": f"spanmeter reprice --from {start} --to {end} --dry-run",
        "api": drilldown([], "/api/v1/reprice/preview", window, where={}, environment=None, data_mode=None)[
            "api"
        ],
    }
