"""Admission and a time limit for the JSON API, so queries cannot take ingest's place.

The API's heavy routes (an investigation, a top-N over ``user_id``, an export) can each run
for seconds on a large store. Without a bound, enough of them at once hold every thread the
HTTP port has and OTLP exporters time out. :class:`ApiGate` wraps the API's WSGI app:

* at most ``max_concurrent`` requests run at once, each on the gate's own query threads;
  one more is answered at once with ``429 Too Many Requests`` and ``Retry-After`` (clients
  retry later, nothing queues up behind a slow query);
* a request still running after ``timeout_s`` is answered ``503 Service Unavailable`` with
  ``Retry-After``, and the thread that waited for it goes back to serving. Neither store can
  cancel a query from outside its connection: a query running in a query process
  (:mod:`spanmeter.service.query_process`) is ended by killing that process at the same time
  limit, which frees its place; one running in this process finishes on its query thread and
  keeps its place under the cap until then. Either way the cap bounds the work actually
  running, not just the requests being answered.

The request is read and run on a query thread and its answer collected in full there
(answers are JSON documents, bounded by the routes' limits), then sent by the caller's thread.

Example::

    gate = ApiGate(api_app, max_concurrent=4, timeout_s=30)
    app = make_router({"/api/v1/": gate})
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Final

from spanmeter.receiver.http_app import StartResponse, WSGIApp, WSGIEnviron, retry_after_header

__all__ = ["DEFAULT_API_TIMEOUT_S", "DEFAULT_API_WORKERS", "ApiGate"]

_logger = logging.getLogger(__name__)

DEFAULT_API_WORKERS: Final = 2
"""API requests that run at once: small, since each query takes a core's worth of work (in a
query process of its own beside a store process, else holding this process's GIL while
ingest decodes and prices)."""
DEFAULT_API_TIMEOUT_S: Final = 30.0
"""Longest an API request may run before it is answered 503."""


@dataclass
class _Answer:
    status: str = "500 Internal Server Error"
    headers: list[tuple[str, str]] = field(default_factory=lambda: [])
    body: list[bytes] = field(default_factory=lambda: [])


class ApiGate:
    """A WSGI app running ``app`` under a concurrency cap and a time limit (see the module).

    Args:
        app: the API's WSGI app.
        max_concurrent: requests running at once; more are answered 429.
        timeout_s: longest a request may run before it is answered 503.

    Raises:
        ValueError: a limit is not positive.
    """

    def __init__(self, app: WSGIApp, *, max_concurrent: int, timeout_s: float) -> None:
        if max_concurrent <= 0 or not timeout_s > 0:
            raise ValueError(f"must be positive: max_concurrent={max_concurrent!r}, timeout_s={timeout_s!r}")
        self._app = app
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._timeout_s = timeout_s
        self._retry_after = retry_after_header(min(timeout_s, 5.0))
        self._pool = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="spanmeter-api")
        self._closed = False
        self._lock = threading.Lock()
        self._in_flight: set[Future[_Answer]] = set()

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        if self._closed or not self._slots.acquire(blocking=False):
            return _refuse(
                start_response,
                "429 Too Many Requests",
                "too many API requests at once, retry later",
                self._retry_after,
            )
        try:
            future = self._pool.submit(self._run, environ)
        except RuntimeError:  # the pool is shut down: the server is stopping
            self._slots.release()
            return _refuse(start_response, "503 Service Unavailable", "server is stopping", "1")
        with self._lock:
            self._in_flight.add(future)
        future.add_done_callback(self._release)
        try:
            answer = future.result(timeout=self._timeout_s)
        except FutureTimeout:
            _logger.warning(
                "API request %s ran over its time limit of %ss; answered 503 (a query in a query"
                " process is killed, one on this process's threads finishes on its own)",
                environ.get("PATH_INFO", "?"),
                self._timeout_s,
            )
            return _refuse(
                start_response,
                "503 Service Unavailable",
                f"query exceeded the time limit of {self._timeout_s:g} s",
                self._retry_after,
            )
        start_response(answer.status, answer.headers)
        return answer.body

    def _release(self, future: Future[_Answer]) -> None:
        with self._lock:
            self._in_flight.discard(future)
        self._slots.release()

    def _run(self, environ: WSGIEnviron) -> _Answer:
        answer = _Answer()

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer.status, answer.headers = status, list(headers)

        try:
            result = self._app(environ, capture)
            try:
                answer.body = list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            _logger.exception("API request %s failed", environ.get("PATH_INFO", "?"))
            body = json.dumps({"error": "internal error"}).encode()
            answer.status = "500 Internal Server Error"
            answer.headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            answer.body = [body]
        return answer

    def close(self, wait_s: float | None = None) -> None:
        """Refuse new requests and wait (up to ``wait_s``; None: the time limit) for the queries
        still running, abandoned ones included: their store is closed after this, and a query
        still reading a connection its store closes can crash the process (SQLite's)."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            running = set(self._in_flight)
        if running:
            _, late = wait(running, timeout=self._timeout_s if wait_s is None else wait_s)
            if late:
                _logger.warning("API stop: %d queries still running after the wait", len(late))


def _refuse(start_response: StartResponse, status: str, message: str, retry_after: str) -> list[bytes]:
    body = json.dumps({"error": message}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Retry-After", retry_after),
        ],
    )
    return [body]
