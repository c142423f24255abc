"""One provider call, one billable span: the same-call rule, in the receiver and in the app.

The anthropic SDK traces its own calls (scope ``com.anthropic.sdk.python``) beside or under
the span of OpenLLMetry, OpenInference or pydantic-ai. Each case below is the shape those
pairs take on the wire (names from the packages, ids made up); exactly one span of each
pair may carry the cost, and the other is kept, not billable, naming the kept span.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanmeter.identity import UserIdHasher
from spanmeter.ingest import IngestMetrics, IngestPipeline
from spanmeter.normalise import normalize
from spanmeter.normalise.same_call import SameCallIndex
from spanmeter.pricing import PriceBook
from spanmeter.processor import CostSpanProcessor
from spanmeter.processor.enrichment import SpanEnricher
from spanmeter.store.rows import FIELD_NAMES
from support.ingest_plain import NoSink
from support.otlp_values import kv

BOOK = PriceBook()
SDK_SCOPE = "com.anthropic.sdk.python"
USAGE = {
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-3-5-haiku-20241022",
    "gen_ai.usage.input_tokens": 1300,
    "gen_ai.usage.output_tokens": 200,
    "gen_ai.usage.cache_read.input_tokens": 1000,
}
TRACE_A, TRACE_B = b"\x0a" * 16, b"\x0b" * 16


def span(
    trace_id: bytes, span_id: int, attributes: dict[str, Any], parent: int | None = None, start: int = 1
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name="chat",
        start_time_unix_nano=1_760_000_000_000_000_000 + start,
        end_time_unix_nano=1_760_000_001_000_000_000 + start,
        attributes=[kv(key, value) for key, value in attributes.items()],
    )


def request(*groups: tuple[str, list[Span]]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[ScopeSpans(scope={"name": scope}, spans=spans) for scope, spans in groups]
            )
        ]
    )


def rows_of(req: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    pipeline = IngestPipeline(NoSink(), BOOK, metrics=IngestMetrics(), user_id_hasher=UserIdHasher(b"k"))
    rows, counts, _ = pipeline._rows(req, 1_760_000_002_000_000_000)
    assert counts[0] == sum(len(s.spans) for r in req.resource_spans for s in r.scope_spans)
    return [dict(zip(FIELD_NAMES, row, strict=True)) for row in rows]


def billable_cost(rows: list[dict[str, Any]]) -> int:
    return sum(row["cost_nano_usd"] or 0 for row in rows if row["billable"])


def one_call_cost() -> int:
    record = normalize(USAGE)
    assert record is not None
    total = BOOK.price_record(record).total_nano_usd
    assert total is not None and total > 0
    return total


def test_same_response_id_in_two_traces_counts_once() -> None:
    # OpenLLMetry's span and the SDK's own span live in separate traces, same msg_ id
    instrumentation = span(TRACE_A, 1, {**USAGE, "gen_ai.response.id": "msg_01", "spanmeter.tenant_id": "t1"})
    sdk = span(TRACE_B, 2, {**USAGE, "gen_ai.response.id": "msg_01"})
    rows = rows_of(
        request(("opentelemetry.instrumentation.anthropic", [instrumentation]), (SDK_SCOPE, [sdk]))
    )
    assert len(rows) == 2
    assert billable_cost(rows) == one_call_cost()
    kept, duplicate = (rows[0], rows[1]) if rows[0]["billable"] else (rows[1], rows[0])
    assert kept["span_id"] == (1).to_bytes(8, "big")  # the richer attribution wins
    assert duplicate["pricing_status"] == "not_billable"
    assert duplicate["cost_nano_usd"] is None
    assert duplicate["duplicate_of"] == (1).to_bytes(8, "big").hex()
    assert duplicate["not_billable_reason"] == "same_response_id"
    assert duplicate["response_id"] == "msg_01"


def test_the_richer_span_is_kept_even_when_it_comes_second() -> None:
    sdk = span(TRACE_B, 2, {**USAGE, "gen_ai.response.id": "msg_02"})
    rich = span(
        TRACE_A, 1, {**USAGE, "gen_ai.response.id": "msg_02", "spanmeter.endpoint_tag": "support.reply"}
    )
    rows = rows_of(request((SDK_SCOPE, [sdk]), ("opentelemetry.instrumentation.anthropic", [rich])))
    by_span = {row["span_id"][-1]: row for row in rows}
    assert by_span[1]["billable"] and not by_span[2]["billable"]
    assert by_span[2]["duplicate_of"] == (1).to_bytes(8, "big").hex()
    assert billable_cost(rows) == one_call_cost()


def test_sdk_span_under_an_instrumentation_span_counts_once() -> None:
    # OpenInference's create: no response id on its span, the SDK's span is its child, and
    # OpenInference reports the cache-inclusive prompt count under its own names
    parent = span(
        TRACE_A,
        10,
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "anthropic",
            "llm.model_name": "claude-3-5-haiku-20241022",
            "llm.token_count.prompt": 1300,
            "llm.token_count.completion": 200,
            "llm.token_count.prompt_details.cache_read": 1000,
        },
    )
    child = span(TRACE_A, 11, {**USAGE, "gen_ai.response.id": "msg_03"}, parent=10)
    rows = rows_of(request((SDK_SCOPE, [child]), ("openinference.instrumentation.anthropic", [parent])))
    assert sum(row["billable"] for row in rows) == 1
    assert billable_cost(rows) == one_call_cost()
    duplicate = next(row for row in rows if not row["billable"])
    assert duplicate["not_billable_reason"] == "sdk_span_under_instrumentation"


def test_two_instrumentations_on_one_client_count_once() -> None:
    parent = span(TRACE_A, 20, dict(USAGE))
    child = span(TRACE_A, 21, dict(USAGE), parent=20)
    rows = rows_of(request(("langchain", [parent]), ("opentelemetry.instrumentation.anthropic", [child])))
    assert billable_cost(rows) == one_call_cost()
    assert next(row for row in rows if not row["billable"])["not_billable_reason"] == "same_usage_as_parent"


def test_different_calls_stay_billable() -> None:
    # a parent and child with different usage, and two calls with their own response ids
    other = {**USAGE, "gen_ai.usage.output_tokens": 50}
    spans = [
        span(TRACE_A, 30, {**USAGE, "gen_ai.response.id": "msg_a"}),
        span(TRACE_A, 31, {**other, "gen_ai.response.id": "msg_b"}, parent=30),
        span(TRACE_B, 32, {**USAGE, "gen_ai.response.id": "msg_c"}),
    ]
    rows = rows_of(request(("opentelemetry.instrumentation.anthropic", spans)))
    assert all(row["billable"] for row in rows)
    assert all(row["duplicate_of"] is None for row in rows)


def test_same_response_id_of_other_providers_are_other_calls() -> None:
    openai = {**USAGE, "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
    spans = [
        span(TRACE_A, 40, {**USAGE, "gen_ai.response.id": "x1"}),
        span(TRACE_B, 41, {**openai, "gen_ai.response.id": "x1"}),
    ]
    assert all(row["billable"] for row in rows_of(request(("s", spans))))


def test_a_duplicate_marked_by_the_app_is_stored_not_billable() -> None:
    marked = span(
        TRACE_A,
        50,
        {
            **USAGE,
            "spanmeter.pricing.status": "not_billable",
            "spanmeter.duplicate_of": "0000000000000033",
            "spanmeter.not_billable.reason": "same_response_id",
        },
    )
    agent = span(TRACE_A, 51, {**USAGE, "gen_ai.operation.name": "invoke_agent"})
    rows = rows_of(request((SDK_SCOPE, [marked, agent])))
    assert len(rows) == 1  # the agent span sums its children: not stored, as before
    assert rows[0]["billable"] is False
    assert rows[0]["duplicate_of"] == "0000000000000033"
    assert rows[0]["not_billable_reason"] == "same_response_id"


def test_index_memory_is_bounded() -> None:
    index: SameCallIndex[int] = SameCallIndex(replace_earlier=False, max_spans=8)
    record = normalize({**USAGE, "gen_ai.response.id": "m"})
    assert record is not None
    for i in range(100):
        index.add(i, record, TRACE_A, i.to_bytes(8, "big"), None)
        assert len(index) <= 8


# --- in the app: CostSpanProcessor ---------------------------------------------------------


def finished(provider_spans: list[tuple[str, dict[str, Any]]], nested: bool) -> list[Any]:
    """Spans ended through a CostSpanProcessor; the second nested in the first if asked."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(
        CostSpanProcessor(
            SimpleSpanProcessor(exporter), SpanEnricher(BOOK, user_id_hasher=UserIdHasher(b"k"))
        )
    )
    (outer_scope, outer_attrs), (inner_scope, inner_attrs) = provider_spans
    outer_tracer, inner_tracer = provider.get_tracer(outer_scope), provider.get_tracer(inner_scope)
    if nested:
        with outer_tracer.start_as_current_span("outer", attributes=outer_attrs):
            with inner_tracer.start_as_current_span("inner", attributes=inner_attrs):
                pass
    else:
        with outer_tracer.start_as_current_span(
            "outer", attributes=outer_attrs, context=trace.set_span_in_context(trace.INVALID_SPAN)
        ):
            pass
        with inner_tracer.start_as_current_span("inner", attributes=inner_attrs):
            pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


def test_processor_marks_the_sdk_span_beside_openllmetry() -> None:
    spans = finished(
        [
            ("opentelemetry.instrumentation.anthropic", {**USAGE, "gen_ai.response.id": "msg_9"}),
            (SDK_SCOPE, {**USAGE, "gen_ai.response.id": "msg_9"}),
        ],
        nested=False,
    )
    first, second = (dict(s.attributes) for s in spans)
    assert first["spanmeter.pricing.status"] == "priced"
    assert first["spanmeter.cost.nano_usd"] == one_call_cost()
    assert second["spanmeter.pricing.status"] == "not_billable"
    assert "spanmeter.cost.nano_usd" not in second and "gen_ai.usage.cost" not in second
    assert second["spanmeter.duplicate_of"] == format(spans[0].context.span_id, "016x")
    assert second["spanmeter.not_billable.reason"] == "same_response_id"


def test_processor_marks_the_instrumentation_span_over_an_sdk_child() -> None:
    # the SDK's child ends first and was exported priced: the parent is the duplicate
    spans = finished(
        [("openinference.instrumentation.anthropic", dict(USAGE)), (SDK_SCOPE, dict(USAGE))], nested=True
    )
    inner, outer = spans
    assert dict(inner.attributes)["spanmeter.pricing.status"] == "priced"
    outer_attrs = dict(outer.attributes)
    assert outer_attrs["spanmeter.pricing.status"] == "not_billable"
    assert outer_attrs["spanmeter.duplicate_of"] == format(inner.context.span_id, "016x")
    assert outer_attrs["spanmeter.not_billable.reason"] == "sdk_span_under_instrumentation"


# --- the fast paths give what the plain rule gives ------------------------------------------


def _reference_verdicts(
    spans: list[tuple[Any, bytes, bytes, bytes | None]], replace_earlier: bool
) -> list[tuple[int, int, bytes, str] | None]:
    """The rule written plainly (as SameCallIndex first was): records kept, helpers called."""
    from spanmeter.normalise.same_call import attribution_richness

    def usage(record: Any) -> tuple[object, ...] | None:
        if record.input_tokens is None and record.output_tokens is None:
            return None
        return (
            record.model,
            record.input_tokens,
            record.output_tokens,
            record.cache_read_tokens,
            record.cache_write_tokens,
            record.reasoning_tokens,
        )

    def pair(parent: Any, child: Any) -> str | None:
        if child.native_sdk and not parent.native_sdk:
            return "sdk_span_under_instrumentation"
        child_usage = usage(child)
        return "same_usage_as_parent" if child_usage is not None and child_usage == usage(parent) else None

    by_call: dict[Any, tuple[int, Any, bytes]] = {}
    by_span: dict[Any, tuple[int, Any, bytes]] = {}
    by_parent: dict[Any, tuple[int, Any, bytes]] = {}
    verdicts: list[tuple[int, int, bytes, str] | None] = []
    for handle, (record, trace_id, span_id, parent_id) in enumerate(spans):
        seen = (handle, record, span_id)
        key = (record.provider, record.response_id) if record.response_id else None
        twin, reason = None, None
        if key is not None and key in by_call:
            twin, reason = by_call[key], "same_response_id"
        if twin is None and parent_id and (trace_id, parent_id) in by_span:
            reason = pair(by_span[(trace_id, parent_id)][1], record)
            twin = by_span[(trace_id, parent_id)] if reason else None
        if twin is None and (trace_id, span_id) in by_parent:
            reason = pair(record, by_parent[(trace_id, span_id)][1])
            twin = by_parent[(trace_id, span_id)] if reason else None
        richer = (
            twin is not None
            and replace_earlier
            and attribution_richness(record) > attribution_richness(twin[1])
        )
        if twin is None or richer:
            if key is not None:
                by_call[key] = seen
            by_span[(trace_id, span_id)] = seen
            if parent_id:
                by_parent[(trace_id, parent_id)] = seen
        if twin is None or reason is None:
            verdicts.append(None)
        elif richer:
            verdicts.append((twin[0], handle, span_id, reason))
        else:
            verdicts.append((handle, twin[0], twin[2], reason))
    return verdicts


def test_the_index_gives_the_plain_rules_verdicts_on_random_spans() -> None:
    import random

    rng = random.Random(5)
    for replace_earlier in (True, False):
        verdicts = 0
        for _ in range(200):
            spans = []
            for i in range(rng.randint(1, 12)):
                attributes: dict[str, Any] = {
                    "gen_ai.provider.name": rng.choice(["anthropic", "openai"]),
                    "gen_ai.request.model": rng.choice(["claude-3-5-haiku-20241022", "gpt-4o"]),
                    "gen_ai.usage.input_tokens": rng.choice([10, 20]),
                }
                if rng.random() < 0.7:
                    attributes["gen_ai.usage.output_tokens"] = rng.choice([1, 2])
                if rng.random() < 0.5:
                    attributes["gen_ai.response.id"] = rng.choice(["msg_a", "msg_b", "msg_c"])
                if rng.random() < 0.4:
                    attributes["spanmeter.tenant_id"] = "t"
                if rng.random() < 0.3:
                    attributes["spanmeter.endpoint_tag"] = "e"
                scope = SDK_SCOPE if rng.random() < 0.4 else "openinference.instrumentation.anthropic"
                record = normalize(attributes, scope_name=scope)
                assert record is not None
                trace_id = rng.choice([TRACE_A, TRACE_B])
                span_id = (i + 1).to_bytes(8, "big")
                parent = rng.choice([None, *(j.to_bytes(8, "big") for j in range(1, 13))])
                spans.append((record, trace_id, span_id, parent))
            index: SameCallIndex[int] = SameCallIndex(replace_earlier=replace_earlier)
            got = []
            for handle, (record, trace_id, span_id, parent) in enumerate(spans):
                verdict = index.add(handle, record, trace_id, span_id, parent)
                got.append(
                    None
                    if verdict is None
                    else (verdict.duplicate, verdict.kept, verdict.kept_span_id, verdict.reason)
                )
            expected = _reference_verdicts(spans, replace_earlier)
            assert got == expected
            verdicts += sum(verdict is not None for verdict in expected)
        assert verdicts > 100  # the cases did pair, in each mode


def test_the_pairing_prefilter_never_misses_a_pair() -> None:
    import random

    from spanmeter.ingest.pipeline import _may_pair

    def plain(calls: list[Any]) -> bool:
        span_ids = {call[3] for call in calls}
        response_ids: set[str] = set()
        for call in calls:
            if call[4] and call[4] in span_ids:
                return True
            if call[1].response_id:
                if call[1].response_id in response_ids:
                    return True
                response_ids.add(call[1].response_id)
        return False

    rng = random.Random(9)
    records = [normalize({**USAGE, "gen_ai.response.id": rid}) for rid in ("m1", "m2", "m3", "m4")]
    records.append(normalize(USAGE))
    outcomes = set()
    for _ in range(2000):
        calls = []
        for i in range(rng.randint(2, 6)):
            parent = rng.choice([b"", (i + 7).to_bytes(8, "big"), rng.randint(1, 12).to_bytes(8, "big")])
            calls.append((i, rng.choice(records), TRACE_A, rng.randint(1, 12).to_bytes(8, "big"), parent))
        expected = plain(calls)
        assert _may_pair(calls) == expected
        outcomes.add(expected)
    assert outcomes == {True, False}


def test_the_processor_reads_the_sdks_attribute_dict_and_prices_alike() -> None:
    from spanmeter.processor.enrichment import _attribute_dict

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    attributes = {**USAGE, "gen_ai.response.id": "msg_x", "user.id": "u-1", "spanmeter.tenant_id": "t"}
    with provider.get_tracer("opentelemetry.instrumentation.anthropic").start_as_current_span(
        "chat", attributes=attributes
    ):
        pass
    (span,) = exporter.get_finished_spans()
    fast = _attribute_dict(span)
    assert type(fast) is dict  # the installed SDK keeps its attributes in a plain dict
    view: Any = span.attributes
    assert fast == dict(view)
    via_dict = SpanEnricher(BOOK, user_id_hasher=UserIdHasher(b"k")).extra_attributes_for(span)
    via_view = SpanEnricher(BOOK, user_id_hasher=UserIdHasher(b"k")).extra_attributes(
        span.attributes,
        span.resource.attributes,
        span_name=span.name,
        start_time_ns=span.start_time,
        end_time_ns=span.end_time,
        status_code=int(span.status.status_code.value),
        scope_name="opentelemetry.instrumentation.anthropic",
    )
    assert via_dict is not None and via_dict == via_view
    assert via_dict["spanmeter.cost.nano_usd"] == one_call_cost()
