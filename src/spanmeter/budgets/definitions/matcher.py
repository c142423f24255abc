"""Which budgets a batch of rows touches, and by how much: the per-transaction hot path.

Runs inside the ingest transaction on every committed batch, so it is built to cost a
fraction of a microsecond per row however many budgets there are:

1. the rows are summed (cost, attempts, unpriced attempts) per values of the dimensions
   any budget names: when the whole batch falls in the same windows (nearly always), the
   grouping is done by C code (``map``, ``Counter``) and one short loop adds the costs;
   otherwise per (values, minute). 512 spans over 1,000 tenants make ~150 groups;
2. budgets are indexed by the set of dimensions they fix to exact values (their *shape*):
   1,000 per-tenant budgets are one shape, a dict from tenant to budget, so each group
   costs one lookup per shape, not one test per budget;
3. which budget states a combination of values counts for is worked out once and cached
   (tenants and endpoints recur from batch to batch); each adds to the increment of
   (counter, scope key, window), the window computed once per batch.

Example::

    index = BudgetIndex(config.budgets)
    increments = index.increments(rows, now_ns=time.time_ns())
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter, itemgetter
from typing import Any, Final
from urllib.parse import parse_qsl, quote

from ...store import SpanRow, SpendIncrement
from ...timeunits import NS_PER_MINUTE
from .model import WILDCARD, Budget
from .windows import WindowSpec

__all__ = ["BudgetIndex", "decode_scope_key", "encode_scope_key", "full_scope"]

_START: Final = attrgetter("start_time_ns")
_BILLABLE: Final = attrgetter("billable")
_COST: Final = attrgetter("cost_nano_usd")
_MODE: Final = attrgetter("data_mode")


def encode_scope_key(dimensions: Sequence[str], values: Sequence[str]) -> str:
    """``tenant_id=acme&user_id=u%201``: the wildcard values of one budget state."""
    return "&".join(f"{d}={quote(v, safe='')}" for d, v in zip(dimensions, values, strict=True))


def decode_scope_key(scope_key: str) -> dict[str, str]:
    """The inverse of :func:`encode_scope_key`."""
    return dict(parse_qsl(scope_key, keep_blank_values=True)) if scope_key else {}


def full_scope(budget: Budget, scope_key: str) -> dict[str, str]:
    """A state's complete scope: the budget's exact values plus the state's wildcard values."""
    scope = {d: v for d, v in budget.scope.items() if v != WILDCARD}
    scope.update(decode_scope_key(scope_key))
    return scope


def _tuple_getter(positions: Sequence[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """``itemgetter`` that always returns a tuple (it returns a bare item for one position)."""
    if not positions:
        return lambda values: ()
    if len(positions) == 1:
        (only,) = positions
        return lambda values: (values[only],)
    return itemgetter(*positions)


class _Entry:
    """One budget inside a shape: where its wildcard values sit, and their encoded keys."""

    __slots__ = ("budget", "counter", "keys", "wild", "wild_dims", "window_number")

    def __init__(self, budget: Budget, positions: Mapping[str, int], window_number: int) -> None:
        self.budget = budget
        self.counter = budget.counter
        self.window_number = window_number
        self.wild_dims = budget.wildcards
        self.wild = _tuple_getter([positions[d] for d in self.wild_dims])
        self.keys: dict[tuple[Any, ...], str] = {}

    def scope_key(self, values: tuple[Any, ...]) -> str | None:
        """The encoded wildcard values of ``values``; None if one is missing."""
        wild = self.wild(values)
        key = self.keys.get(wild)
        if key is None:
            if None in wild:
                return None
            if len(self.keys) > 100_000:  # bounded: user ids are unbounded
                self.keys.clear()
            key = self.keys[wild] = encode_scope_key(self.wild_dims, wild)
        return key


class _Shape:
    """Budgets fixing the same dimensions to exact values, indexed by those values."""

    __slots__ = ("concrete", "table")

    def __init__(self, dims: tuple[str, ...], positions: Mapping[str, int]) -> None:
        self.concrete = _tuple_getter([positions[d] for d in dims])
        self.table: dict[tuple[Any, ...], list[_Entry]] = {}


class BudgetIndex:
    """Budgets compiled for matching rows; immutable once built (swap a new one on reload).

    Args:
        budgets: The budget definitions.

    Raises:
        ValueError: two budgets with the same name.
    """

    def __init__(self, budgets: Iterable[Budget]) -> None:
        self.budgets: dict[str, Budget] = {}
        self.by_name: dict[str, Budget] = {}
        for budget in budgets:
            if budget.name in self.by_name:
                raise ValueError(f"budget name {budget.name!r} is used more than once")
            self.by_name[budget.name] = budget
            self.budgets[budget.counter] = budget
        dims = sorted({d for b in self.by_name.values() for d in b.scope} | {"data_mode"})
        self.dimensions: tuple[str, ...] = tuple(dims)
        positions = {d: i for i, d in enumerate(dims)}
        getter = attrgetter(*dims)
        self._values: Callable[[SpanRow], tuple[Any, ...]] = (
            getter if len(dims) > 1 else (lambda row: (getter(row),))  # type: ignore[assignment]
        )
        numbers: dict[str, int] = {}
        for budget in self.by_name.values():
            numbers.setdefault(budget.window.identity(), len(numbers))
        self._windows = tuple({b.window.identity(): b.window for b in self.by_name.values()}.values())
        self._routes: dict[tuple[Any, ...], list[tuple[str, str, int]]] = {}
        shapes: dict[tuple[str, ...], _Shape] = {}
        for budget in self.by_name.values():
            concrete = tuple(sorted(d for d, v in budget.scope.items() if v != WILDCARD))
            shape = shapes.get(concrete)
            if shape is None:
                shape = shapes[concrete] = _Shape(concrete, positions)
            key = tuple(budget.scope[d] for d in concrete)
            entry = _Entry(budget, positions, numbers[budget.window.identity()])
            shape.table.setdefault(key, []).append(entry)
        self._shapes = tuple(shapes.values())
        self._first = {c: b.thresholds_nano_usd[0] for c, b in self.budgets.items()}
        self._forecasts = {
            c: (b.limit_nano_usd, max(b.forecast_min_elapsed_ns, 1))
            for c, b in self.budgets.items()
            if b.forecast and not b.window.is_rolling
        }
        modes = {b.scope.get("data_mode") for b in self.by_name.values()}
        others = [d for d in dims if d != "data_mode"]
        self._single: tuple[str, Callable[[SpanRow], Any] | None] | None = None
        if len(modes) == 1 and WILDCARD not in modes and len(others) <= 1:
            (mode,) = modes
            self._single = (str(mode), attrgetter(others[0]) if others else None)
        self._common: tuple[int, int] = (0, 0)

    def __len__(self) -> int:
        return len(self.by_name)

    def _span(self, instant_ns: int) -> tuple[int, int]:
        """The time range around ``instant_ns`` in which no budget's window (or rolling hour
        bucket) changes: every span of a batch inside it falls in the same windows."""
        lo, hi = self._common
        if lo <= instant_ns < hi:
            return lo, hi
        lo, hi = 0, 1 << 62
        for window in self._windows:
            start, end = window.bounds(instant_ns)
            lo, hi = max(lo, start), min(hi, end)
        self._common = (lo, hi)
        return lo, hi

    def _groups(self, rows: Sequence[SpanRow]) -> dict[tuple[tuple[Any, ...], int], list[int]]:
        """(dimension values, instant) -> [cost, attempts, unpriced] over the billable rows.

        Fast path, taken by nearly every batch: all rows billable and inside one window
        span, so they group by their values alone, with the counting done by C code
        (``map``, ``Counter``) and one short Python loop for the cost. Otherwise each row
        is grouped with its minute.
        """
        starts = list(map(_START, rows))
        first, last = min(starts), max(starts)
        if first > 0:
            lo, hi = self._span(first)
            if last < hi and lo <= first and all(map(_BILLABLE, rows)):
                if self._single is not None:
                    return self._single_groups(rows, first)
                keys = list(map(self._values, rows))
                counts = Counter(keys)
                cost: dict[tuple[Any, ...], int] = dict.fromkeys(counts, 0)
                unpriced: Counter[tuple[Any, ...]] = Counter()
                for key, amount in zip(keys, map(_COST, rows), strict=True):
                    if amount is None:
                        unpriced[key] += 1
                    else:
                        cost[key] += amount
                return {(key, first): [cost[key], n, unpriced[key]] for key, n in counts.items()}
        values_of = self._values
        groups: dict[tuple[tuple[Any, ...], int], list[int]] = {}
        for row in rows:
            if not row.billable:
                continue
            start = row.start_time_ns
            key = (
                values_of(row),
                (start if start > 0 else row.received_at_ns) // NS_PER_MINUTE * NS_PER_MINUTE,
            )
            amount = row.cost_nano_usd
            sums = groups.get(key)
            if sums is None:
                groups[key] = [amount or 0, 1, 0 if amount is not None else 1]
            else:
                sums[1] += 1
                if amount is None:
                    sums[2] += 1
                else:
                    sums[0] += amount
        return groups

    def _route(self, values: tuple[Any, ...]) -> list[tuple[str, str, int]]:
        """(counter, scope key, window number) of every budget state ``values`` count for."""
        targets: list[tuple[str, str, int]] = []
        for shape in self._shapes:
            for entry in shape.table.get(shape.concrete(values), ()):
                scope_key = entry.scope_key(values)
                if scope_key is not None:
                    targets.append((entry.counter, scope_key, entry.window_number))
        if len(self._routes) >= _ROUTE_CACHE:  # bounded: user ids are unbounded
            self._routes.clear()
        self._routes[values] = targets
        return targets

    def _single_groups(
        self, rows: Sequence[SpanRow], instant: int
    ) -> dict[tuple[tuple[Any, ...], int], list[int]]:
        """The fast path when every budget fixes the same data mode and names at most one
        other dimension (global, per-tenant, per-endpoint budgets...): rows of other modes
        are dropped, and the rest grouped by one string, whose hash Python caches (a
        tuple's it recomputes on every lookup). Allocates little: this runs in the write
        transaction, where every object is work for the garbage collector too."""
        mode, value_of = self._single or ("", None)
        if list(map(_MODE, rows)).count(mode) != len(rows):
            rows = [row for row in rows if row.data_mode == mode]
        keys: list[Any] = list(map(value_of, rows)) if value_of is not None else [None] * len(rows)
        counts = Counter(keys)
        cost: dict[Any, int] = dict.fromkeys(counts, 0)
        costs = list(map(_COST, rows))
        unpriced: Counter[Any] = Counter()
        if None in costs:
            for key, amount in zip(keys, costs, strict=True):
                if amount is None:
                    unpriced[key] += 1
                else:
                    cost[key] += amount
        else:
            for key, amount in zip(keys, costs, strict=True):
                cost[key] += amount
        position = self.dimensions.index("data_mode")
        groups: dict[tuple[tuple[Any, ...], int], list[int]] = {}
        for key, n in counts.items():
            values = (mode,) if value_of is None else ((mode, key) if position == 0 else (key, mode))
            groups[(values, instant)] = [cost[key], n, unpriced[key] if unpriced else 0]
        return groups

    def increments(self, rows: Sequence[SpanRow], now_ns: int) -> list[SpendIncrement]:
        """The spend of ``rows`` per (counter, scope key, window); empty if none apply.

        Rows that are not billable never count (their usage repeats their children's), as in
        the rollups. A rolling budget ignores spend older than its window (it can never
        count again); a calendar budget takes late spend into the window it belongs to.
        """
        if not self._shapes or not rows:
            return []
        routes = self._routes
        windows = self._windows
        bounds: dict[tuple[int, int], tuple[int, int, int | None] | None] = {}
        merged: dict[tuple[str, str, int], list[Any]] = {}
        for (values, instant), (cost, attempts, unpriced) in self._groups(rows).items():
            targets = routes.get(values)
            if targets is None:
                targets = self._route(values)
            for counter, scope_key, number in targets:
                window = bounds.get((number, instant), _UNSET)
                if window is _UNSET:
                    window = bounds[(number, instant)] = _bucket(windows[number], instant, now_ns)
                if window is None:
                    continue
                start, end, since = window
                merge_key = (counter, scope_key, start)
                sums = merged.get(merge_key)
                if sums is None:
                    merged[merge_key] = [cost, attempts, unpriced, end, since]
                else:
                    sums[0] += cost
                    sums[1] += attempts
                    sums[2] += unpriced
        first = self._first
        forecasts = self._forecasts
        increments: list[SpendIncrement] = []
        for (counter, scope_key, start), (cost, attempts, unpriced, end, since) in merged.items():
            # report_at: under it a total cannot change anything now (see SpendIncrement)
            at = first[counter]
            forecast = forecasts.get(counter)
            if forecast is not None and since is None and start <= now_ns < end:
                limit, min_elapsed = forecast
                elapsed = now_ns - start
                if elapsed >= min_elapsed:
                    at = min(at, limit * elapsed // (end - start))
            increments.append(
                SpendIncrement(counter, scope_key, start, end, cost, attempts, unpriced, since, at)
            )
        return increments


_UNSET: Final[Any] = object()
_ROUTE_CACHE: Final = 100_000


def _bucket(window: WindowSpec, instant: int, now_ns: int) -> tuple[int, int, int | None] | None:
    """(start, end, rolling since) of the bucket holding ``instant``; None if a rolling window
    has already left it behind."""
    start, end = window.bounds(instant)
    if not window.hours:
        return start, end, None
    since = window.rolling_since(now_ns)
    return None if start < since else (start, end, since)
