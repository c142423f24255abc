"""A bound on the label sets of the cost counters, folding the overflow into ``other``.

Why: tenants are capped by :class:`~spanmeter.prometheus.cost_metrics.CostMetrics`, but
``endpoint_tag``, ``prompt_version``, ``provider``, ``model`` and ``environment`` come from
the clients. One client stamping a unique prompt version (or a model name with a build id)
on every span would otherwise add a series per span: receiver memory and every scrape would
grow without limit, and so would Prometheus' own memory.

How: label sets are admitted as they come until ``max_label_sets`` series exist, with the
last tenth of the room kept for folded sets. A label set that arrives when the room is used:

1. *partial fold*, while the reserve lasts: each client dimension whose value no series
   carries yet is replaced by ``other`` (a per-span prompt version lands in
   ``prompt_version="other"`` and keeps its endpoint, provider, model and environment);
2. *full fold*, once the cap is reached: all five client dimensions become ``other``. Such
   a set differs only by ``data_mode`` (three values) and ``tenant`` (top N + ``other``), so
   at most ``3 × (top_tenants + 2)`` of them can exist beyond the cap.

A folded set is a series like any other, so every attempt and every nano-USD is still
counted exactly once and sums over any label stay exact. Admission happens once per *new*
label set (on the commit-resolving thread, under the owner's lock): a batch whose label sets
all have series pays nothing for the cap. Folded series are sticky like tenant labels, so no
series ever goes backwards.

Example::

    cap = LabelSetCap(2_000)
    key = labels if labels in series else cap.admit(labels, attempts, series)
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

__all__ = [
    "CLIENT_DIMENSIONS",
    "DEFAULT_MAX_LABEL_SETS",
    "OTHER_VALUE",
    "LabelSetCap",
]

DEFAULT_MAX_LABEL_SETS: Final = 2_000
"""Label sets of the cost counters before overflow is folded into ``other``. At ~10 series
per label set (cost, attempts, requests, failures, unpriced, five token types) that is
~20,000 series, a few MiB on the receiver and a scrape well under a second."""
CLIENT_DIMENSIONS: Final = ("endpoint_tag", "prompt_version", "provider", "model", "environment")
"""The labels whose values clients choose; they lead every cost label set, in this order."""
OTHER_VALUE: Final = "other"
"""The value an overflowing dimension is folded into (as ``tenant="other"`` for tenants)."""

_DIMENSIONS: Final = len(CLIENT_DIMENSIONS)
_RESERVE_SHARE: Final = 10
"""One tenth of the room is kept for partially folded sets."""


class LabelSetCap:
    """Decides which series a new label set is counted in; not thread-safe (the owner locks).

    Args:
        max_label_sets: Series with client values (partly folded ones included) before every
            new label set is fully folded; 0 folds every client dimension from the start.

    Raises:
        ValueError: A negative ``max_label_sets``.
    """

    def __init__(self, max_label_sets: int = DEFAULT_MAX_LABEL_SETS) -> None:
        if max_label_sets < 0:
            raise ValueError(f"max_label_sets must not be negative, got {max_label_sets!r}")
        self.max_label_sets = max_label_sets
        self._admit_limit = max_label_sets - max_label_sets // _RESERVE_SHARE
        self._known: tuple[set[str], ...] = tuple(set[str]() for _ in CLIENT_DIMENSIONS)
        self.overflow: list[int] = [0] * _DIMENSIONS
        """Attempts whose value of each client dimension was folded into ``other``."""

    def admit(
        self, labels: tuple[str, ...], attempts: int, series: Collection[tuple[str, ...]]
    ) -> tuple[str, ...]:
        """The label set to count ``labels`` under; call only when ``labels`` has no series.

        Args:
            labels: A label set led by the :data:`CLIENT_DIMENSIONS` values.
            attempts: Attempts counted under it (what the overflow counter adds).
            series: The owner's series table, read for its size and membership.
        """
        used = len(series)
        if used < self._admit_limit:
            self._remember(labels)
            return labels
        known = self._known
        folded = tuple(
            value if position >= _DIMENSIONS or value in known[position] else OTHER_VALUE
            for position, value in enumerate(labels)
        )
        if used >= self.max_label_sets and folded not in series:
            # Past the cap: into the partial fold when it has a series already (that keeps
            # the breakdown of what was folded before the cap), else fold all five.
            folded = (OTHER_VALUE,) * _DIMENSIONS + labels[_DIMENSIONS:]
        overflow = self.overflow
        for position in range(_DIMENSIONS):
            if folded[position] != labels[position]:
                overflow[position] += attempts
        return folded

    def _remember(self, labels: tuple[str, ...]) -> None:
        for known, value in zip(self._known, labels, strict=False):
            known.add(value)
