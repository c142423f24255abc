"""OpenInference's Anthropic instrumentation, alone (the SDK's own span off) and
beside the anthropic SDK's own span (on by default in anthropic 2.x)."""

from __future__ import annotations

from support.anthropic_calls import cost, create_message, sdk_span, stream_message
from support.matrix import MatrixApp
from support.provider_stub import ProviderStub

__all__ = ["sdk_span"]  # the fixture, imported for pytest


def test_message_priced_once(app: MatrixApp, stub: ProviderStub, sdk_span: bool) -> None:
    stored = create_message(app, stub, "openinference-anthropic")
    # beside the SDK's span: one call, two spans, the second stored as not billable
    assert stored.statuses() == (["not_billable", "priced"] if sdk_span else ["priced"])


def test_streamed_message_priced_once(app: MatrixApp, stub: ProviderStub, sdk_span: bool) -> None:
    stored = app.stored(stream_message(app, stub, "openinference-anthropic-stream"))
    row = stored.assert_exactly_once(cost())
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens) == (
        4500,
        3000,
        500,
        250,
    )
    assert stored.statuses() == (["not_billable", "priced"] if sdk_span else ["priced"])
