"""OpenLLMetry's (Traceloop) Anthropic instrumentation, alone (the SDK's own span off) and
beside the anthropic SDK's own span (on by default in anthropic 2.x)."""

from __future__ import annotations

import pytest

from support.anthropic_calls import cost, create_message, sdk_span, stream_message
from support.matrix import MatrixApp
from support.provider_stub import ProviderStub

__all__ = ["sdk_span"]  # the fixture, imported for pytest


def test_message_priced_once(app: MatrixApp, stub: ProviderStub, sdk_span: bool) -> None:
    stored = create_message(app, stub, "openllmetry-anthropic")
    # beside the SDK's span: one call, two spans, the second stored as not billable
    assert stored.statuses() == (["not_billable", "priced"] if sdk_span else ["priced"])


def test_streamed_message_alone_has_one_output_token_too_many(
    app: MatrixApp, stub: ProviderStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream gap (opentelemetry-instrumentation-anthropic 0.62.4): on a stream it adds
    ``message_start``'s ``output_tokens: 1`` to ``message_delta``'s final (cumulative) count,
    so the span says 251 output tokens where the API said 250, and is priced as such.
    spanmeter cannot tell from the span; the anthropic SDK's own span is exact."""
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    stored = app.stored(stream_message(app, stub, "openllmetry-anthropic-stream"))
    row = stored.assert_exactly_once(cost(output_tokens=251))
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens) == (
        4500,
        3000,
        500,
        251,
    )
    assert stored.statuses() == ["priced"]


def test_streamed_message_with_sdk_span_priced_once_exactly(app: MatrixApp, stub: ProviderStub) -> None:
    """Beside the SDK's span, the call is counted once, at the SDK span's exact usage (the
    instrumentation's span, one output token over, is the duplicate)."""
    stored = app.stored(stream_message(app, stub, "openllmetry-anthropic-stream-sdk"))
    row = stored.assert_exactly_once(cost())
    assert row.output_tokens == 250
    assert stored.statuses() == ["not_billable", "priced"]
