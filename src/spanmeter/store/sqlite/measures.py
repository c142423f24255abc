"""Rollup sums grouped by any dimensions of one rollup, in SQLite: what scheduled alert
rules read (see :mod:`spanmeter.store.measure_groups` for the question and its rules)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Final

from ..inbox import MeasureGroup
from ..measure_groups import GROUP_MEASURES, measure_groups, rollup_for_dimensions
from ..rollups import aligned_window
from .window_parts import scope_filters

__all__ = ["measures", "rollup_for_dimensions"]

_SUMS: Final = ", ".join(f"sum({name})" for name in GROUP_MEASURES)


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
    return measure_groups(conn.execute(sql, [lo, hi, *filters.values()]), len(by))
