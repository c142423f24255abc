"""An outage is logged once when it starts and once when it ends, whatever happens between."""

from __future__ import annotations

import logging

import pytest

from spanmeter.outage import OutageLog


def test_one_line_per_outage_start_and_end(caplog: pytest.LogCaptureFixture) -> None:
    log = OutageLog(logging.getLogger("test.outage"), "store writes")
    caplog.set_level(logging.WARNING, "test.outage")
    log.succeeded()  # nothing going on: nothing said
    assert caplog.records == []
    for attempt in range(50):
        log.failed(ConnectionError(f"refused #{attempt}\nhint: is it running?"))
    assert log.failing
    assert [r.getMessage() for r in caplog.records] == [
        "spanmeter: store writes failing (ConnectionError: refused #0); retried, logged again once they work"
    ]
    log.succeeded()
    log.succeeded()
    assert not log.failing
    assert len(caplog.records) == 2
    assert (
        caplog.records[1].getMessage().startswith("spanmeter: store writes work again after 50 failures over")
    )
    log.failed(TimeoutError())  # a second outage is logged again
    assert caplog.records[2].getMessage().startswith("spanmeter: store writes failing (TimeoutError)")
