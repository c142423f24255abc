"""OTLP body decoding: strict protobuf, the lenient UTF-8 repair fallback, and OTLP/JSON quirks."""

from __future__ import annotations

import base64
import copy
import json
import random
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanmeter.receiver import InvalidRequest, decode_json, decode_protobuf, decode_protobuf_detailed
from spanmeter.receiver._otlp_json import convert_request

TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")


def rich_request(marker: str = "") -> ExportTraceServiceRequest:
    """A request using every kind of string field OTLP traces have, each tagged with ``marker``."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add(schema_url=f"https://schema/{marker}")
    resource_spans.resource.attributes.add(key="service.name").value.string_value = f"svc{marker}"
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = f"scope{marker}"
    span = scope_spans.spans.add(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        name=f"span{marker}",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_001_000_000_000,
    )
    span.attributes.add(key=f"key{marker}").value.string_value = f"value{marker}"
    span.attributes.add(key="tokens").value.int_value = 1234
    span.attributes.add(key="raw").value.bytes_value = b"\xff\xfe raw bytes stay as they are"
    array = span.attributes.add(key="list").value.array_value
    array.values.add().string_value = f"item{marker}"
    kvlist = span.attributes.add(key="map").value.kvlist_value
    kvlist.values.add(key="inner").value.string_value = f"inner{marker}"
    span.events.add(name=f"event{marker}", time_unix_nano=5)
    span.links.add(trace_id=TRACE_ID, span_id=b"\xff" * 8, trace_state=f"ts{marker}")
    span.status.message = f"status{marker}"
    span.status.code = 2
    return request


# --------------------------------------------------------------------------- protobuf


def test_valid_protobuf_takes_the_strict_path() -> None:
    request = rich_request()
    decoded = decode_protobuf_detailed(request.SerializeToString())
    assert decoded.repaired_strings == 0
    assert decoded.request == request
    assert decode_protobuf(request.SerializeToString()) == request


def test_empty_body_is_an_empty_request() -> None:
    assert decode_protobuf(b"") == ExportTraceServiceRequest()


def test_invalid_utf8_in_every_string_field_is_repaired_not_rejected() -> None:
    body = rich_request("<#>").SerializeToString()
    strings = body.count(b"<#>")
    assert strings == 11
    decoded = decode_protobuf_detailed(body.replace(b"<#>", b"<\xff>"))  # same length: framing intact
    assert decoded.repaired_strings == strings
    # The same request with each bad byte replaced by U+FFFD; ids and bytes values untouched.
    assert decoded.request == rich_request("<\ufffd>")


def test_repair_keeps_valid_spans_and_counts_per_string() -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for name in ("ok-1", "BAD", "ok-2"):
        span = spans.add(name=name, trace_id=TRACE_ID, span_id=SPAN_ID)
        span.attributes.add(key="prompt").value.string_value = f"{name}-prompt"
    body = request.SerializeToString().replace(b"BAD-prompt", b"B\xc3D-prompt")
    decoded = decode_protobuf_detailed(body)
    assert decoded.repaired_strings == 1
    names = [span.name for span in decoded.request.resource_spans[0].scope_spans[0].spans]
    assert names == ["ok-1", "BAD", "ok-2"]
    assert decoded.request.resource_spans[0].scope_spans[0].spans[1].attributes[0].value.string_value == (
        "B\ufffdD-prompt"
    )


@pytest.mark.parametrize(
    "body",
    [
        rich_request().SerializeToString()[:-5],
        random.Random(42).randbytes(2048),
        b"\xff" * 32,
        b"\x0a\x80\x80\x80\x80\x10",  # length prefix far beyond the body
    ],
    ids=["truncated", "random", "bad-varint", "huge-length"],
)
def test_malformed_protobuf_is_invalid_request(body: bytes) -> None:
    with pytest.raises(InvalidRequest, match="not a valid protobuf"):
        decode_protobuf_detailed(body)


# --------------------------------------------------------------------------- JSON


def otlp_json(**span: Any) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def only_span(request: ExportTraceServiceRequest) -> Span:
    return request.resource_spans[0].scope_spans[0].spans[0]


@pytest.mark.parametrize("trace_id", [TRACE_ID.hex(), TRACE_ID.hex().upper()])
def test_json_ids_are_hex_in_any_case(trace_id: str) -> None:
    body = otlp_json(
        traceId=trace_id,
        spanId=SPAN_ID.hex().upper(),
        parentSpanId="",
        links=[{"traceId": trace_id, "spanId": "0102030405060708"}],
    )
    span = only_span(decode_json(body))
    assert len(span.trace_id) == 16
    assert span.trace_id == TRACE_ID
    assert span.span_id == SPAN_ID
    assert span.parent_span_id == b""
    assert (span.links[0].trace_id, span.links[0].span_id) == (TRACE_ID, bytes(range(1, 9)))


def test_json_int64_as_string_or_number_enums_as_ints_unknown_fields_ignored() -> None:
    body = json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [], "newResourceThing": 1},
                    "scopeSpans": [
                        {
                            "scope": {"name": "s"},
                            "spans": [
                                {
                                    "name": "chat",
                                    "kind": 3,
                                    "startTimeUnixNano": "1700000000000000000",
                                    "endTimeUnixNano": 1700000001000000000,
                                    "attributes": [
                                        {"key": "a", "value": {"intValue": "9007199254740993"}},
                                        {"key": "b", "value": {"intValue": 7}},
                                        {"key": "c", "value": {"bytesValue": "aGk="}},
                                        {"key": "d", "value": {"doubleValue": 0.5}},
                                    ],
                                    "status": {"code": 2, "message": "boom"},
                                    "unknownField": {"deep": [1, 2]},
                                }
                            ],
                        }
                    ],
                }
            ],
            "futureTopLevel": True,
        }
    ).encode()
    span = only_span(decode_json(body))
    assert span.kind == Span.SPAN_KIND_CLIENT
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (1700000000000000000, 1700000001000000000)
    values = {kv.key: kv.value for kv in span.attributes}
    assert values["a"].int_value == 9007199254740993  # beyond float precision: strings keep it exact
    assert values["b"].int_value == 7
    assert values["c"].bytes_value == b"hi"  # only the ids are hex; bytes values stay base64
    assert values["d"].double_value == 0.5
    assert (span.status.code, span.status.message) == (2, "boom")


def test_json_empty_object_and_bom_are_accepted() -> None:
    assert decode_json(b"{}") == ExportTraceServiceRequest()
    assert decode_json(b"\xef\xbb\xbf{}") == ExportTraceServiceRequest()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"resourceSpans": [', "not valid JSON"),
        (b'{"resourceSpans": "\xff"}', "not valid UTF-8"),
        (b"", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b"[" * 100_000, "not valid JSON"),
        (otlp_json(traceId="not-hex"), "traceId is not a hex string"),
        (otlp_json(spanId="abc"), "spanId is not a hex string"),
        (otlp_json(name="lone \ud800 surrogate"), "does not match"),
        (json.dumps({"resourceSpans": {"x": 1}}).encode(), "does not match"),
    ],
    ids=["malformed", "utf8", "empty", "array", "deep", "hex", "odd-hex", "surrogate", "schema"],
)
def test_bad_json_is_invalid_request(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        decode_json(body)


def test_json_schema_errors_name_the_field_but_not_the_value() -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_json(otlp_json(startTimeUnixNano="secret-payload-value"))
    assert "startTimeUnixNano" in str(info.value)
    assert "startTimeUnixNano" in info.value.field
    assert "secret-payload-value" not in str(info.value)


# --------------------------------------------------------------------------- fast JSON path vs json_format


def reference_json_decode(document: dict[str, Any]) -> ExportTraceServiceRequest:
    """What json_format makes of an OTLP/JSON document once its hex ids are base64."""
    document = copy.deepcopy(document)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for holder in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"):
                        if holder.get(key):
                            holder[key] = base64.b64encode(bytes.fromhex(holder[key])).decode()
    return json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)


def otlp_json_document(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """Proto3 JSON of ``request`` turned into OTLP/JSON: hex ids, integer enums."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for holder in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in holder:
                            holder[key] = base64.b64decode(holder[key]).hex()
    return document


def test_fast_json_path_takes_typical_documents_and_matches_json_format() -> None:
    request = rich_request("x")
    document = otlp_json_document(request)
    assert convert_request(document) == request  # no fallback needed
    assert reference_json_decode(document) == request
    assert decode_json(json.dumps(document).encode()) == request


SPAN_VARIANTS: list[dict[str, Any]] = [
    {"kind": "SPAN_KIND_SERVER"},  # enum names: not OTLP, but proto3 JSON accepts them
    {"start_time_unix_nano": 5, "trace_id": "0a0b"},  # proto field names instead of lowerCamelCase
    {"trace_id": "0a0b", "kind": "SPAN_KIND_CLIENT"},  # the same on the json_format path
    {"attributes": [{"key": "f", "value": {"doubleValue": "NaN"}}]},
    {"attributes": [{"key": "f", "value": {"doubleValue": "-Infinity"}}]},
    {"attributes": [{"key": "b", "value": {"bytesValue": "-_8"}}]},  # URL-safe base64 without padding
    {"attributes": [{"key": "n", "value": None}]},
    {
        "attributes": [
            {"key": "k", "value": {"kvlistValue": {"values": [{"key": "a", "value": {"boolValue": True}}]}}}
        ]
    },
    {"attributes": [{"key": "l", "value": {"arrayValue": {"values": [{"intValue": "-3"}, {}]}}}]},
    {"attributes": [{"key": "x", "value": {"stringValue": "a", "extra": 1}}]},
    {"name": None, "status": None, "events": [{"name": "e", "timeUnixNano": "7", "attributes": []}]},
    {"droppedAttributesCount": 3.0, "flags": 256},
]


@pytest.mark.parametrize("span", SPAN_VARIANTS)
def test_decode_json_agrees_with_json_format(span: dict[str, Any]) -> None:
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    assert decode_json(json.dumps(document).encode()) == reference_json_decode(document)
