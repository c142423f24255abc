"""One local HTTP server speaking OpenAI's, Anthropic's and Gemini's wire formats.

Paid APIs cannot run in tests, so the real ``openai``, ``anthropic`` and ``google-genai``
clients are pointed at this stub (``base_url``). It answers:

* ``POST /v1/chat/completions``: OpenAI chat completions, JSON, or server-sent events when
  ``stream=true`` (the final usage chunk only when ``stream_options.include_usage``);
* ``POST /v1/messages``: Anthropic messages, JSON, or server-sent events when
  ``stream=true`` (``message_start`` with the input usage, content block events,
  ``message_delta`` with the output usage, ``message_stop``);
* ``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``:
  Gemini, with ``usageMetadata``.

Usage is set per test and reported the way each real API reports it, since that is where
instrumentations differ:

* OpenAI: ``prompt_tokens`` INCLUDES the cached ones (``prompt_tokens_details.cached_tokens``),
  ``completion_tokens`` includes reasoning;
* Anthropic: ``input_tokens`` EXCLUDES cache reads and writes (``cache_read_input_tokens``,
  ``cache_creation_input_tokens``); a stream's ``message_start`` reports
  ``output_tokens: 1`` and ``message_delta`` the final (cumulative) output count;
* Gemini: ``promptTokenCount`` INCLUDES ``cachedContentTokenCount``; ``thoughtsTokenCount``
  is NOT part of ``candidatesTokenCount`` (both are billed as output); a stream carries the
  prompt counts on every chunk and the output counts on the last.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["AnthropicUsage", "GeminiUsage", "OpenAIUsage", "ProviderStub", "provider_stub"]

REPLY_WORDS = ("Hello", " from", " the", " stub.")
REPLY = "".join(REPLY_WORDS)


@dataclass
class OpenAIUsage:
    """OpenAI chat-completions usage: prompt tokens include the cached ones."""

    prompt_tokens: int = 1200
    completion_tokens: int = 300
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    model: str = "gpt-4o-mini-2024-07-18"

    def wire(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


@dataclass
class AnthropicUsage:
    """Anthropic messages usage: ``input_tokens`` excludes cache reads and writes."""

    input_tokens: int = 1200
    output_tokens: int = 300
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    model: str = "claude-3-5-haiku-20241022"

    def wire(self, output_tokens: int | None = None) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_creation_input_tokens,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": self.output_tokens if output_tokens is None else output_tokens,
            "service_tier": "standard",
        }


@dataclass
class GeminiUsage:
    """Gemini ``usageMetadata``: the prompt count includes the cached tokens; thoughts are
    counted apart from the candidates."""

    prompt_tokens: int = 1200
    candidates_tokens: int = 300
    cached_tokens: int = 0
    thoughts_tokens: int = 0
    model: str = "gemini-2.5-flash"

    def wire(self, *, final: bool = True) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "promptTokenCount": self.prompt_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": self.prompt_tokens}],
        }
        if self.cached_tokens:
            usage["cachedContentTokenCount"] = self.cached_tokens
            usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.cached_tokens}]
        total = self.prompt_tokens
        if final:
            usage["candidatesTokenCount"] = self.candidates_tokens
            total += self.candidates_tokens
            if self.thoughts_tokens:
                usage["thoughtsTokenCount"] = self.thoughts_tokens
                total += self.thoughts_tokens
        usage["totalTokenCount"] = total
        return usage


@dataclass
class ProviderStub:
    """What the stub answers, and what it was asked (``requests``: path and JSON body)."""

    openai: OpenAIUsage = field(default_factory=OpenAIUsage)
    anthropic: AnthropicUsage = field(default_factory=AnthropicUsage)
    gemini: GeminiUsage = field(default_factory=GeminiUsage)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    url: str = ""
    """``http://127.0.0.1:PORT`` once started (no path: each client adds its own prefix)."""

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"


def _handler(stub: ProviderStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _start_events(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _event(self, payload: dict[str, Any], name: str | None = None) -> None:
            head = f"event: {name}\n" if name else ""
            self._chunk(f"{head}data: {json.dumps(payload)}\n\n".encode())

        def _end_events(self) -> None:
            self._chunk(b"")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            path = urlsplit(self.path).path
            stub.requests.append((self.path, request))
            # each call its own response id, as the real APIs give (spans of one call share it)
            self.call_id = uuid.uuid4().hex[:24]
            if path.endswith("/chat/completions"):
                self._openai(request)
            elif path.endswith("/messages"):
                self._anthropic(request)
            elif path.endswith(":generateContent"):
                self._json(200, self._gemini_body(REPLY, stub.gemini.wire()))
            elif path.endswith(":streamGenerateContent"):
                self._gemini_stream()
            else:
                self._json(404, {"error": {"message": f"stub: no route for {path}"}})

        # OpenAI ---------------------------------------------------------------------------

        def _openai(self, request: dict[str, Any]) -> None:
            usage = stub.openai
            if not request.get("stream"):
                self._json(
                    200,
                    {
                        "id": f"chatcmpl-{self.call_id}",
                        "object": "chat.completion",
                        "created": 1_700_000_000,
                        "model": usage.model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": REPLY, "refusal": None},
                                "logprobs": None,
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": usage.wire(),
                        "service_tier": "default",
                        "system_fingerprint": "fp_stub",
                    },
                )
                return
            self._start_events()
            base = {
                "id": f"chatcmpl-{self.call_id}",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": usage.model,
                "service_tier": "default",
                "system_fingerprint": "fp_stub",
            }
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            chunks: list[dict[str, Any]] = []
            for i, word in enumerate(REPLY_WORDS):
                delta: dict[str, Any] = {"content": word}
                if i == 0:
                    delta["role"] = "assistant"
                chunks.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if include_usage:
                # every chunk carries "usage": null, the last one the counts and no choice
                chunks = [{**chunk, "usage": None} for chunk in chunks]
                chunks.append({**base, "choices": [], "usage": usage.wire()})
            for chunk in chunks:
                self._event(chunk)
            self._chunk(b"data: [DONE]\n\n")
            self._end_events()

        # Anthropic ------------------------------------------------------------------------

        def _anthropic(self, request: dict[str, Any]) -> None:
            usage = stub.anthropic
            message: dict[str, Any] = {
                "id": f"msg_01{self.call_id}",
                "type": "message",
                "role": "assistant",
                "model": usage.model,
                "content": [{"type": "text", "text": REPLY}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": usage.wire(),
            }
            if not request.get("stream"):
                self._json(200, message)
                return
            self._start_events()
            start = {**message, "content": [], "stop_reason": None, "usage": usage.wire(output_tokens=1)}
            self._event({"type": "message_start", "message": start}, "message_start")
            self._event(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            )
            self._event({"type": "ping"}, "ping")
            for word in REPLY_WORDS:
                self._event(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": word},
                    },
                    "content_block_delta",
                )
            self._event({"type": "content_block_stop", "index": 0}, "content_block_stop")
            self._event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": usage.output_tokens},
                },
                "message_delta",
            )
            self._event({"type": "message_stop"}, "message_stop")
            self._end_events()

        # Gemini ---------------------------------------------------------------------------

        def _gemini_body(self, text: str, usage: dict[str, Any], finish: bool = True) -> dict[str, Any]:
            candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
            if finish:
                candidate["finishReason"] = "STOP"
            return {
                "candidates": [candidate],
                "usageMetadata": usage,
                "modelVersion": stub.gemini.model,
                "responseId": self.call_id,
            }

        def _gemini_stream(self) -> None:
            self._start_events()
            last = len(REPLY_WORDS) - 1
            for i, word in enumerate(REPLY_WORDS):
                final = i == last
                self._event(self._gemini_body(word, stub.gemini.wire(final=final), finish=final))
            self._end_events()

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops its kept-alive connection is no error of the test's.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def provider_stub(stub: ProviderStub | None = None) -> Iterator[ProviderStub]:
    """Run the stub on 127.0.0.1, a free port; yields the stub with ``url`` set."""
    stub = stub or ProviderStub()
    server = _Server(("127.0.0.1", 0), _handler(stub))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="provider-stub", daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
