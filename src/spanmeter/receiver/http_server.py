"""The HTTP port's server: waitress, with OTLP ingest and the JSON API on separate thread
pools, and optional TLS.

**Two pools behind one port.** waitress reads and parses every request on its event-loop
thread and only then hands it to a worker thread (``add_task``), so the path is known before
any worker is taken. :class:`SplitPoolServer` sends requests under ``/api/`` to a pool of
their own and everything else (``POST /v1/traces``, ``/metrics``, health) to the ingest
pool: a burst of slow queries fills the API pool and its queue, never the threads exporters
need. One public port is kept on purpose: the Collector, the SDKs' ``OTEL_EXPORTER_OTLP_*``
settings, health probes and dashboards all point at one address, and a second listener (or
an internal proxy) would mean a second address to configure, secure and document, or a copy
of every body through a proxy thread.

**TLS.** waitress has no TLS of its own. :class:`TLSChannel` wraps each accepted connection
in the port's ``ssl.SSLContext`` and runs the handshake, reads and writes non-blocking on
waitress's event loop, so a client that connects and stays silent holds no thread (its
connection is closed by waitress's idle timeout). The alternatives were weighed: cheroot has
a TLS adapter but performs the handshake on its single accepting thread, so one silent
client stalls every new connection for the socket timeout, and it parses requests on worker
threads, which would make the separate ingest pool impossible; gunicorn and the ASGI
servers run as their own processes or event loops, not inside a service that also runs the
gRPC port and a store writer.

Example::

    server = SplitPoolServer(app, sock, api_threads=4, ssl_context=None, threads=8)
    server.run()
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from typing import Any, Final, cast

from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from spanmeter.receiver.http_app import WSGIApp

__all__ = ["API_PREFIX", "SplitPoolServer", "TLSChannel"]

_logger = logging.getLogger(__name__)

API_PREFIX: Final = "/api/"
"""Every path under this prefix runs on the API pool."""
_TLS_RECORD: Final = 16 * 1024


class TLSChannel(HTTPChannel):
    """A waitress connection over TLS: the handshake first, then waitress's HTTP handling on
    decrypted bytes.

    Non-blocking TLS differs from a plain socket in two ways handled here: a read or a write
    may need the other direction first (``SSLWantReadError`` / ``SSLWantWriteError``, which
    mean "try again when the socket is ready", not "closed"), and decrypted bytes can wait in
    the TLS layer where the event loop's ``poll`` cannot see them, so every read drains them.
    """

    _handshaken = False
    _want_write = False

    def readable(self) -> bool:
        if not self._handshaken:
            return not self.will_close
        return bool(super().readable())

    def writable(self) -> bool:
        if not self._handshaken:
            return bool(self._want_write or self.will_close)
        return bool(self._want_write or super().writable())

    def handle_read(self) -> None:
        if not self._handshaken:
            self._handshake()
            return
        try:
            data = self._read_decrypted()
        except OSError:
            if self.adj.log_socket_errors:
                _logger.debug("TLS read failed; closing the connection", exc_info=True)
            self.handle_close()
            return
        if data is None:  # a partial record: wait for the rest
            return
        if data:
            self.last_activity = time.time()
            self.received(data)
        else:
            self.connected = False

    def handle_write(self) -> None:
        if not self._handshaken:
            if self.will_close:
                self.handle_close()
            else:
                self._handshake()
            return
        self._want_write = False
        super().handle_write()

    def _handshake(self) -> None:
        sock = cast(ssl.SSLSocket, self.socket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want_write = False
            return
        except ssl.SSLWantWriteError:
            self._want_write = True
            return
        except (ssl.SSLError, OSError) as exc:
            # A plain-HTTP client, a client without an accepted certificate, a port scanner.
            _logger.info("TLS handshake with %s failed: %s", self.addr[0] if self.addr else "?", exc)
            self.handle_close()
            return
        self._handshaken = True
        self._want_write = False
        self.last_activity = time.time()
        self.handle_read()  # the request may have come with the handshake's last flight

    def _read_decrypted(self) -> bytes | None:
        """Everything readable now: b"" at end of stream, None if nothing is decrypted yet."""
        sock = cast(ssl.SSLSocket, self.socket)
        limit = max(int(self.adj.recv_bytes), _TLS_RECORD)
        parts: list[bytes] = []
        total = 0
        while True:
            pending = sock.pending()
            if total >= limit and not pending:
                break
            try:
                chunk = sock.recv(max(pending, min(limit, _TLS_RECORD * 4)))
            except ssl.SSLWantReadError:
                break
            except ssl.SSLWantWriteError:
                self._want_write = True
                break
            if not chunk:
                if parts:
                    break  # deliver what came first; the next read sees the end again
                self.handle_close()
                return b""
            parts.append(chunk)
            total += len(chunk)
        return b"".join(parts) if parts else None

    def send(self, data: Any, do_close: bool = True) -> int:
        try:
            return int(cast(ssl.SSLSocket, self.socket).send(data))
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return 0  # OpenSSL wants the same bytes again once the socket is writable
        except ssl.SSLError:
            if do_close:
                self.handle_close()
            return 0
        except OSError:
            return int(super().send(data, do_close))


class SplitPoolServer(TcpWSGIServer):
    """waitress on one already-bound TCP socket, with an API pool beside the ingest pool and
    TLS when ``ssl_context`` is given (see the module).

    Args:
        application: the WSGI app for every path.
        sock: the bound listening socket.
        api_threads: threads of the API pool.
        ssl_context: the port's server context, or None for plain HTTP.
        **adjustments: waitress settings (``threads`` sizes the ingest pool).
    """

    def __init__(
        self,
        application: WSGIApp,
        sock: socket.socket,
        *,
        api_threads: int,
        ssl_context: ssl.SSLContext | None,
        **adjustments: Any,
    ) -> None:
        self._ssl_context = ssl_context
        self.api_dispatcher = ThreadedTaskDispatcher()
        self.api_dispatcher.set_thread_count(api_threads)
        if ssl_context is not None:
            self.channel_class = TLSChannel
            adjustments.setdefault("url_scheme", "https")
        super().__init__(
            application,
            map={},
            _sock=sock,
            bind_socket=False,
            sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()),
            **adjustments,
        )

    def add_task(self, task: Any) -> None:
        """Queue a parsed request on its pool (called on the event loop once it is read)."""
        requests = getattr(task, "requests", None)
        path = str(getattr(requests[0], "path", "") or "") if requests else ""
        dispatcher = self.api_dispatcher if path.startswith(API_PREFIX) else self.task_dispatcher
        dispatcher.add_task(task)

    def handle_accept(self) -> None:
        if self._ssl_context is None:
            super().handle_accept()
            return
        try:
            pair = self.accept()
            if pair is None:
                return
            conn, addr = pair
            self.set_socket_options(conn)
            # No handshake here: it runs non-blocking in the channel, off this accept path.
            conn = self._ssl_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        except OSError:
            if self.adj.log_socket_errors:
                _logger.warning("accept() failed", exc_info=True)
            return
        self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=cast(Any, self)._map)

    def shutdown_pools(self, timeout: float) -> None:
        """Stop both pools' threads, dropping queued requests (their clients retry)."""
        for dispatcher in (self.task_dispatcher, self.api_dispatcher):
            cast(Any, dispatcher).shutdown(cancel_pending=True, timeout=max(0.1, timeout))
