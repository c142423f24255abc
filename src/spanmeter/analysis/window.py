"""Time windows and dimension filters, parsed the same way for the CLI and the JSON API.

A window is ``--since 24h`` (relative to now) or ``--from .. --to ..`` (ISO 8601 dates or
times, UTC unless an offset is given, or Unix seconds). Filters are ``dim=value`` pairs
over the attribution dimensions (:mod:`spanmeter.dimensions`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Final, cast

from ..dimensions import FILTERABLE, RANKABLE
from ..timeunits import TimeWindow, parse_duration, parse_instant
from .documents import Scope

__all__ = [
    "DIMENSIONS",
    "TimeWindow",
    "parse_duration",
    "parse_filters",
    "parse_instant",
    "parse_window",
    "query_scope",
]

DIMENSIONS: Final = RANKABLE
"""Dimensions that ``top`` groups by (filters may also name environment and data mode)."""


def parse_window(
    since: str | None = None,
    start: str | None = None,
    end: str | None = None,
    *,
    now_ns: int | None = None,
    default_since: str = "24h",
) -> TimeWindow:
    """A window from ``since`` or ``start``/``end`` (``since`` and ``start`` exclude each other)."""
    now = time.time_ns() if now_ns is None else now_ns
    if since and start:
        raise ValueError("use either since or from/to, not both")
    end_ns = parse_instant(end) if end else now
    start_ns = parse_instant(start) if start else end_ns - parse_duration(since or default_since)
    if start_ns >= end_ns:
        raise ValueError("the window is empty: from must be before to")
    if start_ns < 0:
        raise ValueError(f"the window starts before 1970: {since or default_since} is too long")
    return TimeWindow(start_ns, end_ns)


def parse_filters(pairs: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
    """``["tenant_id=t1", "model=gpt-4o"]`` -> ``{"tenant_id": "t1", "model": "gpt-4o"}``.

    A dimension named twice is an error: the filters are ANDed, and two values of one
    dimension would silently keep only the last.
    """
    items: Iterable[tuple[str, str]]
    if isinstance(pairs, Mapping):
        # The checker narrows the Iterable[str] side to a Mapping[str, Unknown] as well.
        items = cast("Mapping[str, str]", pairs).items()
    else:
        items = (_split(pair) for pair in pairs)
    filters: dict[str, str] = {}
    for key, value in items:
        key = key.strip()
        if key not in FILTERABLE:
            raise ValueError(f"unknown dimension {key!r}: use one of {', '.join(sorted(FILTERABLE))}")
        if key in filters and filters[key] != value:
            raise ValueError(
                f"dimension {key!r} filtered twice ({filters[key]!r} and {value!r}): give it once"
            )
        filters[key] = value
    return filters


def query_scope(where: Mapping[str, str] | None, environment: str | None, data_mode: str | None) -> Scope:
    """The filters, environment and data mode as the store's queries take them (``**scope``).

    The CLI and the API let a person filter on ``environment=`` and ``data_mode=`` like on
    any dimension, but the store takes both as arguments of their own (they select rows
    before any dimension filter does): named among ``where``, they override the parameters
    and leave the filters. ``where`` itself is left as it was.
    """
    filters = dict(where or {})
    environment, data_mode = filters.pop("environment", environment), filters.pop("data_mode", data_mode)
    return {"where": filters, "environment": environment, "data_mode": data_mode}


def _split(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"invalid filter {pair!r}: use dim=value")
    return key, value
