"""Rollup sums grouped by any dimensions of one rollup, as alert rules read them: which
rollup answers and how its rows become :class:`~spanmeter.store.inbox.MeasureGroup` values.

``top`` ranks one dimension; alert rules need pairs (endpoint tag x prompt version), the
error counts (a falling success ratio) and plain totals, so they get one generic question.
Every store answers it with its own SQL (``sqlite.measures``, ``postgres.budget_store``)
reading the rollup itself, not the coarse tiers (those only hold one dimension at a time):
rule windows are minutes to a day, and the rules cache their baselines (see
:mod:`spanmeter.budgets.rules`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from .inbox import MeasureGroup
from .rollups import HOUR, MINUTE, RollupSpec

__all__ = ["GROUP_MEASURES", "measure_groups", "rollup_for_dimensions"]

GROUP_MEASURES: Final = (
    "attempts",
    "logical_requests",
    "cost_nano_usd",
    "input_tokens",
    "output_tokens",
    "errors",
    "unpriced",
)
"""The rollup measures a :class:`MeasureGroup` sums, in its field order."""


def rollup_for_dimensions(dimensions: Sequence[str]) -> RollupSpec:
    """The finest rollup holding every one of ``dimensions``.

    Raises:
        ValueError: no rollup has them all.
    """
    for spec in (MINUTE, HOUR):
        if all(d in spec.dimensions for d in dimensions):
            return spec
    raise ValueError(
        f"no rollup groups by all of {', '.join(dimensions)}: the minute rollup has "
        f"{', '.join(MINUTE.dimensions)}; the hourly one {', '.join(HOUR.dimensions)}"
    )


def measure_groups(rows: Iterable[Sequence[Any]], width: int) -> list[MeasureGroup]:
    """Groups from rows of ``(*width dimension values, *sums of GROUP_MEASURES)``; a totals
    row over no rows (NULL sums) is no group."""
    groups: list[MeasureGroup] = []
    for row in rows:
        attempts = row[width]
        if attempts is None:
            continue
        groups.append(
            MeasureGroup(
                key=tuple(value or None for value in row[:width]),
                attempts=int(attempts),
                logical_requests=int(row[width + 1]),
                cost_nano_usd=int(row[width + 2]),
                input_tokens=int(row[width + 3]),
                output_tokens=int(row[width + 4]),
                errors=int(row[width + 5]),
                unpriced=int(row[width + 6]),
            )
        )
    return groups
