"""Provider calls already stored, by response id: one call, one billable span, across requests.

The ingest pipeline pairs the spans of one provider call within an OTLP request
(:mod:`spanmeter.semantic_conventions.same_call`). Two spans of one call can also arrive in
different requests: the anthropic SDK's own span lives in a trace of its own beside
OpenLLMetry's, so a Collector's load-balancing exporter sends the two to different
replicas, and an export batch boundary may fall between them. Here the store remembers, for
every billable row carrying a provider response id, which span carries that call, and
demotes a later span of the same call (same provider and response id, another span) to
``not_billable`` with the kept span's id, before its row is inserted and counted.

The table is keyed by (event minute, 8-byte hash of provider and response id), leading with
the time as ``requests``' own delivery index does, so keys are appended at the right edge of
the b-tree instead of on random pages (see :mod:`.schema` for what random keys cost). The
spans of one call start within seconds of each other, so a key is looked for in its own
minute and the ones either side. Keys go with the raw rows at retention.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from typing import Final

from ..rows import SpanRow

__all__ = ["DELETE_EXPIRED", "claim_provider_calls"]

_NS_PER_MINUTE: Final = 60 * 1_000_000_000
_PROBES_PER_QUERY: Final = 999 // 2
"""Two bound values per probed key; under SQLite's oldest default limit on variables."""
DELETE_EXPIRED: Final = (
    "DELETE FROM provider_calls WHERE (minute, call_key) IN"
    " (SELECT minute, call_key FROM provider_calls WHERE minute < ? ORDER BY minute LIMIT ?)"
)
"""Retention: keys of calls whose minute is before the raw rows' cutoff (in minutes)."""


def _call_key(row: SpanRow) -> bytes:
    text = f"{row.provider or ''}\0{row.response_id}".encode()
    return hashlib.blake2b(text, digest_size=8).digest()


def claim_provider_calls(conn: sqlite3.Connection, rows: Sequence[SpanRow]) -> int:
    """Record the calls of ``rows`` (billable, with a response id) and demote each row whose
    call another span already carries, stored before or earlier in ``rows``. Returns how
    many rows were demoted; runs inside the caller's write transaction."""
    claims: dict[bytes, tuple[int, SpanRow]] = {}
    for row in rows:
        if row.billable and row.response_id:
            key = _call_key(row)
            if key not in claims:
                claims[key] = (row.event_time_ns // _NS_PER_MINUTE, row)
    if not claims:
        return 0
    stored: dict[bytes, tuple[bytes, bytes]] = {}
    probes = [(minute + shift, key) for key, (minute, _) in claims.items() for shift in (-1, 0, 1)]
    for start in range(0, len(probes), _PROBES_PER_QUERY):
        chunk = probes[start : start + _PROBES_PER_QUERY]
        sql = (
            "SELECT call_key, trace_id, span_id FROM provider_calls WHERE (minute, call_key) IN"
            f" (VALUES {','.join(['(?, ?)'] * len(chunk))})"
        )
        for key, trace_id, span_id in conn.execute(sql, [value for probe in chunk for value in probe]):
            stored[key] = (trace_id, span_id)
    demoted = 0
    fresh: list[tuple[int, bytes, bytes, bytes]] = []
    for row in rows:
        if not (row.billable and row.response_id):
            continue
        key = _call_key(row)
        kept = stored.get(key)
        if kept is None:
            stored[key] = (row.trace_id, row.span_id)
            fresh.append((row.event_time_ns // _NS_PER_MINUTE, key, row.trace_id, row.span_id))
        elif kept != (row.trace_id, row.span_id):  # the same span again is a re-delivery
            _demote(row, kept[1])
            demoted += 1
    if fresh:
        conn.executemany("INSERT OR IGNORE INTO provider_calls VALUES (?, ?, ?, ?)", fresh)
    return demoted


def _demote(row: SpanRow, kept_span_id: bytes) -> None:
    """The row as ingest would have built it, had it known: not billable, no cost."""
    row.billable = False
    row.duplicate_of = kept_span_id.hex()
    row.not_billable_reason = "same_response_id"
    row.pricing_status = "not_billable"
    row.cost_nano_usd = row.input_cost_nano_usd = row.output_cost_nano_usd = None
    row.cache_read_cost_nano_usd = row.cache_write_cost_nano_usd = row.reasoning_cost_nano_usd = None
    row.pricing_source = row.pricing_source_version = row.pricing_provider = None
    row.pricing_model = row.pricing_effective_date = None
