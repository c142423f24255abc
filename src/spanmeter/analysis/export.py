"""Streaming exports of raw requests and rollups as CSV, JSON or NDJSON, of any size.

Rows are read from one streaming scan and encoded one at a time, so memory stays flat
whatever the window; the CLI writes the chunks to a file or stdout, the API sends them as
a chunked response. Ids are hex, times Unix ns, money integer nano-USD (exact), missing
values empty (CSV) or null (JSON).

Example::

    for chunk in encode(request_records(store, window), REQUEST_COLUMNS, "csv"):
        out.write(chunk)
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, Literal

from ..store import MEASURES, SpanStore
from ..store.rollups import HOUR, MINUTE
from ..store.rows import FIELD_NAMES
from .window import TimeWindow

__all__ = [
    "EXPORT_FORMATS",
    "REQUEST_COLUMNS",
    "encode",
    "request_records",
    "rollup_columns",
    "rollup_records",
]

EXPORT_FORMATS: Final = ("csv", "json", "ndjson")
REQUEST_COLUMNS: Final = FIELD_NAMES
"""Every stored field of a request row, in storage order."""
_CHUNK_ROWS: Final = 500


def rollup_columns(granularity: Literal["minute", "hour"]) -> tuple[str, ...]:
    """Columns of a rollup export: bucket start (Unix seconds), dimensions, measures."""
    spec = MINUTE if granularity == "minute" else HOUR
    return (spec.bucket_column, *spec.dimensions, *MEASURES)


def request_records(
    store: SpanStore,
    window: TimeWindow,
    *,
    where: Mapping[str, str] | None = None,
    environment: str | None = None,
    data_mode: str | None = "real",
) -> Iterator[Sequence[Any]]:
    """Raw rows (every attempt, outer spans included) as value tuples in :data:`REQUEST_COLUMNS` order."""
    return store.scan_requests(
        window.start_ns,
        window.end_ns,
        columns=REQUEST_COLUMNS,
        where=where or {},
        environment=environment,
        data_mode=data_mode,
        billable_only=False,
    )


def rollup_records(
    store: SpanStore,
    window: TimeWindow,
    granularity: Literal["minute", "hour"],
    *,
    environment: str | None = None,
    data_mode: str | None = "real",
) -> Iterator[Sequence[Any]]:
    """Merged rollup groups as value tuples in :func:`rollup_columns` order."""
    columns = rollup_columns(granularity)
    for group in store.iter_rollup_groups(
        granularity, window.start_ns, window.end_ns, environment=environment, data_mode=data_mode
    ):
        yield tuple(group[name] for name in columns)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, bool):
        return int(value)
    return value


def encode(records: Iterable[Sequence[Any]], columns: Sequence[str], fmt: str) -> Iterator[str]:
    """Text chunks of ``records`` in ``fmt`` (a few hundred rows per chunk).

    Raises:
        ValueError: An unknown format.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if fmt == "csv":
        writer.writerow(columns)
    elif fmt == "json":
        buffer.write("[")
    first = True
    pending = 0
    for record in records:
        values = [_plain(value) for value in record]
        if fmt == "csv":
            writer.writerow(["" if value is None else value for value in values])
        else:
            text = json.dumps(dict(zip(columns, values, strict=True)), separators=(",", ":"))
            if fmt == "json":
                buffer.write(("\n" if first else ",\n") + text)
            else:
                buffer.write(text + "\n")
        first = False
        pending += 1
        if pending >= _CHUNK_ROWS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if fmt == "json":
        buffer.write("\n]\n")
    if buffer.tell():
        yield buffer.getvalue()
