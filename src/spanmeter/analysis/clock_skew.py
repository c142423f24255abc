"""The clock check of ``spanmeter doctor``: is a host's clock off, judged from when its spans
arrived, without being fooled by traffic that arrives late on purpose.

A span that ends more than 60 s after it arrived comes from a clock running ahead, whatever
the transport did, so that bound applies to every span. A span arriving more than 15
minutes after its end is either from a clock running behind or late traffic: a replay, a
back-fill, a Collector queue flushed after an outage, or the demo's two days of past spans
sent in a few seconds. Arrival time alone cannot tell them apart, but the spans that
arrived with it can: a live exporter sends spans that ended within seconds of each other,
so the end times of what one service sent around the same time (its arrival minute and the
two next to it) spread over seconds, and a clock running behind shifts them all alike: the
spread stays small and the lateness is flagged, however large (a host sending local time
as UTC, hours behind, is caught). A replay sends spans that ended hours apart together, so
when those end times spread over more than :data:`BACKFILL_SPREAD_NS` (1 hour), the
arrival cannot date the spans: they are judged on the ahead bound only, counted as passed
and reported as back-filled.

Why one hour rather than the 15-minute bound: a service with one host 20 minutes behind
among sane hosts spreads its arrivals' end times over 20 minutes, and must still be
flagged. The limit: a service whose hosts disagree by more than an hour while sending live
traffic reads as a back-fill and is missed on the behind side (a clock ahead is still
caught). Memory stays bounded by arrival minutes, not spans: per (service, arrival minute)
the earliest and latest end, and a count of the late spans.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from ..timeunits import NS_PER_SECOND

__all__ = ["BACKFILL_SPREAD_NS", "SKEW_AHEAD_NS", "SKEW_BEHIND_NS", "ClockJudge"]

_MINUTE_NS: Final = 60 * NS_PER_SECOND
SKEW_AHEAD_NS: Final = -60 * NS_PER_SECOND
"""Arrival minus end below this: the span ended after it arrived, a clock ahead."""
SKEW_BEHIND_NS: Final = 15 * 60 * NS_PER_SECOND
"""Arrival minus end above this: a clock behind, unless the span came in a back-fill."""
BACKFILL_SPREAD_NS: Final = 3600 * NS_PER_SECOND
"""End times of one service's spans arriving together spread wider than this: a back-fill."""


class ClockJudge:
    """Feed every span with :meth:`add`, then read :meth:`judge` once."""

    def __init__(self) -> None:
        self._arrivals: dict[tuple[str, int], list[int]] = {}  # (service, minute) -> [min end, max end]
        self._behind: Counter[tuple[str, int]] = Counter()
        self.passed = 0
        self.applicable = 0
        self.backfilled = 0
        """Spans over the behind bound that came in a back-fill (passed)."""
        self.skewed_services: Counter[str] = Counter()
        """Failed spans per service."""

    def add(self, service: str, end_ns: int, received_ns: int) -> None:
        """One span: its service, its end (or start, when it has no end) and its arrival."""
        group = (service, received_ns // _MINUTE_NS)
        ends = self._arrivals.get(group)
        if ends is None:
            self._arrivals[group] = [end_ns, end_ns]
        else:
            ends[0], ends[1] = min(ends[0], end_ns), max(ends[1], end_ns)
        skew = received_ns - end_ns
        if skew > SKEW_BEHIND_NS:
            self._behind[group] += 1  # judged once the group's neighbours are known
            return
        self.applicable += 1
        if skew >= SKEW_AHEAD_NS:
            self.passed += 1
        else:
            self.skewed_services[service] += 1

    def judge(self) -> None:
        """Judge the late spans by their arrival group's spread (module docstring)."""
        for (service, minute), count in self._behind.items():
            near = [
                self._arrivals[(service, m)]
                for m in (minute - 1, minute, minute + 1)
                if (service, m) in self._arrivals
            ]
            spread = max(ends[1] for ends in near) - min(ends[0] for ends in near)
            self.applicable += count
            if spread > BACKFILL_SPREAD_NS:
                self.passed += count
                self.backfilled += count
            else:
                self.skewed_services[service] += count
        self._behind.clear()
