"""A loopback webhook endpoint that receives the demo's alerts, as a team's alert router would.

It checks each delivery's signature (:func:`spanmeter.budgets.verify_signature`) and keeps
the alerts it accepted, so the demo shows the whole delivery path: ledger -> inbox ->
outbox -> signed HTTP POST. Built on :mod:`http.server` because it serves a handful of
requests on 127.0.0.1 for the demo's lifetime; a real deployment points the webhook at its
own alerting stack.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..budgets import verify_signature
from ..lifecycle import StartStop

__all__ = ["AlertSink"]


class AlertSink(StartStop):
    """An HTTP server on ``127.0.0.1`` (port picked by the OS) accepting signed alerts.

    Args:
        secret: The channel secret the deliveries are signed with.
    """

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[dict[str, Any]] = []
        """Accepted alerts (the JSON bodies), in arrival order."""
        self.rejected = 0
        """Deliveries refused for a bad signature."""
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-webhook", daemon=True)

    @property
    def url(self) -> str:
        """Where alerts are posted."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def accepted_ids(self) -> set[int]:
        """Ids of the alerts received so far."""
        with self._lock:
            return {int(body["alert_id"]) for body in self.received if "alert_id" in body}

    def start(self) -> AlertSink:
        """Serve on a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)

    def accept(self, body: bytes, timestamp: str, signature: str) -> bool:
        """Keep one delivery if its signature is right (the request handler calls this)."""
        if not verify_signature(self.secret, body, timestamp, signature, tolerance_s=300):
            with self._lock:
                self.rejected += 1
            return False
        document = json.loads(body)
        with self._lock:
            self.received.append(document)
        return True


def _handler(sink: AlertSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            try:
                ok = sink.accept(
                    body,
                    self.headers.get("X-Spanmeter-Timestamp", ""),
                    self.headers.get("X-Spanmeter-Signature", ""),
                )
            except ValueError:  # not JSON
                ok = False
            self.send_response(204 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the demo prints what the sink received."""

    return Handler
