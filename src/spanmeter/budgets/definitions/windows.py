"""Budget windows: calendar day/week/month in a time zone, or rolling N hours.

Calendar windows are computed from the local calendar of the budget's time zone
(``zoneinfo``), so a "day" in ``America/New_York`` is 23 or 25 hours long on DST changes
and still starts at local midnight. Both ends of every window come from the same
computation, so consecutive windows partition time exactly: a span is never counted in
two windows or in none.

A rolling window is kept at hour granularity: "rolling 6h" is the current hour plus the
five before it. Exact to the cent, up to an hour wider than the name says; the
alternative, a true sliding window, would need the spend of every span in the window to
be subtracted as it ages out, which cannot be done inside the ingest transaction.

Example::

    day = WindowSpec.calendar("day", "Europe/Paris")
    start_ns, end_ns = day.bounds(time.time_ns())
    rolling = WindowSpec.rolling(6)
    since_ns = rolling.rolling_since(time.time_ns())
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...timeunits import NS_PER_HOUR, NS_PER_SECOND

__all__ = ["WindowKind", "WindowSpec", "zone"]

WindowKind = Literal["day", "week", "month", "rolling"]

_UTC_NAMES: Final = frozenset({"UTC", "Etc/UTC", "Z", "utc"})


def zone(name: str) -> ZoneInfo | timezone:
    """The time zone called ``name`` (IANA), UTC for ``UTC``.

    Raises:
        ValueError: an unknown zone name.
    """
    if name in _UTC_NAMES:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Paris, or UTC)"
        ) from None


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * NS_PER_SECOND


class WindowSpec:
    """One budget window definition. Immutable; caches the last window it computed.

    The cache makes :meth:`bounds` a comparison for the spans of the current window (nearly
    all of them), instead of a time-zone conversion per span.
    """

    __slots__ = ("_cache", "_tz", "hours", "kind", "timezone")

    kind: WindowKind
    timezone: str
    hours: int
    """Width of a rolling window; 0 for calendar windows."""

    def __init__(self, kind: WindowKind, timezone_name: str = "UTC", hours: int = 0) -> None:
        if kind == "rolling":
            if hours < 1:
                raise ValueError(f"a rolling window needs at least 1 hour, got {hours!r}")
        elif kind not in ("day", "week", "month"):
            raise ValueError(f"unknown window {kind!r}: use day, week, month or rolling")
        self.kind = kind
        self.timezone = timezone_name
        self.hours = hours
        self._tz = zone(timezone_name)
        self._cache: tuple[int, int] = (0, 0)

    @classmethod
    def calendar(cls, kind: Literal["day", "week", "month"], timezone_name: str = "UTC") -> WindowSpec:
        """A calendar window in ``timezone_name``."""
        return cls(kind, timezone_name)

    @classmethod
    def rolling(cls, hours: int) -> WindowSpec:
        """The current hour and the ``hours - 1`` before it."""
        return cls("rolling", "UTC", hours)

    @property
    def is_rolling(self) -> bool:
        """True for rolling windows."""
        return self.kind == "rolling"

    def describe(self) -> str:
        """``day (Europe/Paris)``, ``month (UTC)``, ``rolling 6h``."""
        return f"rolling {self.hours}h" if self.is_rolling else f"{self.kind} ({self.timezone})"

    def identity(self) -> str:
        """What makes two windows count the same spend (part of a budget counter's id)."""
        return f"rolling:{self.hours}" if self.is_rolling else f"{self.kind}:{self.timezone}"

    def bounds(self, instant_ns: int) -> tuple[int, int]:
        """The window containing ``instant_ns``, as ``[start_ns, end_ns)``.

        For a rolling window: the hour bucket containing it (spend is kept per hour).
        """
        start, end = self._cache
        if start <= instant_ns < end:
            return start, end
        if self.is_rolling:
            start = instant_ns - instant_ns % NS_PER_HOUR
            window = (start, start + NS_PER_HOUR)
        else:
            window = self._calendar_bounds(instant_ns)
        self._cache = window
        return window

    def rolling_since(self, now_ns: int) -> int:
        """Start of the oldest hour bucket a rolling window ending at ``now_ns`` covers."""
        return now_ns - now_ns % NS_PER_HOUR - (self.hours - 1) * NS_PER_HOUR

    def current(self, now_ns: int) -> tuple[int, int]:
        """The window a status page shows at ``now_ns``: the calendar window containing it,
        or ``[rolling_since, end of the current hour)``."""
        if self.is_rolling:
            since = self.rolling_since(now_ns)
            return since, since + self.hours * NS_PER_HOUR
        return self._calendar_bounds(now_ns)

    def previous(self, start_ns: int) -> tuple[int, int]:
        """The window before the one starting at ``start_ns`` (the natural baseline)."""
        if self.is_rolling:
            return start_ns - self.hours * NS_PER_HOUR, start_ns
        return self._calendar_bounds(start_ns - 1)

    def _calendar_bounds(self, instant_ns: int) -> tuple[int, int]:
        tz = self._tz
        local = datetime.fromtimestamp(instant_ns // NS_PER_SECOND, tz)
        day = local.date()
        if self.kind == "day":
            first, after = day, day + timedelta(days=1)
        elif self.kind == "week":  # ISO weeks: Monday to Sunday
            first = day - timedelta(days=day.weekday())
            after = first + timedelta(days=7)
        else:
            first = day.replace(day=1)
            after = (first + timedelta(days=32)).replace(day=1)
        start = _ns(datetime(first.year, first.month, first.day, tzinfo=tz))
        end = _ns(datetime(after.year, after.month, after.day, tzinfo=tz))
        return start, end

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WindowSpec) and self.identity() == other.identity()

    def __hash__(self) -> int:
        return hash(self.identity())

    def __repr__(self) -> str:
        return f"WindowSpec({self.describe()!r})"
