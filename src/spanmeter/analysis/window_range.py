"""The window an analysis command covers: ``FROM..TO``, ``--since``, or ``--from``/``--to``."""

from __future__ import annotations

from .common import parse_range
from .window import TimeWindow, parse_window

__all__ = ["resolve_window"]


def resolve_window(
    window: str | None,
    since: str | None = None,
    start: str | None = None,
    end: str | None = None,
    *,
    default_since: str = "24h",
    now_ns: int | None = None,
) -> TimeWindow:
    """One window from whichever form was given (``window`` wins; they may not be mixed).

    Raises:
        ValueError: Two forms mixed, or an invalid or empty window.
    """
    if window:
        if since or start or end:
            raise ValueError("use either a FROM..TO window or since/from/to, not both")
        return parse_range(window)
    return parse_window(since, start, end, now_ns=now_ns, default_since=default_since)
