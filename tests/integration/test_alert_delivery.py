"""Alert delivery through the persistent outbox, against real local HTTP servers.

A webhook receiver that answers 503, then is down altogether, with a spanmeter restart in
between: when it comes back every alert arrives exactly once, with a valid signature and a
stable idempotency key; a Slack-compatible hook that was up all along got each alert once;
a further restart delivers nothing again.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanmeter.service import ReceiverService, ServeConfig
from support.budget_helpers import WebhookSink, expected_cost, genai_attributes, verify_signature

SECRET = "s3cret-for-tests"


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def alerts(service: ReceiverService) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{service.http_port}/api/v1/alerts?limit=100"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["alerts"]


def spend(service: ReceiverService, calls: int) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "delivery"}))
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{service.http_port}/v1/traces")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("delivery")
    for _ in range(calls):
        with tracer.start_as_current_span(
            "chat", attributes=genai_attributes("gpt-4o", 1000, 100, tenant_id="acme")
        ):
            pass
    provider.shutdown()


def test_every_alert_arrives_exactly_once_across_downtime_and_a_restart(tmp_path: Path) -> None:
    webhook = WebhookSink()
    webhook.status = 503  # up, but failing
    slack = WebhookSink()
    call = expected_cost("gpt-4o", 1000, 100)  # 3.5 milli-USD
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(
        f"""
budgets:
  - name: acme
    scope: {{tenant_id: acme}}
    window: {{rolling: 24h}}
    limit_usd: "{call * 10 / 1e9:.9f}"
    warn_at: [50%, 80%]
delivery:
  retry: {{initial: 0.05s, max: 0.2s, timeout: 2s}}
  webhooks:
    - {{name: ops, url: "{webhook.url}", secret: {SECRET}}}
  slack:
    - {{name: chat, url: "{slack.url}"}}
  log: false
"""
    )
    config = ServeConfig(
        db=str(tmp_path / "cost.db"), grpc_port=0, http_port=0, budgets_file=str(budgets), store_process=True
    )
    port = webhook.port
    try:
        with ReceiverService(config) as first:
            spend(first, 12)  # 50%, 80% and 100% of the limit
            wait_for(lambda: len(alerts(first)) == 3)
            wait_for(
                lambda: all(
                    d["attempts"] >= 2
                    for a in alerts(first)
                    for d in a["deliveries"]
                    if d["channel"] == "ops"
                )
            )
            assert len(slack.requests) == 3
        webhook.close()  # now down altogether: connection refused
        with ReceiverService(config) as second:
            wait_for(
                lambda: any(
                    "Error" in (d["last_error"] or "") for a in alerts(second) for d in a["deliveries"]
                )
            )
            assert webhook.requests == []
            webhook = WebhookSink(port=port)  # back, at the same address
            wait_for(lambda: all(d["state"] == "delivered" for a in alerts(second) for d in a["deliveries"]))
            stored = alerts(second)
        with ReceiverService(config) as third:  # a restarted receiver finds nothing left to send
            assert third.budgets.budget_store.due_deliveries(2**62) == []  # none pending, ever
            assert third.budgets.outbox.run_once() == 0
            assert all(d["state"] == "delivered" for a in alerts(third) for d in a["deliveries"])
        assert len(webhook.requests) == 3
        assert len(slack.requests) == 3
        keys = set()
        for request in webhook.requests:
            headers, body = request["headers"], request["body"]
            assert verify_signature(
                SECRET, body, headers["X-Spanmeter-Timestamp"], headers["X-Spanmeter-Signature"]
            )
            payload = json.loads(body)
            assert headers["Idempotency-Key"] == payload["id"]
            keys.add(payload["id"])
            assert payload["context"]["filters"] == {"tenant_id": "acme", "data_mode": "real"}
            assert payload["context"]["focus"]["cli"].startswith("spanmeter top --by endpoint_tag")
        assert len(keys) == 3
        kinds = sorted(json.loads(r["body"])["kind"] for r in webhook.requests)
        assert kinds == ["budget.exceeded", "budget.warning", "budget.warning"]
        slack_texts = [json.loads(r["body"])["text"] for r in slack.requests]
        assert all("Budget acme" in text and "spanmeter alerts ack" in text for text in slack_texts)
        ops = [d for a in stored for d in a["deliveries"] if d["channel"] == "ops"]
        assert all(d["attempts"] >= 3 for d in ops)  # failed, failed across the restart, then delivered
    finally:
        webhook.close()
        slack.close()
