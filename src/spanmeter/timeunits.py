"""Nanoseconds, said once: OTel timestamps are Unix nanoseconds, and every window, bucket,
retention cutoff and rate in spanmeter is computed in them. The constants, and the parsing
of the durations and instants people write (``24h``, ``2026-11-23T10:00``), live here,
below every layer (this module imports nothing from spanmeter), so budgets and analysis
read time alike, no module spells ``10**9`` again, and a reader never has to check which
unit a bare number is in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Final

__all__ = [
    "MAX_NS",
    "NS_PER_DAY",
    "NS_PER_HOUR",
    "NS_PER_MINUTE",
    "NS_PER_MS",
    "NS_PER_SECOND",
    "NS_PER_US",
    "TimeWindow",
    "iso",
    "parse_duration",
    "parse_instant",
]

NS_PER_US: Final = 1_000
NS_PER_MS: Final = 1_000_000
NS_PER_SECOND: Final = 1_000_000_000
NS_PER_MINUTE: Final = 60 * NS_PER_SECOND
NS_PER_HOUR: Final = 3600 * NS_PER_SECOND
NS_PER_DAY: Final = 86_400 * NS_PER_SECOND
MAX_NS: Final = 2**63
"""April 2262, the first instant a signed 64-bit count of nanoseconds cannot hold: no store
column takes a later one (ingest treats a later span time as missing), so later instants
(and windows reaching before 1970) are not times a span has."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """``90s``, ``15m``, ``24h``, ``7d``, ``2w`` -> nanoseconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number and s, m, h, d or w (e.g. 24h)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    if seconds * NS_PER_SECOND >= MAX_NS:
        raise ValueError(f"duration too long: {text!r}")
    return int(seconds * NS_PER_SECOND)


def parse_instant(text: str) -> int:
    """ISO 8601 date/time (UTC unless offset) or Unix seconds -> Unix nanoseconds."""
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        instant = int(Decimal(value) * NS_PER_SECOND)
    else:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"invalid time {text!r}: use ISO 8601 (2026-11-23T10:00) or Unix seconds"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        instant = int(parsed.timestamp()) * NS_PER_SECOND + parsed.microsecond * 1000
    if not 0 <= instant < MAX_NS:
        raise ValueError(f"time out of range {text!r}: between 1970 and 2262 UTC")
    return instant


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A half-open window [start_ns, end_ns) in Unix nanoseconds."""

    start_ns: int
    end_ns: int

    def iso(self) -> tuple[str, str]:
        """Both ends as ISO 8601 UTC strings."""
        return (iso(self.start_ns), iso(self.end_ns))


def iso(ns: int) -> str:
    """Unix ns -> ISO 8601 UTC, to the second (rounded down: an instant is never shown in a
    second it has not reached)."""
    return datetime.fromtimestamp(ns // NS_PER_SECOND, tz=timezone.utc).isoformat(timespec="seconds")
