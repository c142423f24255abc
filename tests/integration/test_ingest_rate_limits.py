"""Per-key ingest rate limits on the real receiver: a key over its limit is answered with a
retryable 429 / RESOURCE_EXHAUSTED carrying its retry delay, nothing of that request is stored,
the refused spans are counted on ``/metrics``, other keys are unaffected, and the key exports
again once it waited.

Real ``ReceiverService`` on 127.0.0.1 (ports 0), real SQLite store, keys made with the CLI,
raw OTLP requests (to read the exact answers) and the real OTel SDK exporters (which must
back off and resend on their own).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import google.rpc.error_details_pb2 as error_details_pb2
import google.rpc.status_pb2 as status_pb2
import grpc
import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SpanExportResult
from prometheus_client.parser import text_string_to_metric_families

from spanmeter.cli import main
from spanmeter.service import ReceiverService, ServeConfig
from support.sdk_spans import chat_spans

_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _make_key(db: Path, name: str, *extra: str) -> str:
    args = [
        "keys",
        "create",
        "--name",
        name,
        "--scope",
        "ingest",
        *extra,
        "--format",
        "json",
        "--store",
        str(db),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return str(json.loads(result.output)["key"])


def _request(spans: int) -> bytes:
    """``spans`` GenAI spans with fresh ids (none deduplicated away)."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    now = time.time_ns()
    for _ in range(spans):
        span = scope.spans.add(name="chat gpt-4o-mini", trace_id=os.urandom(16), span_id=os.urandom(8))
        span.start_time_unix_nano, span.end_time_unix_nano = now - 10**9, now
        for key, text in (
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.provider.name", "openai"),
            ("gen_ai.request.model", "gpt-4o-mini"),
        ):
            span.attributes.add(key=key).value.string_value = text
        span.attributes.add(key="gen_ai.usage.input_tokens").value.int_value = 100
        span.attributes.add(key="gen_ai.usage.output_tokens").value.int_value = 10
    return request.SerializeToString()


def _post(port: int, body: bytes, key: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/traces",
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def _refused_spans(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        sample.labels["key"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "spanmeter_ingest_rate_limited_spans"
        for sample in family.samples
        if sample.name == "spanmeter_ingest_rate_limited_spans_total"
    }


def _metric(port: int, sample_name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return next(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == sample_name
    )


def _retry_delay_s(status: status_pb2.Status) -> float:
    infos = [d for d in status.details if d.TypeName() == "google.rpc.RetryInfo"]
    assert len(infos) == 1
    info = error_details_pb2.RetryInfo()
    infos[0].Unpack(info)
    return info.retry_delay.ToNanoseconds() / 1e9


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[ReceiverService, Path]]:
    db = tmp_path / "limits.db"
    config = ServeConfig(db=str(db), grpc_port=0, http_port=0, store_process=False)
    with ReceiverService(config) as service:
        yield service, db


def test_a_key_over_its_limit_is_refused_retryably_and_nothing_of_it_is_stored(
    receiver: tuple[ReceiverService, Path],
) -> None:
    service, db = receiver
    slow = _make_key(db, "slow", "--rate-limit", "10")
    free = _make_key(db, "free")
    assert service.http_port is not None and service.grpc_port is not None
    port = service.http_port

    # 30 spans: three seconds' worth, admitted on a full bucket, which is then 20 in debt,
    # so the next requests are refused for ~2.5 s however slowly this machine runs them.
    assert _post(port, _request(30), slow)[0] == 200
    status, headers, body = _post(port, _request(5), slow)
    assert status == 429
    assert headers["content-type"] == "application/x-protobuf"
    assert int(headers["retry-after"]) in (2, 3)
    refusal = status_pb2.Status.FromString(body)
    assert refusal.code == 8  # RESOURCE_EXHAUSTED
    assert "'slow'" in refusal.message and "10 spans/s" in refusal.message
    assert 1.0 < _retry_delay_s(refusal) <= 2.5

    with grpc.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        export: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(_EXPORT)
        with pytest.raises(grpc.RpcError) as refused:
            export(_request(7), metadata=(("authorization", f"Bearer {slow}"),), timeout=10)
        error = refused.value
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        trailing = {str(k): bytes(v) for k, v in error.trailing_metadata()}  # type: ignore[attr-defined]
        # RetryInfo where the Collector reads it (the rich status) and where the Python SDK does
        assert 0 < _retry_delay_s(status_pb2.Status.FromString(trailing["grpc-status-details-bin"])) <= 2.7
        sdk_info = error_details_pb2.RetryInfo.FromString(trailing["google.rpc.retryinfo-bin"])
        assert sdk_info.retry_delay.ToNanoseconds() > 0
        # another key is not limited by this one's bucket
        export(_request(50), metadata=(("authorization", f"Bearer {free}"),), timeout=10)
    assert _post(port, _request(50), free)[0] == 200

    assert service.store.count_requests() == 30 + 50 + 50  # the refused 5 + 7 are not stored
    assert _refused_spans(port) == {"slow": 12.0}
    assert _metric(port, "spanmeter_exports_throttled_total") == 2.0

    time.sleep(int(headers["retry-after"]) + 0.2)  # what the exporter was told to wait
    assert _post(port, _request(5), slow)[0] == 200
    assert service.store.count_requests() == 135
    assert _refused_spans(port) == {"slow": 12.0}


def test_the_otel_sdk_exporters_back_off_and_resend_on_their_own(
    receiver: tuple[ReceiverService, Path],
) -> None:
    service, db = receiver
    key = _make_key(db, "sdk", "--rate-limit", "10")
    header = {"authorization": f"Bearer {key}"}
    http = HttpExporter(
        endpoint=f"http://127.0.0.1:{service.http_port}/v1/traces", headers=header, timeout=20
    )
    grpc_exporter = GrpcExporter(
        endpoint=f"http://127.0.0.1:{service.grpc_port}", insecure=True, headers=header, timeout=20
    )
    assert http.export(chat_spans(20)) is SpanExportResult.SUCCESS  # two seconds' worth: 10 in debt
    began = time.monotonic()
    assert http.export(chat_spans(5)) is SpanExportResult.SUCCESS  # refused, waited, resent
    assert time.monotonic() - began >= 0.9
    assert grpc_exporter.export(chat_spans(20)) is SpanExportResult.SUCCESS  # refused at first too
    assert service.store.count_requests() == 45  # each span once: refused attempts stored nothing
    refused = _refused_spans(service.http_port or 0)["sdk"]
    assert refused >= 25 and refused % 5 == 0  # at least one refusal of each exporter's batch
    grpc_exporter.shutdown()  # pyright: ignore[reportUnknownMemberType]
    http.shutdown()


def test_keys_list_shows_the_limit_and_only_ingest_keys_take_one(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    _make_key(db, "limited", "--rate-limit", "5000")
    _make_key(db, "open")
    listed = CliRunner().invoke(main, ["keys", "list", "--format", "json", "--store", str(db)])
    assert listed.exit_code == 0, listed.output
    limits = {key["name"]: key["rate_limit"] for key in json.loads(listed.output)["keys"]}
    assert limits == {"limited": 5000, "open": None}
    table = CliRunner().invoke(main, ["keys", "list", "--store", str(db)]).output
    assert "spans/s" in table.splitlines()[0]
    assert "5000" in next(line for line in table.splitlines() if line.startswith("limited"))
    wrong = CliRunner().invoke(
        main, ["keys", "create", "--name", "r", "--scope", "read", "--rate-limit", "5", "--store", str(db)]
    )
    assert wrong.exit_code == 2 and "only an ingest key" in wrong.output
    zero = CliRunner().invoke(
        main, ["keys", "create", "--name", "z", "--scope", "ingest", "--rate-limit", "0", "--store", str(db)]
    )
    assert zero.exit_code == 2


def test_the_server_default_limits_keys_without_their_own(tmp_path: Path) -> None:
    db = tmp_path / "default.db"
    config = ServeConfig(db=str(db), grpc_port=None, http_port=0, store_process=False, ingest_rate_limit=10)
    with ReceiverService(config) as service:
        port = service.http_port or 0
        # no key yet: authentication is off, and so are limits
        for _ in range(3):
            assert _post(port, _request(40), "none")[0] == 200
    plain = _make_key(db, "plain")
    own = _make_key(db, "own", "--rate-limit", "1000")
    with ReceiverService(config) as service:
        port = service.http_port or 0
        assert _post(port, _request(30), plain)[0] == 200
        assert _post(port, _request(5), plain)[0] == 429  # the default's 10 spans/s
        assert _post(port, _request(500), own)[0] == 200  # its own limit wins
        assert _post(port, _request(500), own)[0] == 200
        assert service.store.count_requests() == 120 + 30 + 1000
        assert _refused_spans(port) == {"plain": 5.0}
