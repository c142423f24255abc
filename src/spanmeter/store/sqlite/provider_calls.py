"""Provider calls already stored, by response id: one call, one billable span, across requests.

The ingest pipeline pairs the spans of one provider call within an OTLP request
(:mod:`spanmeter.normalise.same_call`). Two spans of one call can also arrive in
different requests: the anthropic SDK's own span lives in a trace of its own beside
OpenLLMetry's, so a Collector's load-balancing exporter sends the two to different
replicas, and an export batch boundary may fall between them. Here the store remembers, for
every billable row of a provider whose SDK traces itself
(:data:`~spanmeter.normalise.same_call.NATIVE_SDK_PROVIDERS`) and that carries a
response id, which span carries that call, and demotes a later span of the same call (same
provider and response id, another span) to ``not_billable`` with the kept span's id, before
its row is inserted and counted. Spans of other providers have no second span travelling
apart: the per-request pairing covers them, and they pay nothing here.

The table is keyed by (event minute, 8-byte hash of provider and response id), leading with
the time as ``requests``' own delivery index does, so keys are appended at the right edge of
the b-tree instead of on random pages (see :mod:`.schema` for what random keys cost). The
spans of one call start within a second of each other, so a key is looked for in its own
minute, and in the minute next to it when it starts within ``_EDGE_NS`` of that one. The
lookup is a join of the probed keys (a ``VALUES`` list) with the table, one primary-key
seek per probe: ``(minute, call_key) IN (VALUES ...)`` scans the whole table instead.
Keys go with the raw rows at retention.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from ..call_claims import CallOwner, call_key, candidates, decide, probes
from ..rows import SpanRow

__all__ = ["DELETE_EXPIRED", "claim_provider_calls"]

_PROBES_PER_QUERY: Final = 999 // 2
"""Two bound values per probed key; under SQLite's oldest default limit on variables."""
DELETE_EXPIRED: Final = (
    "DELETE FROM provider_calls WHERE (minute, call_key) IN"
    " (SELECT minute, call_key FROM provider_calls WHERE minute < ? ORDER BY minute LIMIT ?)"
)
"""Retention: keys of calls whose minute is before the raw rows' cutoff (in minutes)."""


def claim_provider_calls(conn: sqlite3.Connection, rows: Sequence[SpanRow]) -> int:
    """Record the calls of ``rows`` (billable, with a response id) and demote each row whose
    call another span already carries, stored before or earlier in ``rows``. Returns how
    many rows were demoted; runs inside the caller's write transaction."""
    claiming = candidates(rows)
    if not claiming:
        return 0
    keys = [call_key(row) for row in claiming]
    probed = probes(claiming, keys)
    stored: dict[bytes, CallOwner] = {}
    for start in range(0, len(probed), _PROBES_PER_QUERY):
        chunk = probed[start : start + _PROBES_PER_QUERY]
        sql = (
            f"SELECT p.call_key, p.trace_id, p.span_id FROM (VALUES {','.join(['(?, ?)'] * len(chunk))})"
            " AS v JOIN provider_calls AS p ON p.minute = v.column1 AND p.call_key = v.column2"
        )
        for key, trace_id, span_id in conn.execute(sql, [value for probe in chunk for value in probe]):
            stored[key] = (trace_id, span_id)
    demoted, fresh = decide(claiming, keys, stored)
    if fresh:
        conn.executemany("INSERT OR IGNORE INTO provider_calls VALUES (?, ?, ?, ?)", fresh)
    return demoted
