"""The receiver service: store + group-commit writer + ingest pipeline + OTLP transport + API.

This is what ``spanmeter serve`` runs and what tests start in-process (ports 0)::

    with ReceiverService(ServeConfig(db=str(path), grpc_port=0, http_port=0)) as service:
        service.http_port  # the bound port

Stopping is graceful: the transport stops accepting and finishes in-flight exports, the
writer commits everything it acknowledged... and only then is the store closed.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from prometheus_client import make_wsgi_app

from ..identity import default_hasher
from ..ingest import IngestMetrics, IngestPipeline
from ..pricing import PriceBook
from ..receiver import OTLPServer
from ..store import GroupCommitWriter, SpanStore, SQLiteStore
from .api import make_api_app, make_health_app
from .config import ServeConfig

__all__ = ["ReceiverService"]

_logger = logging.getLogger(__name__)

_RETENTION_EVERY_S = 3600.0


class ReceiverService:
    """Owns every moving part of a receiver; start/stop or use as a context manager."""

    def __init__(
        self,
        config: ServeConfig,
        *,
        store: SpanStore | None = None,
        price_book: PriceBook | None = None,
    ) -> None:
        self.config = config
        self.store: SpanStore = store if store is not None else SQLiteStore(config.db)
        self.price_book = price_book if price_book is not None else _price_book(config)
        self.metrics = IngestMetrics()
        self.writer = GroupCommitWriter(
            self.store,
            max_pending_rows=config.max_pending_rows,
            on_idle=self.store.compact_rollups,
        )
        self.metrics.track_queue(lambda: self.writer.pending_rows)
        self.pipeline = IngestPipeline(
            self.writer, self.price_book, metrics=self.metrics, user_id_hasher=default_hasher()
        )
        self._accepting = False
        self._stop = threading.Event()
        self._retention = threading.Thread(
            target=self._retention_loop, name="spanmeter-retention", daemon=True
        )
        self.server = OTLPServer(
            self.pipeline,
            host=config.host,
            grpc_port=config.grpc_port,
            http_port=config.http_port,
            max_body_bytes=config.max_body_mb * 1024 * 1024,
            workers=config.workers,
            extra_http_routes={
                "/metrics": make_wsgi_app(self.metrics.registry),
                "/api/v1/": make_api_app(self.store),
                "/healthz": make_health_app(lambda: self._accepting),
                "/readyz": make_health_app(lambda: self._accepting),
            },
        )

    @property
    def grpc_port(self) -> int | None:
        """Bound OTLP/gRPC port (after start)."""
        return self.server.grpc_port

    @property
    def http_port(self) -> int | None:
        """Bound OTLP/HTTP port (after start); also serves the API and /metrics."""
        return self.server.http_port

    def start(self) -> ReceiverService:
        """Bind the ports and start serving."""
        self.server.start()
        self._accepting = True
        self._retention.start()
        _logger.info(
            "spanmeter receiver: OTLP gRPC on %s:%s, OTLP HTTP + API on %s:%s, store %s",
            self.config.host,
            self.grpc_port,
            self.config.host,
            self.http_port,
            self.config.db,
        )
        return self

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop accepting, finish in-flight exports, commit everything, close the store."""
        self._accepting = False
        self._stop.set()
        self.server.stop(grace_s)
        self.writer.close()
        self.store.close()
        _logger.info("spanmeter receiver stopped; every acknowledged span is committed")

    def __enter__(self) -> ReceiverService:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _retention_loop(self) -> None:
        while not self._stop.wait(_RETENTION_EVERY_S):
            try:
                self.store.apply_retention(
                    time.time_ns(),
                    raw_days=self.config.raw_retention_days,
                    rollup_days=self.config.rollup_retention_days,
                )
            except Exception:
                _logger.exception("retention failed; will retry in an hour")


def _price_book(config: ServeConfig) -> PriceBook:
    if config.pricing_file:
        return PriceBook.from_file(config.pricing_file)
    return PriceBook.from_env()
