"""Helpers for budget and alert tests: an injected clock, rows, configs, a webhook sink."""

from __future__ import annotations

import hashlib
import hmac
import json
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml

from spanmeter.budgets import parse_config
from spanmeter.budgets.definitions.model import BudgetsConfig
from spanmeter.store import SpanRow
from support.rows import span_row

NS = 1_000_000_000
HOUR_NS = 3600 * NS
DAY_NS = 24 * HOUR_NS
USD = 1_000_000_000
"""Nano-USD per USD."""


def at(text: str) -> int:
    """ISO 8601 (UTC unless an offset is given) -> Unix ns."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * NS


class Clock:
    """A settable clock in Unix ns, injected wherever spanmeter reads the time."""

    def __init__(self, start: int | str) -> None:
        self.ns = at(start) if isinstance(start, str) else start

    def __call__(self) -> int:
        return self.ns

    def set(self, when: int | str) -> None:
        self.ns = at(when) if isinstance(when, str) else when

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * NS)


def row(when: int | str, cost_usd: float | None = 0.1, **overrides: Any) -> SpanRow:
    """A billable attempt starting at ``when`` costing ``cost_usd`` (None: unpriced)."""
    start = at(when) if isinstance(when, str) else when
    cost = None if cost_usd is None else round(cost_usd * USD)
    status = "priced" if cost_usd is not None else "unknown_model"
    return span_row(start, **{"cost_nano_usd": cost, "pricing_status": status, **overrides})


def config(text: str, **environ: str) -> BudgetsConfig:
    """A budgets config from (dedented) YAML text."""
    return parse_config(yaml.safe_load(textwrap.dedent(text)), "test-budgets.yaml", environ=environ)


def verify_signature(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    """The check a webhook receiver does (recomputed here, independently of spanmeter)."""
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", signature)


class WebhookSink:
    """A real local HTTP server recording every POST; can answer 503 to play "down".

    ``port`` re-binds a port used before (a receiver that comes back at the same URL).
    """

    def __init__(self, port: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.attempts = 0
        self.status = 200
        self.response_headers: dict[str, str] = {}
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink.lock:
                    sink.attempts += 1
                    status = sink.status
                    if status < 300:
                        sink.requests.append(
                            {"path": self.path, "headers": dict(self.headers.items()), "body": body}
                        )
                self.send_response(status)
                for name, value in sink.response_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def payloads(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(item["body"]) for item in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def webhook_sink() -> Iterator[WebhookSink]:
    sink = WebhookSink()
    try:
        yield sink
    finally:
        sink.close()


def expected_cost(model: str, input_tokens: int, output_tokens: int) -> int:
    """Nano-USD of a call at OpenAI list prices (USD per 1M tokens: gpt-4o-mini 0.15 / 0.60,
    gpt-4o 2.50 / 10.00): per token that is price x 1,000 nano-USD, exact."""
    price_in, price_out = {"gpt-4o-mini": (150, 600), "gpt-4o": (2500, 10_000)}[model]
    return input_tokens * price_in + output_tokens * price_out


def genai_attributes(model: str, input_tokens: int, output_tokens: int, **dims: str) -> dict[str, Any]:
    """Span attributes of one OpenAI chat call with spanmeter attribution."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
    }
    attributes.update({f"spanmeter.{k}": v for k, v in dims.items()})
    return attributes
