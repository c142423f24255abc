"""Parsing span attributes as a map gives exactly the rows the ``KeyValue`` list gave.

The pipeline reads protobuf bodies through :data:`~spanmeter.ingest.extract.INGEST_REQUEST_TYPE`
(``Span.attributes`` as ``map<string, AnyValue>``, the same wire format). Each check here
builds rows the plain way, from ``ExportTraceServiceRequest`` and its ``KeyValue`` lists
(:func:`~spanmeter.ingest.iter_spans`, the last of a repeated key winning), and compares them
field by field with the pipeline's rows from the map twin: the normaliser's fixtures, the
benchmark's requests, random spans with every value kind and repeated keys, and hostile bodies
(mutated bytes, invalid UTF-8 through the lenient repair, 10,000 attributes).
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from spanmeter.identity import UserIdHasher
from spanmeter.ingest import IngestMetrics, IngestPipeline
from spanmeter.ingest.extract import INGEST_REQUEST_TYPE, as_ingest_request
from spanmeter.normalise.same_call import SameCallIndex
from spanmeter.pricing import CostPolicy, PriceBook
from spanmeter.receiver.contract import InvalidRequest, handler_request_type
from spanmeter.receiver.decode import decode_protobuf_detailed
from spanmeter.semantic_conventions import NORMALIZER_KEYS
from spanmeter.store.rows import RowValues, priced_values
from support.ingest_plain import NoSink, plain_records
from support.normalize_cases import ALL_CASES, Case
from support.otlp_values import kv

BENCH_INGEST = Path(__file__).resolve().parents[2] / "bench" / "ingest.py"
BOOK = PriceBook.from_env()
HASHER = UserIdHasher(b"shadow-test-key")
RECEIVED_AT = 1_760_000_000_000_000_000


def pipeline() -> IngestPipeline:
    return IngestPipeline(NoSink(), BOOK, metrics=IngestMetrics(), user_id_hasher=HASHER)


def plain_rows(request: ExportTraceServiceRequest) -> list[RowValues]:
    """Rows built from the ``KeyValue`` lists with the plain helpers, no map involved; spans
    of one provider call demoted as the same-call rule says (its own tests are elsewhere)."""
    found = list(plain_records(request, HASHER))
    index: SameCallIndex[int] = SameCallIndex(replace_earlier=True)
    for position, (span, record, _) in enumerate(found):
        if not (record.billable and record.has_usage):
            continue
        verdict = index.add(position, record, span.trace_id, span.span_id, span.parent_span_id)
        if verdict is not None:
            duplicate = found[verdict.duplicate][1]
            duplicate.billable = False
            duplicate.duplicate_of = verdict.kept_span_id.hex()
            duplicate.not_billable_reason = verdict.reason
    return [
        priced_values(
            record,
            BOOK.price_record_fields(record, CostPolicy.PREFER_PROVIDER),
            span.trace_id,
            span.span_id,
            RECEIVED_AT,
            service,
        )
        for span, record, service in found
    ]


def shadow_rows(body: bytes) -> list[RowValues]:
    """Rows the pipeline builds from ``body`` parsed as the receiver parses it for the pipeline."""
    decoded = decode_protobuf_detailed(body, handler_request_type(pipeline()))
    assert type(decoded.request) is INGEST_REQUEST_TYPE
    rows, _, _ = pipeline()._rows(decoded.request, RECEIVED_AT)
    return rows


def assert_same_rows(request: ExportTraceServiceRequest) -> int:
    expected = plain_rows(request)
    body = request.SerializeToString()
    assert shadow_rows(body) == expected
    # a caller holding an ExportTraceServiceRequest (OTLP/JSON, tests) gets the same rows
    assert pipeline()._rows(request, RECEIVED_AT)[0] == expected
    return len(expected)


def request_of(
    spans: list[list[KeyValue]], resource: dict[str, Any] | None = None
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    for key, value in (resource or {"service.name": "checkout"}).items():
        resource_spans.resource.attributes.append(kv(key, value))
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "opentelemetry.instrumentation.openai_v2"
    for n, attributes in enumerate(spans):
        span = scope.spans.add()
        span.trace_id = (n + 1).to_bytes(16, "big")
        span.span_id = (n + 1).to_bytes(8, "big")
        span.name = "chat gpt-4o"
        span.start_time_unix_nano = RECEIVED_AT - 5_000_000_000 + n
        span.end_time_unix_nano = span.start_time_unix_nano + 1_234_500_000
        span.attributes.extend(attributes)
    return request


def _otlp_value(value: Any) -> Any:
    """A fixture value as ``kv`` takes it: tuples become arrays, odd types their text."""
    if isinstance(value, tuple | list):
        return [_otlp_value(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _case_request(case: Case) -> ExportTraceServiceRequest:
    attributes = [kv(k, _otlp_value(v)) for k, v in case.attributes.items()]
    resource = {k: _otlp_value(v) for k, v in case.resource.items()}
    request = request_of([attributes], resource or None)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.name = case.span_name or ""
    status: Any = span.status  # an int enum value, typed as the enum
    status.code = case.status_code
    request.resource_spans[0].scope_spans[0].scope.name = case.scope_name or ""
    return request


@pytest.mark.parametrize("case", ALL_CASES.values(), ids=ALL_CASES.keys())
def test_normalizer_fixtures_give_the_same_rows(case: Case) -> None:
    assert_same_rows(_case_request(case))


def test_the_benchmark_requests_give_the_same_rows() -> None:
    spec = importlib.util.spec_from_file_location("spanmeter_bench_ingest", BENCH_INGEST)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    stored = 0
    for body in bench.build_requests(2):
        stored += assert_same_rows(ExportTraceServiceRequest.FromString(body))
    assert stored == 1024  # every benchmark span is a billable GenAI span


_KEYS = sorted(NORMALIZER_KEYS)


def _random_value(rng: random.Random) -> AnyValue | None:
    kind = rng.randrange(11)
    if kind == 0:
        return None  # a key without a value
    if kind == 1:
        return AnyValue()  # a value with no member set
    if kind == 2:
        return AnyValue(int_value=rng.choice([0, 1, -3, 120, 2**40]))
    if kind == 3:
        return AnyValue(double_value=rng.choice([0.0, 0.5, 12.0, -1.0]))
    if kind == 4:
        return AnyValue(bool_value=rng.random() < 0.5)
    if kind == 5:
        values = [AnyValue(string_value=rng.choice(["a", "b"])) for _ in range(rng.choice([0, 2, 70]))]
        value = AnyValue()
        value.array_value.values.extend(values)
        return value
    if kind == 6:
        return AnyValue(bytes_value=b"\x00\xff")
    if kind == 7:
        value = AnyValue()
        value.kvlist_value.values.append(kv("x", "y"))
        return value
    return AnyValue(
        string_value=rng.choice(
            ["", "openai", "anthropic", "chat", "gpt-4o", "claude-3-5-sonnet", "error", "17"]
        )
    )


def _random_span(rng: random.Random) -> list[KeyValue]:
    attributes = [kv("gen_ai.system", "openai"), kv("gen_ai.request.model", "gpt-4o")]
    attributes += [kv("gen_ai.usage.input_tokens", 100), kv("gen_ai.usage.output_tokens", 20)]
    for _ in range(rng.randrange(25)):
        key = rng.choice(_KEYS) if rng.random() < 0.7 else rng.choice(["http.method", "", "x", "gen_ai"])
        value = _random_value(rng)
        attributes.append(KeyValue(key=key) if value is None else KeyValue(key=key, value=value))
    if rng.random() < 0.3:
        attributes.append(rng.choice(attributes))  # a repeated key, its last value wins
    rng.shuffle(attributes)
    return attributes


@pytest.mark.parametrize("seed", range(12))
def test_random_spans_give_the_same_rows(seed: int) -> None:
    rng = random.Random(seed)
    assert_same_rows(request_of([_random_span(rng) for _ in range(60)]))


def test_a_repeated_key_keeps_its_last_value_even_when_empty() -> None:
    base = [kv("gen_ai.system", "openai"), kv("gen_ai.usage.input_tokens", 100)]
    last_empty = [*base, kv("gen_ai.request.model", "gpt-4o"), kv("gen_ai.request.model", None)]
    last_set = [*base, kv("gen_ai.request.model", "x"), kv("gen_ai.request.model", "gpt-4o")]
    request = request_of([last_empty, last_set])
    assert assert_same_rows(request) == 2
    shadow = as_ingest_request(request)
    spans = shadow.resource_spans[0].scope_spans[0].spans
    assert not spans[0].attributes["gen_ai.request.model"].HasField("string_value")
    assert spans[1].attributes["gen_ai.request.model"].string_value == "gpt-4o"


def test_ten_thousand_attributes_give_the_same_rows() -> None:
    noise = [kv(f"app.attribute.{i}", i) for i in range(10_000)]
    request = request_of([[*noise, kv("gen_ai.system", "openai"), kv("gen_ai.request.model", "gpt-4o")]])
    assert assert_same_rows(request) == 1


def _valid_body() -> bytes:
    return request_of([_random_span(random.Random(n)) for n in range(4)]).SerializeToString()


def test_invalid_utf8_is_repaired_the_same_way() -> None:
    span = [kv("gen_ai.system", "openai"), kv("gen_ai.usage.input_tokens", 100)]
    good = request_of([[*span, kv("gen_ai.request.model", "gpt-4o-mini")], span]).SerializeToString()
    model = b"gpt-4o-mini"
    assert good.count(model) == 1
    bad = good.replace(model, b"gp\xff-4o-mini", 1)
    strict = decode_protobuf_detailed(bad)
    shadow = decode_protobuf_detailed(bad, INGEST_REQUEST_TYPE)
    assert strict.repaired_strings == shadow.repaired_strings >= 1
    assert type(shadow.request) is INGEST_REQUEST_TYPE
    rows, _, _ = pipeline()._rows(shadow.request, RECEIVED_AT)
    assert rows == plain_rows(strict.request)
    assert any("gp\ufffd-4o-mini" in value for row in rows for value in row if isinstance(value, str))


def _outcome(body: bytes, request_type: Any) -> Any:
    try:
        decoded = decode_protobuf_detailed(body, request_type)
    except InvalidRequest:
        return "invalid"
    return decoded


def test_mutated_bodies_are_judged_alike_and_give_the_same_rows() -> None:
    rng = random.Random(7)
    good = _valid_body()
    judged = {"invalid": 0, "decoded": 0}
    for _ in range(400):
        body = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            choice = rng.randrange(3)
            at = rng.randrange(len(body))
            if choice == 0:
                body[at] = rng.randrange(256)
            elif choice == 1:
                del body[at:]
            else:
                body[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
        strict = _outcome(bytes(body), None)
        shadow = _outcome(bytes(body), INGEST_REQUEST_TYPE)
        if strict == "invalid":
            assert shadow == "invalid"
            judged["invalid"] += 1
            continue
        assert shadow != "invalid"
        judged["decoded"] += 1
        assert shadow.repaired_strings == strict.repaired_strings
        expected = plain_rows(strict.request)
        assert pipeline()._rows(shadow.request, RECEIVED_AT)[0] == expected
    assert judged["invalid"] > 20 and judged["decoded"] > 20  # both kinds were exercised


def test_random_bytes_fail_alike() -> None:
    rng = random.Random(3)
    for _ in range(300):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        strict = _outcome(body, None)
        shadow = _outcome(body, INGEST_REQUEST_TYPE)
        assert (strict == "invalid") == (shadow == "invalid")
        if strict != "invalid":
            assert pipeline()._rows(shadow.request, RECEIVED_AT)[0] == plain_rows(strict.request)


def test_the_twin_round_trips_the_wire_format() -> None:
    request = request_of([_random_span(random.Random(n)) for n in range(5)])
    shadow = as_ingest_request(request)
    assert ExportTraceServiceRequest.FromString(shadow.SerializeToString()).resource_spans[0].resource == (
        request.resource_spans[0].resource
    )
    assert as_ingest_request(shadow) is shadow
    with pytest.raises(DecodeError):
        INGEST_REQUEST_TYPE.FromString(b"\x0a\x05\x0a")  # truncated
