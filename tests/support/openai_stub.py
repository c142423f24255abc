"""A local HTTP server that speaks OpenAI's chat-completions and responses wire format.

Paid APIs cannot run here, so tests point the real ``openai`` client at this stub. It
answers ``POST /v1/chat/completions`` (plain JSON, or server-sent events when
``stream=true``, with the final usage chunk when ``stream_options.include_usage``) and
``POST /v1/responses``, reporting the token counts the test configured, including cached
prompt tokens, exactly as OpenAI's API shapes them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["StubUsage", "openai_stub"]


@dataclass
class StubUsage:
    """Token counts the stub reports (prompt tokens include cached ones, as OpenAI does)."""

    prompt_tokens: int = 1200
    completion_tokens: int = 300
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    model: str = "gpt-4o-mini-2024-07-18"
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)

    def usage_chat(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens, "audio_tokens": 0},
        }


def _handler(usage: StubUsage) -> type[BaseHTTPRequestHandler]:
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

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            usage.requests.append(request)
            if usage.status != 200:
                self._json(usage.status, {"error": {"message": "stub error", "type": "server_error"}})
                return
            if self.path.endswith("/chat/completions"):
                if request.get("stream"):
                    self._stream_chat(request)
                else:
                    self._json(200, self._chat_body())
            elif self.path.endswith("/responses"):
                self._json(200, self._responses_body())
            else:
                self._json(404, {"error": {"message": "not found"}})

        def _chat_body(self) -> dict[str, Any]:
            return {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": usage.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Hello from the stub."},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage.usage_chat(),
                "system_fingerprint": "fp_stub",
            }

        def _stream_chat(self, request: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            base = {
                "id": "chatcmpl-stub",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": usage.model,
            }
            chunks: list[dict[str, Any]] = []
            for i, word in enumerate(("Hello", " from", " the", " stub.")):
                delta: dict[str, Any] = {"content": word}
                if i == 0:
                    delta["role"] = "assistant"
                chunks.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if (request.get("stream_options") or {}).get("include_usage"):
                chunks.append({**base, "choices": [], "usage": usage.usage_chat()})
            for chunk in chunks:
                self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _responses_body(self) -> dict[str, Any]:
            return {
                "id": "resp_stub",
                "object": "response",
                "created_at": 1_700_000_000,
                "status": "completed",
                "model": usage.model,
                "output": [
                    {
                        "type": "message",
                        "id": "msg_stub",
                        "status": "completed",
                        "role": "assistant",
                        "content": [
                            {"type": "output_text", "text": "Hello from the stub.", "annotations": []}
                        ],
                    }
                ],
                "usage": {
                    "input_tokens": usage.prompt_tokens,
                    "input_tokens_details": {"cached_tokens": usage.cached_tokens},
                    "output_tokens": usage.completion_tokens,
                    "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
                    "total_tokens": usage.prompt_tokens + usage.completion_tokens,
                },
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
            }

    return Handler


@contextmanager
def openai_stub(usage: StubUsage | None = None) -> Iterator[tuple[str, StubUsage]]:
    """Run the stub on 127.0.0.1, a free port; yields (base_url ending in /v1, usage)."""
    usage = usage or StubUsage()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(usage))
    thread = threading.Thread(target=server.serve_forever, name="openai-stub", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", usage
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
