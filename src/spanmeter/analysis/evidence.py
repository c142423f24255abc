"""Bounded-cost evidence queries for the classification: which prompt version or model is
behind an endpoint's change, when a version first appeared, how often calls fell back.

Why bounded: the rankings read coarse tiers and answer a week of ten million spans in
well under a second, but an endpoint-by-version or endpoint-by-model breakdown over the
same week would scan every minute rollup row of it. Evidence does not need the whole
week: a new version's endpoint is seen in the hour it first appears (found by bisecting
the hour tier), and the current mix is seen in the window's last hour (falling back to
its last day, then to the whole window, when the endpoint was quiet). Each answer says
which slice it read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from ..store import Measures, SpanStore
from ..timeunits import NS_PER_HOUR
from .documents import Scope
from .ranked import Ranked
from .window import TimeWindow

__all__ = ["fallback_share", "first_hour", "first_seen", "new_versions_on", "recent_mix"]

_SLICES: Final = (NS_PER_HOUR, 24 * NS_PER_HOUR)
_CANDIDATES: Final = 3


def _scoped(scope: Scope, **where: str) -> Scope:
    return {
        "where": {**scope["where"], **where},
        "environment": scope["environment"],
        "data_mode": scope["data_mode"],
    }


def recent_mix(
    store: SpanStore, dimension: str, endpoint: str | None, window: TimeWindow, scope: Scope
) -> tuple[TimeWindow, dict[tuple[str | None, ...], Measures]]:
    """Groups of ``dimension`` on ``endpoint`` in the latest slice of ``window`` with traffic
    on it (last hour, else last day, else the whole window), and that slice."""
    for length in (*_SLICES, window.end_ns - window.start_ns):
        piece = TimeWindow(max(window.start_ns, window.end_ns - length), window.end_ns)
        groups = store.aggregate(
            (dimension,), piece.start_ns, piece.end_ns, **_scoped(scope, endpoint_tag=endpoint or "")
        ).by_key()
        if groups or length >= window.end_ns - window.start_ns:
            return piece, groups
    raise AssertionError("unreachable: the last slice is the whole window")


def first_hour(store: SpanStore, dimension: str, value: str, window: TimeWindow, scope: Scope) -> int | None:
    """Start of the first hour of ``window`` holding attempts with ``dimension == value``.

    Bisects on prefixes of the window: each probe is one unfiltered, tier-served ranking.
    """
    hours = -(-(window.end_ns - window.start_ns) // NS_PER_HOUR)

    def seen_before(count: int) -> bool:
        end = min(window.end_ns, window.start_ns + count * NS_PER_HOUR)
        groups = store.aggregate((dimension,), window.start_ns, end, **scope).by_key()
        measures = groups.get((value,))
        return measures is not None and measures.attempts > 0

    if not seen_before(hours):
        return None
    lo, hi = 0, hours  # seen within the first hi hours, not within the first lo
    while hi - lo > 1:
        middle = (lo + hi) // 2
        if seen_before(middle):
            hi = middle
        else:
            lo = middle
    return window.start_ns + lo * NS_PER_HOUR


def first_seen(store: SpanStore, where: Mapping[str, str], hour_ns: int, scope: Scope) -> int | None:
    """Start time of the first raw row matching ``where`` in the hour at ``hour_ns``."""
    for (start,) in store.scan_requests(
        hour_ns, hour_ns + NS_PER_HOUR, columns=("start_time_ns",), **_scoped(scope, **where)
    ):
        return int(start)
    return None


def new_versions_on(
    store: SpanStore,
    endpoint: str,
    versions: Sequence[Ranked],
    window: TimeWindow,
    scope: Scope,
) -> list[tuple[str, int]]:
    """Prompt versions without baseline traffic that run on ``endpoint``, with the hour each
    first appeared; candidates are the new versions of the ranking, largest cost first."""
    candidates = sorted(
        (
            (d.value, d)
            for d in versions
            if d.value and not d.baseline["attempts"] and d.current["logical_requests"]
        ),
        key=lambda item: (-item[1].current["cost_nano_usd"], item[0]),
    )
    found: list[tuple[str, int]] = []
    for value, _ in candidates[:_CANDIDATES]:
        hour = first_hour(store, "prompt_version", value, window, scope)
        if hour is None:
            continue
        owners = store.aggregate(
            ("endpoint_tag",), hour, hour + NS_PER_HOUR, **_scoped(scope, prompt_version=value)
        ).by_key()
        if (endpoint,) in owners:
            found.append((value, hour))
    return found


def fallback_share(
    store: SpanStore, endpoint: str | None, piece: TimeWindow, scope: Scope
) -> tuple[int, int]:
    """(calls answered by another model than requested, calls) on ``endpoint`` in ``piece``."""
    differing = total = 0
    for request_model, response_model in store.scan_requests(
        piece.start_ns,
        piece.end_ns,
        columns=("request_model", "response_model"),
        **_scoped(scope, endpoint_tag=endpoint or ""),
    ):
        total += 1
        differing += bool(request_model and response_model and request_model != response_model)
    return differing, total
