"""Questions answered from the store: top-N now; investigate, compare and reports later."""

from __future__ import annotations

from .top import FORMATS, render_top, top_report
from .window import DIMENSIONS, TimeWindow, parse_duration, parse_filters, parse_instant, parse_window

__all__ = [
    "DIMENSIONS",
    "FORMATS",
    "TimeWindow",
    "parse_duration",
    "parse_filters",
    "parse_instant",
    "parse_window",
    "render_top",
    "top_report",
]
