"""``spanmeter store copy``: move a whole store to another one (SQLite to PostgreSQL, or back).

A copy is a list of named :data:`PARTS`, each moving one kind of state in chunks through
the export and import methods of :class:`~spanmeter.store.transfer.TransferStore` (why not
replay the spans through the write path: see :mod:`spanmeter.store.transfer`). Each chunk
is imported together with the part's new position in one transaction of the target, so:

* an interrupted copy, run again, resumes after the last chunk committed;
* a copy run twice finds every part done and copies nothing (raw rows and keys are also
  deduped on their keys; rollups are appended whole buckets at a time with the position,
  so a bucket is never appended twice).

:func:`compare_stores` then checks the result: per day, per dimension value, the cost,
attempts and logical requests of both stores (read with ``aggregate``, as every view
reads them), and the raw rows per day; per budget counter, its spend in calendar windows
and rolling buckets; per kind, source, state and severity, the alerts, with their history
entries and deliveries; the API keys per scope.

Example::

    with open_store("spanmeter.db") as source, open_store(url) as target:
        copy_store(source, target, source_id="/srv/spanmeter.db")
        differences = compare_stores(source, target)
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from ..timeunits import NS_PER_DAY, NS_PER_SECOND
from .alert_rows import EVENT_COLUMNS
from .rollups import HOUR, MEASURES, MINUTE, RollupSpec
from .rows import FIELD_NAMES
from .transfer import STATE_TABLES, CopyProgress, Granularity, StateTable, TransferStore

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "PARTS",
    "CopyRefused",
    "Difference",
    "Part",
    "PartResult",
    "compare_stores",
    "copy_store",
]

DEFAULT_CHUNK_ROWS: Final = 5000
"""Items per chunk (one target transaction each): big enough that a transaction's overhead
does not matter, small enough that an interruption loses little."""

Step = Callable[[TransferStore, TransferStore, CopyProgress, int], tuple[CopyProgress, int]]
"""Copies one chunk after ``progress``; returns the new progress (``done`` when nothing was
left) and how many items the target inserted."""


class CopyRefused(Exception):
    """The copy cannot start: the target is the source, or already holds other data."""


@dataclass(frozen=True, slots=True)
class Part:
    """One kind of state a copy moves, chunk by chunk."""

    name: str
    """Its key in the target's ``copy_progress``."""
    description: str
    step: Step


@dataclass(slots=True)
class PartResult:
    """What a copy did for one part."""

    name: str
    copied: int = 0
    """Items read and imported by this run."""
    inserted: int = 0
    """Of those, the ones the target did not hold yet."""
    total: int = 0
    """Items copied for this part over every run."""
    done: bool = False


def _advance(progress: CopyProgress, position: object, count: int) -> CopyProgress:
    return replace(progress, position=json.dumps(position), rows=progress.rows + count)


def _finished(progress: CopyProgress) -> CopyProgress:
    return replace(progress, done=True)


def _position(progress: CopyProgress) -> Any:
    return json.loads(progress.position) if progress.position else None


_START, _SPAN, _TRACE = (FIELD_NAMES.index(name) for name in ("start_time_ns", "span_id", "trace_id"))


def _requests(
    source: TransferStore, target: TransferStore, progress: CopyProgress, chunk: int
) -> tuple[CopyProgress, int]:
    after = _position(progress)
    key = None if after is None else (int(after[0]), bytes.fromhex(after[1]), bytes.fromhex(after[2]))
    rows = source.export_requests(key, chunk)
    if not rows:
        done = _finished(progress)
        return done, target.import_requests([], done)
    last = rows[-1]
    new = _advance(progress, [last[_START], last[_SPAN].hex(), last[_TRACE].hex()], len(rows))
    return new, target.import_requests(rows, new)


def _logical_requests(
    source: TransferStore, target: TransferStore, progress: CopyProgress, chunk: int
) -> tuple[CopyProgress, int]:
    keys = source.export_logical_requests(_position(progress), chunk)
    if not keys:
        done = _finished(progress)
        return done, target.import_logical_requests([], done)
    new = _advance(progress, keys[-1][0], len(keys))
    return new, target.import_logical_requests(keys, new)


def _provider_calls(
    source: TransferStore, target: TransferStore, progress: CopyProgress, chunk: int
) -> tuple[CopyProgress, int]:
    after = _position(progress)
    calls = source.export_provider_calls(
        None if after is None else (int(after[0]), bytes.fromhex(after[1])), chunk
    )
    if not calls:
        done = _finished(progress)
        return done, target.import_provider_calls([], done)
    new = _advance(progress, [calls[-1][0], calls[-1][1].hex()], len(calls))
    return new, target.import_provider_calls(calls, new)


def _rollup_step(granularity: Granularity, spec: RollupSpec) -> Step:
    names = (spec.bucket_column, *spec.dimensions, *MEASURES)

    def step(
        source: TransferStore, target: TransferStore, progress: CopyProgress, chunk: int
    ) -> tuple[CopyProgress, int]:
        """Whole buckets, about ``chunk`` stored rows' worth (at least one bucket), merged."""
        buckets = source.rollup_buckets(granularity, _position(progress), chunk)
        if not buckets:
            done = _finished(progress)
            return done, target.import_rollups(granularity, [], done)
        taken, rows = 0, 0
        while taken < len(buckets) and (taken == 0 or rows + buckets[taken][1] <= chunk):
            rows += buckets[taken][1]
            taken += 1
        first, last = buckets[0][0], buckets[taken - 1][0]
        groups = [
            tuple(group[name] for name in names)
            for group in source.iter_rollup_groups(
                granularity,
                first * NS_PER_SECOND,
                (last + spec.bucket_seconds) * NS_PER_SECOND,
                data_mode=None,
            )
        ]
        new = _advance(progress, last, len(groups))
        return new, target.import_rollups(granularity, groups, new)

    return step


def _reprice_audit(
    source: TransferStore, target: TransferStore, progress: CopyProgress, chunk: int
) -> tuple[CopyProgress, int]:
    audits = source.export_reprice_audits(_position(progress), max(1, chunk // 100))
    if not audits:
        done = _finished(progress)
        return done, target.import_reprice_audits([], done)
    new = _advance(progress, audits[-1].audit.id, len(audits))
    return new, target.import_reprice_audits(audits, new)


def _revenue(
    source: TransferStore, target: TransferStore, progress: CopyProgress, chunk: int
) -> tuple[CopyProgress, int]:
    rows = source.export_revenue()  # one row per tenant and period: small
    done = _finished(_advance(progress, len(rows), len(rows)))
    return done, target.import_revenue(rows, done)


def _state_step(table: StateTable) -> Step:
    def step(
        source: TransferStore, target: TransferStore, progress: CopyProgress, chunk: int
    ) -> tuple[CopyProgress, int]:
        after = _position(progress)
        rows = source.export_state_rows(table, None if after is None else tuple(after), chunk)
        if not rows:
            done = _finished(progress)
            return done, target.import_state_rows(table, [], done)
        new = _advance(progress, list(table.key_of(rows[-1])), len(rows))
        return new, target.import_state_rows(table, rows, new)

    return step


def _alerts(
    source: TransferStore, target: TransferStore, progress: CopyProgress, chunk: int
) -> tuple[CopyProgress, int]:
    alerts = source.export_alerts(_position(progress), max(1, chunk // 10))
    if not alerts:
        done = _finished(progress)
        return done, target.import_alerts([], done)
    new = _advance(progress, alerts[-1].id, len(alerts))
    return new, target.import_alerts(alerts, new)


def _state_part(name: str, description: str) -> Part:
    return Part(name, description, _state_step(STATE_TABLES[name]))


PARTS: Final[tuple[Part, ...]] = (
    Part("requests", "raw rows as stored: ids, pricing, billable flags, duplicate_of", _requests),
    Part("logical_requests", "logical-request keys: external id and first start", _logical_requests),
    Part("provider_calls", "which span carries each provider call", _provider_calls),
    Part("rollup_minute", "the minute rollup, merged per bucket", _rollup_step("minute", MINUTE)),
    Part("rollup_hour", "the hourly rollup, merged per bucket", _rollup_step("hour", HOUR)),
    Part("reprice_audit", "the re-pricing audit trail", _reprice_audit),
    Part("revenue", "imported tenant revenue", _revenue),
    _state_part("budget_counters", "the names of the budget counters"),
    _state_part("budget_spend", "budget spend per calendar window, with the levels alerted"),
    _state_part("budget_rolling", "budget spend of rolling windows, per hour bucket"),
    _state_part("budget_episode", "open rolling-budget episodes, with the levels alerted"),
    Part("alerts", "alert events under their ids, with history and deliveries (the outbox)", _alerts),
    _state_part("alert_rule_state", "open alert-rule episodes and their events"),
    _state_part("api_keys", "API keys (ids and secret hashes), revoked ones included"),
)
"""What a copy moves, in order (events before the rule episodes that point at them)."""


def _is_empty(store: TransferStore) -> bool:
    stats = store.stats()
    return (
        not stats.requests
        and not stats.logical_requests
        and not any(stats.rollup_rows.values())
        and not store.export_alerts(None, 1)
        and not store.export_state_rows(STATE_TABLES["budget_spend"], None, 1)
    )


def copy_store(
    source: TransferStore,
    target: TransferStore,
    *,
    source_id: str | None = None,
    parts: Sequence[Part] = PARTS,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[PartResult], None] | None = None,
) -> list[PartResult]:
    """Copy every part of ``source`` not copied yet into ``target``; one result per part.

    Args:
        source_id: Names the source in the target's progress (default: its location); give
            the same one to resume.
        chunk_rows: Items per chunk, one target transaction each.
        on_chunk: Called after every chunk (progress display).

    Raises:
        CopyRefused: ``target`` is ``source``, or holds data without having been copied into
            from this source (rollups would add up with it, alert ids could clash).
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows!r}")
    source_name = source.location if source_id is None else source_id
    if source.location == target.location:
        raise CopyRefused(f"the source and the target are the same store ({target.location})")
    recorded = target.copy_progress(source_name)
    if not recorded and not _is_empty(target):
        raise CopyRefused(
            f"the target {target.location} already holds data: copy into a new, empty store"
            " (its rollups would add up with the copied ones)"
        )
    results: list[PartResult] = []
    for part in parts:
        progress = recorded.get(part.name) or CopyProgress(part.name, source_name, "")
        result = PartResult(part.name, total=progress.rows, done=progress.done)
        results.append(result)
        while not progress.done:
            before = progress.rows
            progress, inserted = part.step(source, target, progress, chunk_rows)
            result.copied += progress.rows - before
            result.inserted += inserted
            result.total, result.done = progress.rows, progress.done
            if on_chunk is not None:
                on_chunk(result)
    return results


_COMPARED: Final = ("cost_nano_usd", "attempts", "logical_requests")
_DIMENSIONS: Final = (
    *(name for name in MINUTE.dimensions if name not in ("environment", "data_mode")),
    "user_id",
)
"""Every dimension a query can group by (environment and data mode are filters only)."""


@dataclass(frozen=True, slots=True)
class Difference:
    """One number that differs between the stores."""

    day: str
    """The UTC day, ``YYYY-MM-DD``."""
    what: str
    """``requests`` (raw rows), ``dimension=value`` (``(none)`` for a missing value),
    ``<budget table> counter=<name>``, ``alert_rule_state rule=<name>``,
    ``api_keys scope=<scope>`` or ``alerts kind=... source=... state=... severity=...``."""
    measure: str
    source: int
    target: int

    def __str__(self) -> str:
        return f"{self.day} {self.what} {self.measure}: source {self.source}, target {self.target}"


def _days(store: TransferStore) -> set[int]:
    days: set[int] = set()
    after: int | None = None
    while buckets := store.rollup_buckets("hour", after, 10_000):
        days.update(bucket * NS_PER_SECOND // NS_PER_DAY for bucket, _ in buckets)
        after = buckets[-1][0]
    return days


def _day_text(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


_BUDGET_MEASURES: Final = {
    "budget_spend": ("cost_nano_usd", "attempts", "unpriced", "alerted_level", "forecast_alerted"),
    "budget_rolling": ("cost_nano_usd", "attempts", "unpriced"),
    "budget_episode": ("alerted_level", "forecast_alerted"),
}
"""The counter tables compared, with the columns summed per counter (besides the rows)."""
_PAGE: Final = 10_000


def _state_rows(store: TransferStore, name: str) -> Iterator[dict[str, Any]]:
    table = STATE_TABLES[name]
    after = None
    while rows := store.export_state_rows(table, after, _PAGE):
        for row in rows:
            yield dict(zip(table.columns, row, strict=True))
        after = table.key_of(rows[-1])


Tally = dict[str, dict[str, int]]
"""``what -> measure -> value``."""


def _add(tally: Tally, what: str, measures: dict[str, int]) -> None:
    counts = tally.setdefault(what, {})
    for measure, value in measures.items():
        counts[measure] = counts.get(measure, 0) + value


def _ledger_and_alerts(store: TransferStore) -> Tally:
    """Per budget counter and table, its rows and summed spend and levels; per rule, its open
    episodes; per scope, the API keys and how many are revoked; per kind, source, state and
    severity, the alerts, their history entries and their deliveries by state."""
    tally: Tally = {}
    names = {row["id"]: row["counter"] for row in _state_rows(store, "budget_counters")}
    for name, measures in _BUDGET_MEASURES.items():
        for row in _state_rows(store, name):
            counter = names.get(row["counter_id"], str(row["counter_id"]))
            _add(tally, f"{name} counter={counter}", {"rows": 1} | {m: int(row[m]) for m in measures})
    for row in _state_rows(store, "alert_rule_state"):
        _add(tally, f"alert_rule_state rule={row['rule']}", {"rows": 1})
    for row in _state_rows(store, "api_keys"):
        _add(
            tally,
            f"api_keys scope={row['scope']}",
            {"keys": 1, "revoked": int(row["revoked_at_ns"] is not None)},
        )
    after = None
    while alerts := store.export_alerts(after, _PAGE // 10):
        for alert in alerts:
            event = dict(zip(EVENT_COLUMNS.replace(" ", "").split(","), alert.event, strict=True))
            what = " ".join(f"{name}={event[name]}" for name in ("kind", "source", "state", "severity"))
            measures = {"events": 1, "history": len(alert.history)}
            for delivery in alert.deliveries:
                measures[f"deliveries_{delivery[1]}"] = measures.get(f"deliveries_{delivery[1]}", 0) + 1
            _add(tally, f"alerts {what}", measures)
        after = alerts[-1].id
    return tally


def compare_stores(source: TransferStore, target: TransferStore) -> list[Difference]:
    """The totals that differ: per UTC day holding rollups in either store, per value of every
    rollup dimension, the cost, attempts and logical requests (all data modes), and the raw
    rows per day; then over all days, the budget counters and the alerts (see
    :func:`_ledger_and_alerts`). Empty when the stores agree."""
    differences: list[Difference] = []
    for day in sorted(_days(source) | _days(target)):
        start, end = day * NS_PER_DAY, (day + 1) * NS_PER_DAY
        label = _day_text(day)
        counts = source.count_requests(start, end), target.count_requests(start, end)
        if counts[0] != counts[1]:
            differences.append(Difference(label, "requests", "rows", *counts))
        for dimension in _DIMENSIONS:
            ours = source.aggregate([dimension], start, end, data_mode=None).by_key()
            theirs = target.aggregate([dimension], start, end, data_mode=None).by_key()
            for key in sorted(ours.keys() | theirs.keys(), key=str):
                a, b = ours.get(key), theirs.get(key)
                value = "(none)" if key[0] is None else key[0]
                for measure in _COMPARED:
                    left = 0 if a is None else int(getattr(a, measure))
                    right = 0 if b is None else int(getattr(b, measure))
                    if left != right:
                        differences.append(Difference(label, f"{dimension}={value}", measure, left, right))
    total = source.count_requests(), target.count_requests()
    if total[0] != total[1]:
        differences.append(Difference("all days", "requests", "rows", *total))
    ours, theirs = _ledger_and_alerts(source), _ledger_and_alerts(target)
    for what in sorted(ours.keys() | theirs.keys()):
        a, b = ours.get(what, {}), theirs.get(what, {})
        for measure in sorted(a.keys() | b.keys()):
            if a.get(measure, 0) != b.get(measure, 0):
                differences.append(
                    Difference("all days", what, measure, a.get(measure, 0), b.get(measure, 0))
                )
    return differences
