"""The outbox worker, driven by an injected clock against a real local HTTP server:
backoff, Retry-After, permanent failures, giving up, removed channels, signatures, Slack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from spanmeter.budgets import BudgetsRuntime, sign, verify_signature
from spanmeter.budgets.definitions.model import BudgetsConfig
from spanmeter.store import NewAlert
from support.budget_helpers import NS, Clock, WebhookSink, config, row
from support.stores import BACKENDS, BudgetHost, opened_budget_store


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    server = WebhookSink()
    yield server
    server.close()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BudgetHost]:
    with opened_budget_store(str(request.param), tmp_path, request) as opened:
        yield opened


def setup(store: BudgetHost, sink: WebhookSink, clock: Clock, *, slack: bool = False) -> BudgetsRuntime:
    slack_channel = f'slack: [{{name: chat, url: "{sink.url}/slack"}}]' if slack else ""
    cfg = config(
        f"""
        budgets:
          - {{name: daily, window: day, limit_usd: 1, warn_at: [], forecast: false}}
        delivery:
          retry: {{initial: 10s, max: 60s, give_up_after: 1h}}
          webhooks: [{{name: ops, url: "{sink.url}", secret: k}}]
          {slack_channel}
          log: false
        """
    )
    return BudgetsRuntime(store, config=cfg, clock=clock)


def exceed(store: BudgetHost) -> None:
    store.write_batch([row("2026-03-10T12:00", 1.5)])


def delivery(store: BudgetHost, channel: str = "ops") -> tuple[str, int, int, str | None]:
    (alert,) = store.budget_store.list_alerts()
    (found,) = [d for d in alert.deliveries if d.channel == channel]
    return found.state, found.attempts, found.next_attempt_ns, found.last_error


def test_retries_back_off_until_the_endpoint_answers(store: BudgetHost, sink: WebhookSink) -> None:
    clock = Clock("2026-03-10T12:00:05")
    runtime = setup(store, sink, clock)
    exceed(store)
    sink.status = 503
    assert runtime.outbox.run_once() == 1
    state, attempts, next_ns, error = delivery(store)
    assert (state, attempts, error) == ("pending", 1, "HTTP 503")
    assert 7.5 * NS <= next_ns - clock() <= 12.5 * NS  # 10 s, +-25% jitter
    assert runtime.outbox.run_once() == 0  # not due yet
    clock.advance(13)
    assert runtime.outbox.run_once() == 1
    _, attempts, next_ns, _ = delivery(store)
    assert attempts == 2 and 15 * NS <= next_ns - clock() <= 25 * NS  # doubled
    sink.status = 200
    clock.advance(26)
    assert runtime.outbox.run_once() == 1
    assert delivery(store)[:2] == ("delivered", 3)
    sent_at = clock() // NS
    clock.advance(3600)
    assert runtime.outbox.run_once() == 0
    webhooks = [r for r in sink.requests if r["path"] == "/hook"]
    assert len(webhooks) == 1
    headers, body = webhooks[0]["headers"], webhooks[0]["body"]
    assert headers["X-Spanmeter-Timestamp"] == str(sent_at)  # the injected clock signs too
    assert verify_signature("k", body, str(sent_at), headers["X-Spanmeter-Signature"], now_s=sent_at)
    assert json.loads(body)["kind"] == "budget.exceeded"


def test_retry_after_is_honoured(store: BudgetHost, sink: WebhookSink) -> None:
    clock = Clock("2026-03-10T12:00:05")
    runtime = setup(store, sink, clock)
    exceed(store)
    sink.status, sink.response_headers = 429, {"Retry-After": "45"}
    runtime.outbox.run_once()
    _, _, next_ns, error = delivery(store)
    assert error == "HTTP 429" and next_ns - clock() == 45 * NS


def test_a_permanent_refusal_is_not_retried(
    store: BudgetHost, sink: WebhookSink, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock("2026-03-10T12:00:05")
    runtime = setup(store, sink, clock)
    exceed(store)
    sink.status = 401
    runtime.outbox.run_once()
    assert delivery(store)[:3] == ("dead", 1, delivery(store)[2])
    assert "giving up" in caplog.text
    clock.advance(3600)
    sink.status = 200
    assert runtime.outbox.run_once() == 0


def test_delivery_gives_up_after_the_configured_age(store: BudgetHost, sink: WebhookSink) -> None:
    clock = Clock("2026-03-10T12:00:05")
    runtime = setup(store, sink, clock)
    exceed(store)
    sink.status = 500
    for _ in range(100):
        runtime.outbox.run_once()
        if delivery(store)[0] == "dead":
            break
        clock.advance(61)
    state, attempts, _, error = delivery(store)
    assert (state, error) == ("dead", "HTTP 500")
    age = clock() - store.budget_store.list_alerts()[0].occurred_at_ns
    assert 3600 * NS <= age < 3661 * NS  # given up at the first attempt an hour after the alert
    assert 55 <= attempts <= 65  # about one attempt a minute (the backoff's cap)


def test_a_removed_channel_is_marked_dead(store: BudgetHost, sink: WebhookSink) -> None:
    clock = Clock("2026-03-10T12:00:05")
    runtime = setup(store, sink, clock)
    exceed(store)
    runtime.apply(BudgetsConfig(budgets=runtime.config.budgets))  # no webhooks any more
    runtime.outbox.run_once()
    assert delivery(store)[0] == "dead" and delivery(store)[3] == "channel no longer configured"


def test_slack_gets_the_title_drivers_and_the_focused_view(store: BudgetHost, sink: WebhookSink) -> None:
    clock = Clock("2026-03-10T12:00:05")
    runtime = setup(store, sink, clock, slack=True)
    exceed(store)
    runtime.outbox.run_once()
    (slack,) = [json.loads(r["body"]) for r in sink.requests if r["path"] == "/hook/slack"]
    text = slack["text"]
    assert text.startswith(":rotating_light: *Budget daily (all traffic) exceeded its limit: $1.50 of $1.00")
    assert "Drivers: endpoint_tag `search` $1.500000000 (100%)" in text
    assert "Focused view: `spanmeter top --by endpoint_tag --from 2026-03-10T00:00:00Z" in text


def test_events_inserted_twice_are_queued_once(store: BudgetHost) -> None:
    alert = NewAlert("k1", "rule.x", "warning", "r", "all", "t", 1, channels=("log", "log"))
    assert store.budget_store.insert_alerts([alert, alert], now_ns=1)[1] is None
    (stored,) = store.budget_store.list_alerts()
    assert [d.channel for d in stored.deliveries] == ["log"]


def test_signatures_refuse_tampering_wrong_keys_and_replays() -> None:
    body = b'{"a": 1}'
    signature = sign("k", "1000", body)
    assert verify_signature("k", body, "1000", signature, now_s=1100)
    assert not verify_signature("other", body, "1000", signature, now_s=1100)
    assert not verify_signature("k", body + b" ", "1000", signature, now_s=1100)
    assert not verify_signature("k", body, "1001", signature, now_s=1100)
    assert not verify_signature("k", body, "1000", signature, now_s=1000 + 301)  # too old
    assert not verify_signature("k", body, "soon", signature)


def test_a_webhook_without_a_secret_is_not_signed(store: BudgetHost, sink: WebhookSink) -> None:
    clock = Clock("2026-03-10T12:00:05")
    runtime = setup(store, sink, clock)
    # The budgets file requires a secret; a channel built in code may have none.
    channels = tuple(
        replace(channel, secret=None) if channel.name == "ops" else channel
        for channel in runtime.config.channels
    )
    runtime.apply(replace(runtime.config, channels=channels))
    exceed(store)
    assert runtime.outbox.run_once() == 1
    assert delivery(store)[0] == "delivered"
    (webhook,) = [r for r in sink.requests if r["path"] == "/hook"]
    assert "X-Spanmeter-Signature" not in webhook["headers"]  # never an HMAC with the empty key
    assert webhook["headers"]["X-Spanmeter-Timestamp"] == str(clock() // NS)
    assert json.loads(webhook["body"])["kind"] == "budget.exceeded"
