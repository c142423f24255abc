"""Attribution scopes: nesting, decorators, async, baggage propagation, hashing, bad input."""

from __future__ import annotations

import asyncio
import importlib
import logging
import uuid

import pytest
from opentelemetry import baggage, context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanmeter import attribution
from spanmeter.identity import UserIdHasher, looks_hashed
from spanmeter.processor import current_attribution


def _attrs(exporter: InMemorySpanExporter, name: str) -> dict[str, object]:
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return dict(span.attributes or {})


def test_spans_inside_a_scope_are_stamped_and_nested_scopes_override(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    tracer = tracer_provider.get_tracer("t")
    with attribution(endpoint_tag="support.reply", tenant_id="t1", prompt_version="v1"):
        with tracer.start_as_current_span("outer"):
            with attribution(prompt_version="v2"), tracer.start_as_current_span("inner"):
                pass
        with tracer.start_as_current_span("after"):
            pass
    with tracer.start_as_current_span("outside"):
        pass
    assert _attrs(span_exporter, "outer")["gen_ai.prompt.version"] == "v1"
    inner = _attrs(span_exporter, "inner")
    assert inner["gen_ai.prompt.version"] == "v2"
    assert inner["spanmeter.endpoint_tag"] == "support.reply"
    assert inner["spanmeter.tenant_id"] == "t1"
    assert _attrs(span_exporter, "after")["gen_ai.prompt.version"] == "v1"
    assert "spanmeter.endpoint_tag" not in _attrs(span_exporter, "outside")


def test_instrumentation_values_are_not_overwritten(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    tracer = tracer_provider.get_tracer("t")
    with attribution(prompt_version="from-scope"):
        with tracer.start_as_current_span("s", attributes={"gen_ai.prompt.version": "from-span"}):
            pass
    assert _attrs(span_exporter, "s")["gen_ai.prompt.version"] == "from-span"


def test_decorator_sync_and_async(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    tracer = tracer_provider.get_tracer("t")

    @attribution(endpoint_tag="docs.summarize")
    def work() -> str:
        with tracer.start_as_current_span("sync"):
            return "done"

    @attribution(endpoint_tag="rag.answer")
    async def awork() -> str:
        with tracer.start_as_current_span("async"):
            await asyncio.sleep(0)
            return "adone"

    async def both() -> list[str]:
        return list(await asyncio.gather(awork(), awork()))

    assert work() == "done"
    assert asyncio.run(both()) == ["adone", "adone"]
    assert _attrs(span_exporter, "sync")["spanmeter.endpoint_tag"] == "docs.summarize"
    assert all(
        (s.attributes or {})["spanmeter.endpoint_tag"] == "rag.answer"
        for s in span_exporter.get_finished_spans()
        if s.name == "async"
    )
    assert current_attribution() == {}


def test_user_ids_are_hashed_where_they_enter() -> None:
    with attribution(user_id="bob@example.com") as scope:
        value = current_attribution()["user.id"]
        assert scope.dimensions["user.id"] == value
        assert baggage.get_baggage("user.id") == value
    assert value == UserIdHasher(b"test-key")("bob@example.com")
    assert looks_hashed(value)
    # already hashed ids are kept as they are
    digest = "a" * 64
    with attribution(user_id=digest):
        assert current_attribution()["user.id"] == digest


def test_baggage_carries_attribution_to_a_downstream_service(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    propagator = W3CBaggagePropagator()
    headers: dict[str, str] = {}
    with attribution(endpoint_tag="checkout.ai_summary", tenant_id="t9", user_id="carol", data_mode="test"):
        propagator.inject(headers)
    assert "carol" not in headers["baggage"]
    # the downstream service extracts the header into its own context
    downstream = propagator.extract(headers, context=context.Context())
    token = context.attach(downstream)
    try:
        with tracer_provider.get_tracer("downstream").start_as_current_span("remote"):
            pass
    finally:
        context.detach(token)
    attrs = _attrs(span_exporter, "remote")
    assert attrs["spanmeter.endpoint_tag"] == "checkout.ai_summary"
    assert attrs["spanmeter.tenant_id"] == "t9"
    assert attrs["spanmeter.data_mode"] == "test"
    assert attrs["user.id"] == UserIdHasher(b"test-key")("carol")


attribution_module = importlib.import_module("spanmeter.processor.attribution")  # the class shadows it


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Warnings are once per process: start each test as a new process would."""
    monkeypatch.setattr(attribution_module, "_warned", set())


def test_bad_values_are_dropped_with_a_warning_not_raised(
    caplog: pytest.LogCaptureFixture, fresh_warnings: None
) -> None:
    with (
        caplog.at_level(logging.WARNING),
        attribution(
            endpoint_tag=42,  # type: ignore[arg-type]  # ints are accepted as strings
            tenant_id=["x"],  # type: ignore[arg-type]
            data_mode="production",
            prompt_version="v" * 1000,
        ),
    ):
        dims = current_attribution()
    assert dims["spanmeter.endpoint_tag"] == "42"
    assert "spanmeter.tenant_id" not in dims
    assert "spanmeter.data_mode" not in dims
    assert len(dims["gen_ai.prompt.version"]) == 256
    assert "data_mode" in caplog.text


def test_a_bad_value_warns_once_per_parameter_and_reason_and_never_shows_the_value(
    caplog: pytest.LogCaptureFixture, fresh_warnings: None
) -> None:
    secret = uuid.uuid4()
    with caplog.at_level(logging.WARNING, logger="spanmeter.processor.attribution"):
        for _ in range(50):  # an app passing a UUID object on every request
            with attribution(tenant_id=secret, user_id=secret, data_mode="prod"):  # type: ignore[arg-type]
                assert "spanmeter.tenant_id" not in current_attribution()
        with attribution(tenant_id="x" * 300), attribution(tenant_id="y" * 300):
            pass
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 4, messages  # tenant_id type, user_id type, data_mode value, tenant_id length
    assert sum("tenant_id must be a string, got UUID" in m for m in messages) == 1
    assert sum("user_id must be a string" in m for m in messages) == 1
    assert sum("data_mode must be one of" in m for m in messages) == 1
    assert sum("tenant_id longer than 256" in m for m in messages) == 1
    assert not any(str(secret) in m or "prod" in m.split("one of")[0] or "xxx" in m for m in messages)
