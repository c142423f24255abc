"""``StartStop``: ``with`` starts a part, and stops it on the way out, exception or not."""

from __future__ import annotations

import pytest

from spanmeter.lifecycle import StartStop


class _Part(StartStop):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> _Part:
        self.calls.append("start")
        return self

    def stop(self) -> None:
        self.calls.append("stop")


def test_with_starts_then_stops_and_yields_the_part() -> None:
    part = _Part()
    with part as entered:
        assert entered is part
        assert part.calls == ["start"]
    assert part.calls == ["start", "stop"]


def test_an_exception_in_the_block_still_stops_and_propagates() -> None:
    part = _Part()
    with pytest.raises(RuntimeError, match="boom"), part:
        raise RuntimeError("boom")
    assert part.calls == ["start", "stop"]


def test_the_receiver_parts_use_it() -> None:
    from spanmeter.demo import AlertSink, DemoSession
    from spanmeter.receiver import OTLPServer
    from spanmeter.service import ReceiverService

    for cls in (OTLPServer, ReceiverService, DemoSession, AlertSink):
        assert issubclass(cls, StartStop), cls
        assert "__enter__" not in vars(cls) and "__exit__" not in vars(cls), cls
