"""What every store does the same way when it claims provider calls: which rows take part,
the key of a call, the minutes probed for it, and how a later span of a stored call is
demoted. Only the lookups and inserts are the store's own (see
:mod:`spanmeter.store.sqlite.provider_calls` for why the table is keyed this way)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from ..normalise.same_call import NATIVE_SDK_PROVIDERS
from ..timeunits import NS_PER_MINUTE, NS_PER_SECOND
from .rows import SpanRow

__all__ = ["EDGE_NS", "call_key", "candidates", "decide", "demote", "probes"]

EDGE_NS: Final = 10 * NS_PER_SECOND
"""Within this of a minute's edge, the neighbouring minute is probed too."""

CallOwner = tuple[bytes, bytes]
"""The (trace id, span id) of the span carrying a call."""


def call_key(row: SpanRow) -> bytes:
    """8-byte hash of provider and response id: one provider call."""
    text = f"{row.provider or ''}\0{row.response_id}".encode()
    return hashlib.blake2b(text, digest_size=8).digest()


def candidates(rows: Sequence[SpanRow]) -> list[SpanRow]:
    """Rows that claim a call: billable, with a response id, of a provider whose SDK traces
    itself (the per-request pairing covers every other provider)."""
    return [row for row in rows if row.provider in NATIVE_SDK_PROVIDERS and row.response_id and row.billable]


def probes(rows: Sequence[SpanRow], keys: Sequence[bytes]) -> list[tuple[int, bytes]]:
    """(minute, key) pairs to look up: each row's own minute, and the next or previous one
    when it starts within :data:`EDGE_NS` of that edge."""
    found: list[tuple[int, bytes]] = []
    for row, key in zip(rows, keys, strict=True):
        minute, into = divmod(row.event_time_ns, NS_PER_MINUTE)
        found.append((minute, key))
        if into < EDGE_NS:
            found.append((minute - 1, key))
        elif into >= NS_PER_MINUTE - EDGE_NS:
            found.append((minute + 1, key))
    return found


def decide(
    rows: Sequence[SpanRow], keys: Sequence[bytes], stored: dict[bytes, CallOwner]
) -> tuple[int, list[tuple[int, bytes, bytes, bytes]]]:
    """Demote each row whose call another span carries (``stored``: the owners found, updated
    in place as rows claim new calls). Returns the number demoted and the new claims as
    ``(minute, key, trace_id, span_id)``."""
    demoted = 0
    fresh: list[tuple[int, bytes, bytes, bytes]] = []
    for row, key in zip(rows, keys, strict=True):
        kept = stored.get(key)
        if kept is None:
            stored[key] = (row.trace_id, row.span_id)
            fresh.append((row.event_time_ns // NS_PER_MINUTE, key, row.trace_id, row.span_id))
        elif kept != (row.trace_id, row.span_id):  # the same span again is a re-delivery
            demote(row, kept[1])
            demoted += 1
    return demoted, fresh


def demote(row: SpanRow, kept_span_id: bytes) -> None:
    """The row as ingest would have built it, had it known: not billable, no cost."""
    row.billable = False
    row.duplicate_of = kept_span_id.hex()
    row.not_billable_reason = "same_response_id"
    row.pricing_status = "not_billable"
    row.cost_nano_usd = row.input_cost_nano_usd = row.output_cost_nano_usd = None
    row.cache_read_cost_nano_usd = row.cache_write_cost_nano_usd = row.reasoning_cost_nano_usd = None
    row.pricing_source = row.pricing_source_version = row.pricing_provider = None
    row.pricing_model = row.pricing_effective_date = None
