"""Time windows and dimension filters, parsed the same way for the CLI and the JSON API.

A window is ``--since 24h`` (relative to now) or ``--from .. --to ..`` (ISO 8601 dates or
times, UTC unless an offset is given, or Unix seconds). Filters are ``dim=value`` pairs
over the attribution dimensions (:mod:`spanmeter.dimensions`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Final, cast

from ..dimensions import FILTERABLE, RANKABLE
from ..timeunits import NS_PER_SECOND

__all__ = ["DIMENSIONS", "TimeWindow", "parse_duration", "parse_filters", "parse_instant", "parse_window"]

DIMENSIONS: Final = RANKABLE
"""Dimensions that ``top`` groups by (filters may also name environment and data mode)."""

_MAX_NS: Final = 253402300800 * NS_PER_SECOND
"""Year 10000: later instants (and windows reaching before 1970) are not times a span has."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NS: Final = NS_PER_SECOND


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A half-open window [start_ns, end_ns) in Unix nanoseconds."""

    start_ns: int
    end_ns: int

    def iso(self) -> tuple[str, str]:
        """Both ends as ISO 8601 UTC strings."""
        return (_iso(self.start_ns), _iso(self.end_ns))


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / _NS, tz=timezone.utc).isoformat(timespec="seconds")


def parse_duration(text: str) -> int:
    """``90s``, ``15m``, ``24h``, ``7d``, ``2w`` -> nanoseconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number and s, m, h, d or w (e.g. 24h)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    if seconds * _NS >= _MAX_NS:
        raise ValueError(f"duration too long: {text!r}")
    return int(seconds * _NS)


def parse_instant(text: str) -> int:
    """ISO 8601 date/time (UTC unless offset) or Unix seconds -> Unix nanoseconds."""
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        instant = int(Decimal(value) * _NS)
    else:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"invalid time {text!r}: use ISO 8601 (2026-11-23T10:00) or Unix seconds"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        instant = int(parsed.timestamp()) * _NS + parsed.microsecond * 1000
    if not 0 <= instant < _MAX_NS:
        raise ValueError(f"time out of range {text!r}: between 1970 and 9999 UTC")
    return instant


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


def _split(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"invalid filter {pair!r}: use dim=value")
    return key, value
