"""Investigation context of an alert: its window, a baseline, the dominant driver per
dimension with its numbers, and the command and API URL of the focused views.

It follows the users' triage order (confirm the window -> rank endpoint tags -> rank
tenants and users -> compare prompt versions -> contain) and keeps the alert's filters
(scope, environment, data mode) on every view, so one click from an alert lands on the
same slice of data. Built off the ingest path, when the alert is first delivered (it
costs a handful of ``top`` queries), and stored with the event.

Example::

    context = alert_context(store, alert, api_base="http://127.0.0.1:4318")
    context["focus"]["cli"]   # spanmeter top --by endpoint_tag --from ... --where tenant_id=acme
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from typing import Any, Final, NamedTuple, cast
from urllib.parse import urlencode

from ...money import usd
from ...store import AlertRecord, SpanStore, TopDimension, TopResult
from ...timeunits import NS_PER_SECOND, iso, parse_instant
from .alert_window import alert_spend_window

__all__ = ["DRIVER_DIMENSIONS", "alert_context", "focused_view"]

_logger = logging.getLogger(__name__)

DRIVER_DIMENSIONS: Final = ("endpoint_tag", "tenant_id", "user_id", "prompt_version", "model", "provider")
"""Dimensions searched for a driver, in the order people investigate them."""


def _stamp(ns: int) -> str:
    """``ns`` as ISO text to the second, rounded *up*: a bucket counts iff it starts inside
    a window (:func:`spanmeter.store.rollups.aligned_window`), and buckets start on whole
    seconds, so a bound rounded up selects the same buckets as the exact one (rounded down,
    an end in the first second of a minute would drop that whole minute)."""
    return iso(-(-ns // NS_PER_SECOND) * NS_PER_SECOND).replace("+00:00", "Z")


def focused_view(
    by: str,
    start_ns: int,
    end_ns: int,
    filters: Mapping[str, str],
    api_base: str | None,
) -> dict[str, str]:
    """The ``spanmeter top`` command and ``/api/v1/top`` URL ranking ``by`` under ``filters``."""
    where = {d: v for d, v in filters.items() if d not in ("environment", "data_mode")}
    environment = filters.get("environment")
    data_mode = filters.get("data_mode", "real")
    args = ["spanmeter", "top", "--by", by, "--from", _stamp(start_ns), "--to", _stamp(end_ns)]
    for dim, value in sorted(where.items()):
        args += ["--where", f"{dim}={value}"]
    if environment:
        args += ["--environment", environment]
    args += ["--data-mode", data_mode]
    params: list[tuple[str, str]] = [("by", by), ("from", _stamp(start_ns)), ("to", _stamp(end_ns))]
    params += [("where", f"{dim}={value}") for dim, value in sorted(where.items())]
    if environment:
        params.append(("environment", environment))
    params.append(("data_mode", data_mode))
    path = "/api/v1/top?" + urlencode(params)
    return {"by": by, "cli": shlex.join(args), "api": (api_base or "") + path}


def _windows(alert: AlertRecord) -> tuple[int, int, int, int]:
    """(start, end, baseline start, baseline end) of an alert, in ns: the spend it describes
    (:func:`~spanmeter.analysis.alert_window.alert_spend_window`) and the baseline its
    details name, else the same length just before."""
    details = alert.details
    spent = alert_spend_window(alert)
    start, end = spent.start_ns, spent.end_ns
    baseline = details.get("baseline")
    if isinstance(baseline, Mapping):
        baseline = cast(Mapping[str, Any], baseline)
        return start, end, parse_instant(str(baseline["from"])), parse_instant(str(baseline["to"]))
    return start, end, start - (end - start), start  # the same length just before


class _Slice(NamedTuple):
    """The slice of data an alert describes, as ``top`` takes it: the filters on dimensions,
    the environment, and the data mode (None: every mode)."""

    where: dict[str, str]
    environment: str | None
    data_mode: str | None

    @classmethod
    def of(cls, filters: Mapping[str, str]) -> _Slice:
        """The slice named by an alert's ``filters`` (data mode ``real`` unless they say)."""
        data_mode = filters.get("data_mode", "real")
        return cls(
            where={d: v for d, v in filters.items() if d not in ("environment", "data_mode")},
            environment=filters.get("environment"),
            data_mode=None if data_mode == "all" else data_mode,
        )

    def top(self, store: SpanStore, dim: str, start: int, end: int, where: Mapping[str, str]) -> TopResult:
        """The top value of ``dim`` under ``where`` in this slice's environment and data mode.

        Raises:
            ValueError: a combination the rollups cannot answer (user_id x model).
        """
        return store.top(
            cast(TopDimension, dim),
            start,
            end,
            where=where,
            environment=self.environment,
            data_mode=self.data_mode,
            limit=1,
        )


def alert_context(store: SpanStore, alert: AlertRecord, *, api_base: str | None = None) -> dict[str, Any]:
    """The context document stored with ``alert`` and sent with every delivery."""
    start, end, base_start, base_end = _windows(alert)
    filters = {str(k): str(v) for k, v in cast(Mapping[str, Any], alert.details.get("filters") or {}).items()}
    data = _Slice.of(filters)
    drivers: dict[str, Any] = {}
    views: list[dict[str, str]] = []
    for dim in DRIVER_DIMENSIONS:
        if dim in data.where:
            continue
        try:
            ranking = data.top(store, dim, start, end, data.where)
        except ValueError:  # a combination the rollups cannot answer (user_id x model)
            continue
        views.append(focused_view(dim, start, end, filters, api_base))
        if ranking.groups:
            drivers[dim] = _driver(store, data, dim, ranking, base_start, base_end)
    focus = next((view for view in views if view["by"] in drivers), views[0] if views else None)
    return {
        "window": {"from": iso(start), "to": iso(end)},
        "baseline": {"from": iso(base_start), "to": iso(base_end)},
        "filters": filters,
        "drivers": drivers,
        "views": views,
        "focus": focus,
        "alert_api": f"{api_base or ''}/api/v1/alerts/{alert.id}",
        "alert_cli": f"spanmeter alerts show {alert.id}",
    }


def _driver(
    store: SpanStore, data: _Slice, dim: str, ranking: TopResult, base_start: int, base_end: int
) -> dict[str, Any]:
    """The dominant value of ``dim`` with its numbers, and what the same value cost in the
    baseline, so the delta shows whether it is new spend or the usual leader."""
    top = ranking.groups[0]
    baseline_cost = 0
    if top.key is not None:
        try:
            before = data.top(store, dim, base_start, base_end, {**data.where, dim: top.key})
            baseline_cost = before.cost_nano_usd
        except ValueError:
            pass
    per_request = top.cost_per_logical_request_nano_usd
    return {
        "value": top.key,
        "cost_usd": usd(top.cost_nano_usd),
        "share": round(top.share, 6),
        "logical_requests": top.logical_requests,
        "attempts": top.attempts,
        "cost_per_request_usd": None if per_request is None else usd(per_request),
        "baseline_cost_usd": usd(baseline_cost),
        "delta_usd": usd(top.cost_nano_usd - baseline_cost),
        "values_in_window": ranking.group_count,
    }
