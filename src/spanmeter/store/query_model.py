"""The one query model every store answers: sums of the rollup measures, grouped by some
dimensions, over a window, under exact-match filters; and the result types built from it.

``top`` (rank one dimension), ``aggregate`` (group by any dimensions of one rollup) and the
alert rules' ``measures`` are all this one question. A store answers it with its own SQL;
which rollup answers, how the window is aligned, and how rows become results is decided
here once, so every store gives the same answer to the same question.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..timeunits import NS_PER_SECOND
from .analysis_types import AggregateResult, GroupMeasures, Measures
from .api import TopGroup, TopResult
from .conditions import where_clause
from .inbox import MeasureGroup
from .rollups import HOUR, MEASURES, MINUTE, RollupSpec, TopDimension, aligned_window
from .rows import FIELD_NAMES

__all__ = [
    "OWN_PARAMETERS",
    "RANKED_MEASURES",
    "SUMS",
    "TEXT_COLUMNS",
    "FilterValue",
    "Filters",
    "ReadScope",
    "RowScan",
    "aggregate_result",
    "filter_conditions",
    "measure_groups",
    "ranked_result",
    "request_filter",
    "rollup_for_dimensions",
    "rollup_group_names",
    "rollup_group_statements",
    "scan_statements",
    "scope_filters",
]

SUMS: Final = ", ".join(f"sum({name})" for name in MEASURES)
"""Every measure summed, in :data:`~spanmeter.store.rollups.MEASURES` order (a select list)."""

RANKED_MEASURES: Final = (
    "cost_nano_usd",
    "logical_requests",
    "attempts",
    "input_tokens",
    "output_tokens",
    "unpriced",
)
"""The measures a ranking (``top``) sums, in the order its rows carry them (see
:func:`ranked_result`)."""

OWN_PARAMETERS: Final = ("environment", "data_mode")
"""Dimensions every rollup has that reads take as parameters of their own, not as filters."""

TEXT_COLUMNS: Final = frozenset(
    {
        "service_name",
        "provider",
        "request_model",
        "response_model",
        "model",
        "operation",
        "endpoint_tag",
        "prompt_name",
        "prompt_version",
        "tenant_id",
        "user_id",
        "external_request_id",
        "environment",
        "session_id",
        "outcome",
        "error_type",
        "pricing_status",
        "pricing_source",
    }
)
"""Raw-row columns a scan may filter on (exact match)."""


FilterValue = str | tuple[str, ...]
"""One filter's value: a value (``''``: the dimension missing), or several (a tuple: any of
them, SQL ``IN``; an empty tuple matches nothing). Several values are how a key limited to
tenants reads its tenants only (:mod:`spanmeter.api.tenancy`)."""
Filters = Mapping[str, FilterValue]
"""Column -> :data:`FilterValue`: the ``where`` of every read."""


def filter_conditions(filters: Filters, *, mark: str, missing: str | None = None) -> tuple[str, list[object]]:
    """`` AND column = mark`` (or ``IN (mark, ...)`` for several values) per filter, and the
    parameters in order: the one way every backend turns a ``where`` into SQL. ``missing``:
    how a ``''`` value is tested (raw rows keep a missing value as NULL: ``"{column} IS
    NULL"``); None: compared like any value (rollups keep it as ``''``)."""
    sql: list[str] = []
    params: list[object] = []
    for column, value in filters.items():
        values = value if isinstance(value, tuple) else (value,)
        tests: list[str] = []
        present = [v for v in values if v != "" or missing is None]
        if present:
            if len(present) == 1 and not isinstance(value, tuple):
                tests.append(f"{column} = {mark}")
            else:
                tests.append(f"{column} IN ({', '.join([mark] * len(present))})")
            params += present
        if missing is not None and "" in values:
            tests.append(missing.format(column=column))
        if not tests:
            sql.append(" AND 1 = 0")  # an empty tuple: nothing matches
        elif len(tests) == 1:
            sql.append(f" AND {tests[0]}")
        else:
            sql.append(f" AND ({' OR '.join(tests)})")
    return "".join(sql), params


def scope_filters(environment: str | None, data_mode: str | None) -> dict[str, str]:
    """The environment and data-mode conditions of a read (columns of every rollup); None
    leaves one out."""
    scope: dict[str, str] = {}
    if environment is not None:
        scope["environment"] = environment
    if data_mode is not None:
        scope["data_mode"] = data_mode
    return scope


def rollup_for_dimensions(dimensions: Sequence[str], where: Filters) -> RollupSpec:
    """The rollup answering a grouping: hourly when ``user_id`` is involved, else per minute.

    Raises:
        ValueError: A name that is not a dimension of that rollup (``environment`` and
            ``data_mode`` have their own parameters), or a repeated dimension.
    """
    names = [*dimensions, *where]
    spec = HOUR if "user_id" in names else MINUTE
    for name in names:
        if name in OWN_PARAMETERS or name not in spec.dimensions:
            usable = ", ".join(d for d in spec.dimensions if d not in OWN_PARAMETERS)
            raise ValueError(
                f"cannot group or filter on {name!r} here: the {spec.table} rollup has {usable}"
                " (environment and data_mode have their own parameters; user_id only combines"
                " with tenant_id and endpoint_tag)"
            )
    if len(set(dimensions)) != len(dimensions):
        raise ValueError(f"a dimension is repeated in {list(dimensions)!r}")
    return spec


def aggregate_result(
    dimensions: Sequence[str],
    spec: RollupSpec,
    window: tuple[int, int],
    rows: Iterable[Sequence[object]],
) -> AggregateResult:
    """An :class:`AggregateResult` from rows of ``(*dimension values, *sums in MEASURES
    order)``; rows of the same key (a store may return one per part it read) add up, sums
    over nothing (NULL) are skipped, ``''`` keys read as None. Groups come by cost, then key."""
    lo, hi = window
    width = len(dimensions)
    groups: dict[tuple[str | None, ...], Measures] = {}
    total = Measures()
    for row in rows:
        sums = row[width:]
        if sums[0] is None:  # sum() over no rows
            continue
        measures = Measures.of(sums)  # type: ignore[arg-type]
        total = total + measures
        key = tuple(str(value) if value else None for value in row[:width])
        previous = groups.get(key)
        groups[key] = measures if previous is None else previous + measures
    ordered = sorted(groups.items(), key=lambda item: (-item[1].cost_nano_usd, [k or "" for k in item[0]]))
    return AggregateResult(
        dimensions=tuple(dimensions),
        window_start_ns=lo * NS_PER_SECOND,
        window_end_ns=hi * NS_PER_SECOND,
        bucket_seconds=spec.bucket_seconds,
        groups=[GroupMeasures(key, measures) for key, measures in ordered],
        total=total,
    )


def ranked_result(
    by: TopDimension, bucket_seconds: int, window: tuple[int, int], fetched: Sequence[Sequence[Any]]
) -> TopResult:
    """A ranking a store computed in SQL, as a :class:`TopResult`.

    Each fetched row is ``(key, *sums, *totals, group count)``: the group's
    :data:`RANKED_MEASURES` summed, then the same over the whole window and the number of
    groups, which every row repeats (window functions over the groups, so one statement
    gives both). No rows: a window holding nothing, all zeros. ``window`` is the aligned
    window in seconds. Sums may come back as another number type (PostgreSQL's ``numeric``):
    they are made ints.
    """
    lo, hi = window
    totals = [int(value) for value in fetched[0][7:]] if fetched else [0] * 7
    total_cost = totals[0]
    groups: list[TopGroup] = []
    for row in fetched:
        cost, logical, attempts, input_tokens, output_tokens, unpriced = (int(value) for value in row[1:7])
        groups.append(
            TopGroup(
                key=row[0] or None,
                cost_nano_usd=cost,
                logical_requests=logical,
                attempts=attempts,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                unpriced=unpriced,
                share=cost / total_cost if total_cost else 0.0,
            )
        )
    return TopResult(
        by=by,
        window_start_ns=lo * NS_PER_SECOND,
        window_end_ns=hi * NS_PER_SECOND,
        bucket_seconds=bucket_seconds,
        groups=groups,
        group_count=totals[6],
        cost_nano_usd=total_cost,
        logical_requests=totals[1],
        attempts=totals[2],
        input_tokens=totals[3],
        output_tokens=totals[4],
        unpriced=totals[5],
    )


def request_filter(
    start_ns: int | None, end_ns: int | None, data_mode: str | None, *, mark: str
) -> tuple[str, list[object]]:
    """The ``WHERE`` clause (and its parameters) of a raw-row read over ``[start_ns, end_ns)``
    in one data mode, each bound optional; ``mark`` is the backend's parameter marker."""
    return where_clause(
        (f"start_time_ns >= {mark}", start_ns),
        (f"start_time_ns < {mark}", end_ns),
        (f"data_mode = {mark}", data_mode),
    )


def measure_groups(result: AggregateResult) -> list[MeasureGroup]:
    """The alert rules' view of an aggregate: the measures they judge, per group."""
    return [
        MeasureGroup(
            key=group.key,
            attempts=group.measures.attempts,
            logical_requests=group.measures.logical_requests,
            cost_nano_usd=group.measures.cost_nano_usd,
            input_tokens=group.measures.input_tokens,
            output_tokens=group.measures.output_tokens,
            errors=group.measures.errors,
            unpriced=group.measures.unpriced,
        )
        for group in result.groups
    ]


@dataclass(frozen=True, slots=True)
class ReadScope:
    """What a rollup read is limited to: the caller's filters and the scope's own."""

    where: Filters
    """The caller's exact-match filters on dimensions (``''``: the dimension missing; a
    tuple: any of its values)."""
    own: Mapping[str, str]
    """The environment and data mode (:func:`scope_filters`)."""

    @property
    def filters(self) -> dict[str, FilterValue]:
        """Both, as one set of conditions."""
        return {**self.where, **self.own}


@dataclass(frozen=True, slots=True)
class RowScan:
    """One scan of raw rows (:meth:`SpanStore.scan_requests
    <spanmeter.store.api.SpanStore.scan_requests>`)."""

    columns: Sequence[str]
    window: tuple[int, int]
    filters: Filters
    """The caller's filters and the scope's, on text columns or ``data_mode``."""
    billable_only: bool


def scan_statements(scan: RowScan, *, mark: str, billable: str) -> tuple[tuple[str, list[object]], ...]:
    """The two statements of a raw-row scan (rows with a start time in the window, in start
    order; then rows without one, by their receive time) with their parameters: the same on
    every backend but for the parameter ``mark`` (``?`` or ``%s``) and how a row is tested
    for ``billable``.

    Raises:
        ValueError: an unknown column, no columns, or a filter on a column raw rows do not
            answer by value.
    """
    columns, filters = scan.columns, scan.filters
    unknown = [name for name in columns if name not in FIELD_NAMES]
    if unknown or not columns:
        raise ValueError(f"unknown or no columns {unknown or list(columns)!r}")
    for name in filters:
        if name not in TEXT_COLUMNS and name != "data_mode":
            raise ValueError(f"cannot filter raw rows on {name!r}")
    extra, params = filter_conditions(filters, mark=mark, missing="{column} IS NULL")
    if scan.billable_only:
        extra += f" AND {billable}"
    selected = ", ".join(columns)
    start_ns, end_ns = scan.window
    return (
        (
            f"SELECT {selected} FROM requests WHERE start_time_ns >= {mark} AND start_time_ns < {mark}{extra}"
            " ORDER BY start_time_ns, id",
            [max(start_ns, 1), end_ns, *params],
        ),
        (
            f"SELECT {selected} FROM requests WHERE start_time_ns = 0 AND received_at_ns >= {mark}"
            f" AND received_at_ns < {mark}{extra} ORDER BY id",
            [start_ns, end_ns, *params],
        ),
    )


def rollup_group_names(spec: RollupSpec) -> tuple[str, ...]:
    """The keys of a merged rollup row: bucket, dimensions, measures."""
    return (spec.bucket_column, *spec.dimensions, *MEASURES)


def rollup_group_statements(
    spec: RollupSpec,
    window: tuple[int, int],
    filters: Filters,
    *,
    mark: str,
    buckets_per_query: int = 60,
) -> Iterator[tuple[str, list[object]]]:
    """The statements of an export of merged rollup rows (named by :func:`rollup_group_names`)
    over the aligned ``window``: a few buckets each, so memory stays flat; ``mark`` is the
    backend's parameter marker."""
    lo, hi = aligned_window(*window, spec.bucket_seconds)
    conditions, values = filter_conditions(filters, mark=mark)
    keys = ", ".join((spec.bucket_column, *spec.dimensions))
    step = spec.bucket_seconds * buckets_per_query
    for chunk_lo in range(lo, hi, step):
        statement = (
            f"SELECT {keys}, {SUMS} FROM {spec.table} WHERE {spec.bucket_column} >= {mark}"
            f" AND {spec.bucket_column} < {mark}{conditions} GROUP BY {keys} ORDER BY {keys}"
        )
        yield statement, [chunk_lo, min(hi, chunk_lo + step), *values]
