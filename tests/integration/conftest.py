"""Integration fixtures: real OTLP receiver servers on 127.0.0.1, always stopped afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from spanmeter.receiver import IngestHandler, OTLPServer


@pytest.fixture
def start_otlp_server() -> Iterator[Callable[..., OTLPServer]]:
    """Start ``OTLPServer(handler, **kwargs)`` on 127.0.0.1 with free ports; stopped at teardown.

    Usage: ``server = start_otlp_server(handler, max_body_bytes=1 << 20)``.
    """
    servers: list[OTLPServer] = []

    def start(handler: IngestHandler, **kwargs: Any) -> OTLPServer:
        kwargs.setdefault("host", "127.0.0.1")
        kwargs.setdefault("grpc_port", 0)
        kwargs.setdefault("http_port", 0)
        server = OTLPServer(handler, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(grace_s=1.0)
