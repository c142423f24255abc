"""Run the OTLP receiver: gRPC (grpcio) and HTTP (waitress) listeners around one ingest handler.

waitress is a production WSGI server (worker threads, keep-alive, HTTP/1.1 chunked bodies,
body-size limits applied before a body is buffered). The listening socket is bound here, so port 0
gives the real port back and a busy port fails loudly in ``start()``.

Ingest cannot be starved by queries: on the HTTP port, requests under ``/api/`` run on a
thread pool of their own (:mod:`spanmeter.receiver.http_server`), at most ``api_workers`` at
once and for at most ``api_timeout_s`` each (:mod:`spanmeter.receiver.api_gate`); the gRPC
port serves OTLP only. Both ports speak TLS when given :class:`TLSFiles`.

Graceful stop: both listeners stop accepting, in-flight handler calls finish and their answers are
flushed to the clients (up to ``grace_s``); requests that arrive on kept-alive HTTP connections in
the meantime get a retryable 503, so no client mistakes shutdown for rejection.

Example::

    with OTLPServer(handler, grpc_port=0, http_port=0) as server:
        print(server.grpc_port, server.http_port)
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar, cast

import grpc
from waitress import wasyncore

from spanmeter.lifecycle import StartStop
from spanmeter.receiver.api_gate import DEFAULT_API_TIMEOUT_S, DEFAULT_API_WORKERS, ApiGate
from spanmeter.receiver.contract import DEFAULT_MAX_BODY_BYTES, Admit, IngestHandler
from spanmeter.receiver.grpc_server import make_grpc_server
from spanmeter.receiver.http_app import (
    Authenticate,
    StartResponse,
    WSGIApp,
    WSGIEnviron,
    make_otlp_wsgi_app,
    make_router,
)
from spanmeter.receiver.http_server import API_PREFIX, SplitPoolServer
from spanmeter.receiver.tls import TLSFiles

__all__ = ["TRACES_PATH", "OTLPServer"]

_logger = logging.getLogger(__name__)

TRACES_PATH: Final = "/v1/traces"
_INBUF_OVERFLOW: Final = 16 * 1024 * 1024  # bodies above this are buffered in a temp file, not RAM
_RECV_BYTES: Final = 256 * 1024  # fewer, larger reads: OTLP bodies are hundreds of KiB
_CONNECTION_LIMIT: Final = 2000
_API_FRONT_SPARE: Final = 2  # API pool threads beyond the cap: they answer 429 while every slot is busy
_T = TypeVar("_T")


class _DrainingApp:
    """Counts in-flight requests and refuses new ones (retryably) once draining starts."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self._cond = threading.Condition()
        self._inflight = 0
        self._draining = False

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        with self._cond:
            refuse = self._draining
            if not refuse:
                self._inflight += 1
        if refuse:
            body = b"server is shutting down, retry later"
            start_response(
                "503 Service Unavailable",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                    ("Retry-After", "1"),
                    # No "Connection: close": it is hop-by-hop, which WSGI apps may not set; the
                    # connection is closed anyway once in-flight requests are done.
                ],
            )
            return [body]
        try:
            result = self._app(environ, start_response)
            try:
                return list(result)  # produce the whole answer while counted as in flight
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            with self._cond:
                self._inflight -= 1
                self._cond.notify_all()

    def drain(self, deadline: float) -> bool:
        """Refuse new requests; wait until in-flight ones are done. False if the deadline passed."""
        with self._cond:
            self._draining = True
            return self._cond.wait_for(
                lambda: self._inflight == 0, timeout=max(0.0, deadline - time.monotonic())
            )


def _split(app: WSGIApp, api: WSGIApp) -> WSGIApp:
    """``api`` for paths under ``/api/`` (the same paths the server runs on the API pool)."""

    def by_path(environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        chosen = api if (environ.get("PATH_INFO") or "").startswith(API_PREFIX) else app
        return chosen(environ, start_response)

    return by_path


def _bind(host: str, port: int) -> socket.socket:
    family, socktype, proto, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
    except OSError:
        sock.close()
        raise
    return sock


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class OTLPServer(StartStop):
    """OTLP trace receiver on a gRPC port and an HTTP port, feeding one ingest handler.

    Args:
        handler: called once per decoded export request, concurrently from worker threads;
            blocks until the batch is durable.
        host: interface to bind both listeners to.
        grpc_port: gRPC port (0 = pick a free one, None = no gRPC listener).
        http_port: HTTP port (0 = pick a free one, None = no HTTP listener).
        extra_http_routes: more WSGI apps on the HTTP port, keyed by path (``/metrics``,
            ``/healthz``, ``/api/v1/`` for a prefix); see :func:`make_router`.
        max_body_bytes: largest accepted request after decompression (413 / RESOURCE_EXHAUSTED).
        workers: handler threads per transport (on HTTP: for everything but ``/api/``).
        api_workers: API requests (paths under ``/api/``) running at once; more get 429.
        api_timeout_s: longest an API request runs before it is answered 503.
        tls: certificate and key (and optionally the clients' CA) for both ports; None: plain.
        authenticate: checks each export's API key (HTTP `Authorization`, gRPC metadata)
            before decoding it; None: no authentication.
        admit: checks each decoded export with what ``authenticate`` returned, before the
            handler (per-key rate limits, :mod:`spanmeter.receiver.rate_limit`); None: none.

    Raises:
        ValueError: invalid limits, or an extra route that would shadow ``/v1/traces``.
    """

    def __init__(
        self,
        handler: IngestHandler,
        *,
        host: str = "127.0.0.1",
        grpc_port: int | None = 4317,
        http_port: int | None = 4318,
        extra_http_routes: Mapping[str, WSGIApp] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        workers: int = 8,
        api_workers: int = DEFAULT_API_WORKERS,
        api_timeout_s: float = DEFAULT_API_TIMEOUT_S,
        tls: TLSFiles | None = None,
        authenticate: Authenticate | None = None,
        admit: Admit | None = None,
    ) -> None:
        if max_body_bytes <= 0 or workers <= 0 or api_workers <= 0 or not api_timeout_s > 0:
            raise ValueError(
                f"must be positive: max_body_bytes={max_body_bytes!r}, workers={workers!r},"
                f" api_workers={api_workers!r}, api_timeout_s={api_timeout_s!r}"
            )
        routes = dict(extra_http_routes or {})
        if TRACES_PATH in routes:
            raise ValueError(f"{TRACES_PATH} is served by the OTLP app and cannot be overridden")
        self._handler = handler
        self._host = host
        self._requested = (grpc_port, http_port)
        self._routes = routes
        self._max_body_bytes = max_body_bytes
        self._workers = workers
        self._api_workers = api_workers
        self._api_timeout_s = api_timeout_s
        self._tls = tls
        self._authenticate = authenticate
        self._admit = admit
        self._grpc: grpc.Server | None = None
        self._grpc_port: int | None = None
        self._http: SplitPoolServer | None = None
        self._gate: ApiGate | None = None
        self._http_port: int | None = None
        self._http_app: _DrainingApp | None = None
        self._http_thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- ports

    @property
    def grpc_port(self) -> int:
        """The bound gRPC port (after :meth:`start`)."""
        if self._grpc_port is None:
            raise RuntimeError("gRPC listener is not running")
        return self._grpc_port

    @property
    def http_port(self) -> int:
        """The bound HTTP port (after :meth:`start`)."""
        if self._http_port is None:
            raise RuntimeError("HTTP listener is not running")
        return self._http_port

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> OTLPServer:
        """Bind and start both listeners; returns self. A failed bind leaves nothing running.

        Raises:
            RuntimeError: already started.
            OSError: a port could not be bound.
        """
        with self._lock:
            if self._grpc is not None or self._http is not None:
                raise RuntimeError("OTLPServer already started")
            grpc_port, http_port = self._requested
            try:
                if grpc_port is not None:
                    self._start_grpc(grpc_port)
                if http_port is not None:
                    self._start_http(http_port)
            except BaseException:
                self._stop_now()
                raise
        return self

    def _start_grpc(self, port: int) -> None:
        server = make_grpc_server(
            self._handler,
            max_message_bytes=self._max_body_bytes,
            workers=self._workers,
            authenticate=self._authenticate,
            admit=self._admit,
        )
        address = _host_port(self._host, port)
        try:
            if self._tls is None:
                bound = server.add_insecure_port(address)
            else:
                bound = server.add_secure_port(address, self._tls.grpc_credentials())
        except RuntimeError as exc:  # grpc reports a failed bind this way
            raise OSError(f"cannot bind OTLP/gRPC to {address}: {exc}") from exc
        if not bound:
            raise OSError(f"cannot bind OTLP/gRPC to {address}")
        server.start()
        self._grpc, self._grpc_port = server, bound
        _logger.info(
            "OTLP/gRPC receiver listening on %s%s",
            _host_port(self._host, bound),
            "" if self._tls is None else " (TLS)",
        )

    def _start_http(self, port: int) -> None:
        routes: dict[str, WSGIApp] = {
            TRACES_PATH: make_otlp_wsgi_app(
                self._handler,
                max_body_bytes=self._max_body_bytes,
                authenticate=self._authenticate,
                admit=self._admit,
            ),
            **self._routes,
        }
        router = make_router(routes)
        ssl_context = self._tls.ssl_context() if self._tls is not None else None
        gate = ApiGate(router, max_concurrent=self._api_workers, timeout_s=self._api_timeout_s)
        app = _DrainingApp(_split(router, gate))
        try:
            sock = _bind(self._host, port)
        except OSError as exc:  # name the port: "Address already in use" alone does not
            address = _host_port(self._host, port)
            raise OSError(exc.errno, f"cannot bind OTLP/HTTP to {address}: {exc.strerror or exc}") from exc
        try:
            server = SplitPoolServer(
                app,
                sock,
                api_threads=self._api_workers + _API_FRONT_SPARE,
                ssl_context=ssl_context,
                threads=self._workers,
                # waitress answers 413 itself, before buffering, when Content-Length is over the
                # limit (it refuses at >= the value, hence +1); the app re-checks after decompression.
                max_request_body_size=self._max_body_bytes + 1,
                inbuf_overflow=_INBUF_OVERFLOW,
                recv_bytes=_RECV_BYTES,
                # Every exporting process keeps a connection open; waitress's default of 100 would
                # stop accepting the 101st client. poll() instead of select() lifts the 1024-fd cap.
                connection_limit=_CONNECTION_LIMIT,
                asyncore_use_poll=True,
                ident="spanmeter",
            )
        except BaseException:
            sock.close()
            gate.close()
            raise
        thread = threading.Thread(
            target=self._run_http, args=(server,), name="spanmeter-otlp-http", daemon=True
        )
        self._http, self._http_app, self._http_thread, self._gate = server, app, thread, gate
        self._http_port = int(sock.getsockname()[1])
        thread.start()
        _logger.info(
            "OTLP/HTTP receiver listening on %s://%s%s",
            "http" if ssl_context is None else "https",
            _host_port(self._host, self._http_port),
            TRACES_PATH,
        )

    @staticmethod
    def _run_http(server: SplitPoolServer) -> None:
        try:
            server.run()
        except Exception:
            _logger.exception("OTLP/HTTP server loop crashed")

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, let in-flight requests finish (at most ``grace_s``), then release the ports."""
        with self._lock:
            if self._grpc is None and self._http is None:
                return
            deadline = time.monotonic() + max(0.0, grace_s)
            grpc_stopped = self._grpc.stop(grace_s) if self._grpc is not None else None
            if self._http is not None:
                self._stop_http(deadline)
            if grpc_stopped is not None:
                grpc_stopped.wait(max(0.0, deadline - time.monotonic()) + 1.0)
            self._grpc = self._grpc_port = None
            _logger.info("OTLP receiver stopped")

    def _stop_now(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(None)
        if self._http is not None:
            self._stop_http(time.monotonic())
        self._grpc = self._grpc_port = None

    def _stop_http(self, deadline: float) -> None:
        server, app, thread, gate = self._http, self._http_app, self._http_thread, self._gate
        assert server is not None and app is not None and thread is not None and gate is not None
        socket_map: dict[int, Any] = cast(Any, server)._map  # the dispatchers waitress's loop polls

        def close_listener() -> None:
            server.accepting = False
            wasyncore.dispatcher.close(server)  # not server.close(): that also closes the wake-up pipe

        def flushed() -> bool:
            return all(
                not (getattr(ch, "requests", None) or getattr(ch, "total_outbufs_len", 0))
                for ch in socket_map.values()
            )

        def close_all() -> bool:
            wasyncore.close_all(socket_map)  # an empty map ends waitress's loop
            return True

        self._in_loop(server, close_listener, deadline)
        drained = app.drain(deadline)
        # Answers are written to the socket by the loop thread after the app returned: wait for that.
        while not self._in_loop(server, flushed, deadline) and time.monotonic() < deadline:
            time.sleep(0.01)
        if not drained:
            _logger.warning("OTLP/HTTP stop: grace period over with requests still in flight")
        # Worker threads go before the sockets: a worker that finished a request still pokes the loop.
        server.shutdown_pools(deadline - time.monotonic())
        gate.close()
        if self._in_loop(server, close_all, time.monotonic() + 1.0) is None and thread.is_alive():
            _logger.warning("OTLP/HTTP stop: server loop unresponsive, closing its sockets directly")
            close_all()
        thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
        self._http = self._http_app = self._http_thread = self._http_port = self._gate = None

    @staticmethod
    def _in_loop(server: SplitPoolServer, fn: Callable[[], _T], deadline: float) -> _T | None:
        """Run ``fn`` on waitress's loop thread (its dispatcher map is not thread-safe)."""
        done = threading.Event()
        box: list[_T] = []

        def thunk() -> None:
            try:
                box.append(fn())
            finally:
                done.set()

        cast(Any, server).trigger.pull_trigger(thunk)
        done.wait(max(0.05, deadline - time.monotonic()))
        return box[0] if box else None
