"""Rollup sums grouped by any dimensions of one rollup: what scheduled alert rules read.

``top`` ranks one dimension; alert rules need pairs (endpoint tag x prompt version), the
error counts (a falling success ratio) and plain totals, so they get this one generic
query instead. It reads the rollup itself, not the coarse tiers (those only hold one
dimension at a time): rule windows are minutes to a day, and the rules cache their
baselines (see :mod:`spanmeter.budgets.rules`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Final

from ..inbox import MeasureGroup
from ..rollups import HOUR, MINUTE, RollupSpec, aligned_window
from .window_parts import scope_filters

__all__ = ["measures", "rollup_for_dimensions"]

_SUMS: Final = (
    "sum(attempts), sum(logical_requests), sum(cost_nano_usd), sum(input_tokens), sum(output_tokens),"
    " sum(errors), sum(unpriced)"
)


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


def measures(
    conn: sqlite3.Connection,
    by: Sequence[str],
    start_ns: int,
    end_ns: int,
    *,
    where: Mapping[str, str],
    environment: str | None,
    data_mode: str | None,
) -> list[MeasureGroup]:
    """See :meth:`BudgetStore.measures <spanmeter.store.inbox.BudgetStore.measures>`.

    ``''`` in ``where`` selects attempts without the dimension, as in ``top``.
    """
    filters = {**where, **scope_filters(environment, data_mode)}
    spec = rollup_for_dimensions([*by, *filters])
    lo, hi = aligned_window(start_ns, end_ns, spec.bucket_seconds)
    if lo >= hi:
        return []
    columns = ", ".join(by)  # names checked against the rollup above
    conditions = "".join(f" AND {column} = ?" for column in filters)
    select = f"SELECT {columns + ', ' if by else ''}{_SUMS} FROM {spec.table}"
    sql = f"{select} WHERE {spec.bucket_column} >= ? AND {spec.bucket_column} < ?{conditions}"
    if by:
        sql += f" GROUP BY {columns}"
    width = len(by)
    groups: list[MeasureGroup] = []
    for row in conn.execute(sql, [lo, hi, *filters.values()]):
        attempts = row[width]
        if attempts is None:  # totals over no rows
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
