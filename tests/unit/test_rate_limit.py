"""The per-key token bucket of :mod:`spanmeter.receiver.rate_limit`, on a clock the tests move."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanmeter.auth import Identity
from spanmeter.receiver.contract import RateLimited
from spanmeter.receiver.rate_limit import BURST_S, RateLimiter, count_spans


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _request(*per_scope: int) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for spans in per_scope:
        scope = request.resource_spans.add().scope_spans.add()
        for _ in range(spans):
            scope.spans.add(name="chat")
    return request


def _key(name: str, rate: int | None) -> Identity:
    return Identity(name, "ingest", None, rate)


def test_spans_are_counted_over_every_resource_and_scope() -> None:
    assert count_spans(_request(3, 0, 4)) == 7
    assert count_spans(ExportTraceServiceRequest()) == 0


def test_a_key_gets_one_seconds_burst_then_its_rate() -> None:
    clock = _Clock()
    refused: list[tuple[str, int]] = []
    limiter = RateLimiter(clock=clock, on_refused=lambda name, spans: refused.append((name, spans)))
    key = _key("app", 100)
    assert BURST_S == 1.0
    limiter(key, _request(60))
    limiter(key, _request(40))  # the whole burst of 100
    with pytest.raises(RateLimited) as limited:
        limiter(key, _request(50))
    assert limited.value.retry_after_s == pytest.approx(0.5)  # 50 spans at 100/s
    assert "'app'" in str(limited.value) and "100 spans/s" in str(limited.value)
    assert refused == [("app", 50)]
    clock.now += 0.49
    with pytest.raises(RateLimited):  # refused requests took nothing: 49 tokens so far
        limiter(key, _request(50))
    clock.now += 0.01
    limiter(key, _request(50))
    clock.now += 10.0  # idle time fills the bucket only up to one second's worth
    limiter(key, _request(100))
    with pytest.raises(RateLimited):
        limiter(key, _request(1))


def test_a_request_larger_than_the_bucket_passes_when_full_and_leaves_a_debt() -> None:
    clock = _Clock()
    limiter = RateLimiter(clock=clock)
    key = _key("app", 10)
    limiter(key, _request(30))  # three seconds' worth: admitted once, the bucket 20 in debt
    with pytest.raises(RateLimited) as limited:
        limiter(key, _request(5))
    assert limited.value.retry_after_s == pytest.approx(2.5)  # 25 tokens at 10/s
    clock.now += 2.5
    limiter(key, _request(5))


def test_keys_are_limited_apart_and_unlimited_callers_pass() -> None:
    clock = _Clock()
    limiter = RateLimiter(clock=clock)
    limiter(_key("a", 10), _request(10))
    limiter(_key("b", 10), _request(10))  # its own bucket
    with pytest.raises(RateLimited):
        limiter(_key("a", 10), _request(1))
    for _ in range(100):
        limiter(_key("unlimited", None), _request(1000))
        limiter(None, _request(1000))  # authentication off: no key, no limit


def test_the_server_default_applies_to_keys_without_their_own() -> None:
    clock = _Clock()
    limiter = RateLimiter(clock=clock, default_rate=5)
    limiter(_key("plain", None), _request(5))
    with pytest.raises(RateLimited):
        limiter(_key("plain", None), _request(1))
    limiter(_key("own", 50), _request(50))  # a key's own limit wins over the default
    limiter(None, _request(1000))
    with pytest.raises(ValueError):
        RateLimiter(default_rate=0)


def test_a_key_made_again_with_another_limit_uses_the_new_rate() -> None:
    clock = _Clock()
    limiter = RateLimiter(clock=clock)
    limiter(_key("app", 10), _request(10))
    with pytest.raises(RateLimited) as limited:
        limiter(_key("app", 100), _request(10))
    assert limited.value.retry_after_s == pytest.approx(0.1)  # refilled at the new rate
