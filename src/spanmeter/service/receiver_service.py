"""The receiver service: store + writer + ingest pipeline + OTLP transport + API.

This is what ``spanmeter serve`` runs and what tests start in-process (ports 0)::

    with ReceiverService(ServeConfig(db=str(path), grpc_port=0, http_port=0)) as service:
        service.http_port  # the bound port

Two ways to run the store's writes, chosen by ``ServeConfig.store_process``:

* in a **store process** (the default on POSIX, what ``spanmeter serve`` runs): this process
  decodes, normalises and prices, a child process commits
  (:mod:`spanmeter.service.store_process`), so the two halves run on two cores instead of
  sharing one GIL;
* in a **writer thread** of this process: one process, for tests and small deployments,
  and whenever a store instance is passed in.

Either way this process serves the OTLP ports, ``/metrics`` (every counter lives here, so
it is one consistent view), ``/api/v1/*`` and health. With a store process, the API's
analysis views and exports are computed in query processes of their own, at a lower CPU
priority (:mod:`spanmeter.service.query_process`), so that they cannot take ingest's GIL;
with a writer thread they read through this process's store handle. Stopping is graceful: the transport stops accepting and finishes in-flight
exports, the writer commits everything it acknowledged, and only then is the store closed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from functools import partial
from typing import Protocol

from prometheus_client import CollectorRegistry, exposition

from ..api import make_api
from ..auth import Authenticator, AuthError, Identity
from ..budgets import attach_budgets, budgets_store_factory  # budgets and alerts
from ..identity import default_hasher
from ..ingest import IngestMetrics, IngestPipeline, LocalRowSink, RowSink
from ..lifecycle import StartStop
from ..pricing import PriceBook
from ..prometheus import BudgetMetrics, CostMetrics
from ..receiver import OTLPServer, TLSFiles, WSGIApp, require_key
from ..receiver.rate_limit import RateLimiter
from ..store import (
    GroupCommitWriter,
    KeyStore,
    SpanStore,
    SupportsBudgets,
    open_store,
    open_store_for_reading,
)
from .config import ServeConfig
from .exposure import exposure_problem
from .maintenance import RetentionLoop
from .query_process import DEFAULT_IDLE_EXIT_S, QueryProcesses, QueryProcessSettings
from .store_process import StoreProcessClient, StoreProcessSettings

__all__ = ["ReceiverService"]


def _metrics_reader(authenticator: Authenticator, authorization: str | None) -> Identity | None:
    """A read key's identity for ``/metrics``; a key limited to tenants is refused, as the
    counters there are every tenant's.

    Raises:
        AuthError: no or an unknown key (unauthenticated), or one that may not read them.
    """
    identity = authenticator.check(authorization, "read")
    if identity is not None and identity.tenants is not None:
        raise AuthError(
            "forbidden",
            f"API key {identity.name!r} is limited to tenants; /metrics shows every tenant's counters",
        )
    return identity


_logger = logging.getLogger(__name__)


class _Exposition(Protocol):
    """The part of ``prometheus_client.exposition`` used here, with the app's type spelled out
    (the library annotates ``make_wsgi_app`` as returning a bare ``Callable``)."""

    def make_wsgi_app(self, registry: CollectorRegistry) -> WSGIApp: ...


_exposition: _Exposition = exposition


class ReceiverService(StartStop):
    """Owns every moving part of a receiver; start/stop or use as a context manager.

    Args:
        config: Ports, store path, limits, and whether the store gets its own process.
        store: A store instance to use; implies the in-process writer (an instance cannot
            move to another process).
        store_factory: Builds the store (default: SQLite at ``config.db``); must pickle
            when ``config.store_process`` is on, since the store process calls it too.
        price_book: Prices (default: from ``config.pricing_file`` or the environment).
    """

    def __init__(
        self,
        config: ServeConfig,
        *,
        store: SpanStore | None = None,
        store_factory: Callable[[], SpanStore] | None = None,
        price_book: PriceBook | None = None,
    ) -> None:
        self.config = config
        factory = store_factory if store_factory is not None else partial(open_store, config.db)
        # The query processes only read: no budgets ledger, and our own store opened read-only
        # (a SQLite file: no write connection, no migration, SQLite refuses any write).
        read_factory = (
            store_factory if store_factory is not None else partial(open_store_for_reading, config.db)
        )
        factory = budgets_store_factory(factory, config)  # budgets: the ledger opens with the store
        # In store-process mode this handle only reads (API, stats); opening it here also
        # creates and migrates the database before the child opens it.
        self.store: SpanStore = store if store is not None else factory()
        self.price_book = price_book if price_book is not None else _price_book(config)
        self.metrics = IngestMetrics()
        self.failed = threading.Event()
        """Set when the store process died: the service no longer stores, and its owner
        should stop it and exit non-zero so that a supervisor restarts it."""
        # Prometheus cost counters (spanmeter.prometheus.cost_metrics): what each commit stored
        # is summed per label set where the commit happens (the store process, or the writer
        # thread) and merged here before the batch's future resolves, so the per-row work stays
        # off this process, which bounds ingest.
        self.cost_metrics = CostMetrics(
            top_tenants=config.metrics_top_tenants,
            store=self.store,
            promotion_delay_s=config.metrics_promotion_delay_s,
            max_label_sets=config.metrics_max_label_sets,
        )
        self._store_process: StoreProcessClient | None = None
        self._writer: GroupCommitWriter | None = None
        self._retention: RetentionLoop | None = None
        self.sink: RowSink = self._open_sink(factory, separate=config.store_process and store is None)
        # The API's heavy queries: in processes of their own beside a store process (they open
        # the store from the same picklable factory), else on this process's API threads.
        self._queries: QueryProcesses | None = None
        if self._store_process is not None:
            self._queries = QueryProcesses(
                QueryProcessSettings(read_factory, log_level=logging.getLogger().getEffectiveLevel()),
                size=config.api_workers,
                timeout_s=config.api_timeout_s,
                idle_exit_s=DEFAULT_IDLE_EXIT_S,
            )
        self.metrics.registry.register(self.cost_metrics)
        self.metrics.track_queue(lambda: self.sink.pending_rows)
        self.pipeline = IngestPipeline(
            self.sink, self.price_book, metrics=self.metrics, user_id_hasher=default_hasher()
        )
        self._accepting = False
        self._stopped = False
        self._stop_lock = threading.Lock()
        # budgets and alerts (spanmeter.budgets), on a store that holds them (SQLite, PostgreSQL)
        self.budgets = attach_budgets(self, config) if isinstance(self.store, SupportsBudgets) else None
        if self.budgets is not None:
            if self._store_process is not None:  # the ledger counts there; reload it first
                self.budgets.count_elsewhere(self._store_process.sync_ledger)
            self.metrics.registry.register(BudgetMetrics(self.budgets, top_states=config.metrics_top_tenants))
        self.server = self._server()

    def _open_sink(self, factory: Callable[[], SpanStore], *, separate: bool) -> RowSink:
        """Where the pipeline's rows go: a store process of their own when asked (and possible:
        it inherits its socket, so POSIX only), else a group-commit writer thread here, with
        retention run here too."""
        config = self.config
        if separate and os.name == "posix":
            self._store_process = StoreProcessClient(
                StoreProcessSettings(
                    store_factory=factory,
                    max_pending_rows=config.max_pending_rows,
                    raw_retention_days=config.raw_retention_days,
                    rollup_retention_days=config.rollup_retention_days,
                    log_level=logging.getLogger().getEffectiveLevel(),
                    commit_observer=self.cost_metrics.summer_factory(),
                ),
                on_exit=self._on_store_process_exit,
                on_observed=self.cost_metrics.merge,
            )
            self.cost_metrics.watch_tenants(self._store_process.configure_observer)
            return self._store_process
        writer = self._writer = GroupCommitWriter(
            self.store,
            max_pending_rows=config.max_pending_rows,
            on_idle=partial(self.store.compact_rollups, max_buckets=1),  # one step at a time
        )
        sink = self.cost_metrics.metered(LocalRowSink(writer))
        self._retention = RetentionLoop(
            self.store, raw_days=config.raw_retention_days, rollup_days=config.rollup_retention_days
        )
        return sink

    def _server(self) -> OTLPServer:
        """The OTLP server, with the HTTP routes served beside OTLP (metrics, the JSON API,
        health and readiness, budgets and alerts)."""
        config = self.config
        store = self.store
        # API keys (spanmeter keys): checked on both OTLP transports and the JSON API once one exists
        authenticator = Authenticator(store) if isinstance(store, KeyStore) else None
        authenticate = None if authenticator is None else partial(authenticator.check, needed="ingest")
        metrics_app = _exposition.make_wsgi_app(self.metrics.registry)
        if config.metrics_auth:  # Prometheus' authorization block: a read (or admin) key
            if authenticator is None:
                raise ValueError(f"metrics_auth: the store {store.location} holds no API keys")
            metrics_app = require_key(metrics_app, partial(_metrics_reader, authenticator))
        return OTLPServer(
            self.pipeline,
            host=config.host,
            grpc_port=config.grpc_port,
            http_port=config.http_port,
            max_body_bytes=config.max_body_mb * 1024 * 1024,
            workers=config.workers,
            api_workers=config.api_workers,
            api_timeout_s=config.api_timeout_s,
            tls=_tls(config),
            authenticate=authenticate,
            # per-key ingest rate limits (keys create --rate-limit, serve --ingest-rate-limit)
            admit=RateLimiter(
                default_rate=config.ingest_rate_limit, on_refused=self.metrics.count_rate_limited
            ),
            extra_http_routes={
                "/metrics": metrics_app,
                # the JSON API, budgets and alerts included, and health: one app
                **make_api(
                    store,
                    budgets=self.budgets,
                    ready=lambda: self.ready,
                    warning=self._warning(authenticator),
                    authenticator=authenticator,
                    queries=self._queries,
                ).mounts(),
            },
        )

    def _warning(self, authenticator: Authenticator | None) -> Callable[[], str | None] | None:
        """What ``/readyz`` warns about: with ``insecure_no_auth``, why the receiver is exposed,
        for as long as it is (a key made later ends it within the authenticator's cache time)."""
        if not self.config.insecure_no_auth:
            return None
        host = self.config.host

        def warning() -> str | None:
            has_keys = authenticator is not None and authenticator.enabled()
            problem = exposure_problem(host, has_keys=has_keys)
            return (
                None if problem is None else f"insecure (--insecure-no-auth): serving {host} with {problem}"
            )

        return warning

    @property
    def grpc_port(self) -> int | None:
        """Bound OTLP/gRPC port (after start); None when not listening (``grpc_port: off``)."""
        try:
            return self.server.grpc_port
        except RuntimeError:  # the server's way of saying "this listener is not running"
            return None

    @property
    def http_port(self) -> int | None:
        """Bound OTLP/HTTP port (after start), also serving the API and /metrics; None when
        not listening."""
        try:
            return self.server.http_port
        except RuntimeError:
            return None

    @property
    def store_process_pid(self) -> int | None:
        """Process id of the store process, when there is one (after start)."""
        return None if self._store_process is None else self._store_process.pid

    @property
    def query_process_pids(self) -> list[int]:
        """Process ids of the query processes running now (none without a store process)."""
        return [] if self._queries is None else self._queries.pids

    def start(self) -> ReceiverService:
        """Start the store's writer, then bind the ports and start serving.

        Raises:
            OSError: A port could not be bound.
            RuntimeError: The store process could not open the store.
        """
        if self._store_process is not None:
            self._store_process.start()
        try:
            if self._queries is not None:
                self._queries.start(lazily=True)  # memory only once the API is used
            self.server.start()
        except BaseException:
            if self._queries is not None:
                self._queries.close()
            self.sink.close()
            raise
        self._accepting = True
        if self._retention is not None:
            self._retention.start()
        if self.budgets is not None:
            self.budgets.start()  # budgets and alerts
        _logger.info(
            "spanmeter receiver: OTLP gRPC on %s:%s, OTLP HTTP + API on %s:%s%s, store %s (%s)",
            self.config.host,
            self.grpc_port,
            self.config.host,
            self.http_port,
            " (TLS)" if self.config.tls_cert else "",
            self.config.db,
            "writer process" if self._store_process is not None else "writer thread",
        )
        return self

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop accepting, finish in-flight exports, commit everything, close the store.

        Idempotent: a second call (a signal handler and a ``with`` block both stopping)
        returns at once, since the parts it stops cannot all be stopped twice.
        """
        self._accepting = False
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self.server.stop(grace_s)
        if self._queries is not None:  # after the API stopped: nothing asks them any more
            self._queries.close()
        if self._retention is not None:
            self._retention.stop()
        self.sink.close()
        if self.budgets is not None:
            self.budgets.stop()  # budgets and alerts: after the last commit, before the store closes
        self.store.close()
        _logger.info("spanmeter receiver stopped; every acknowledged span is committed")

    @property
    def ready(self) -> bool:
        """What ``/readyz`` answers: serving and able to store (false before :meth:`start`
        has bound the ports, from the moment :meth:`stop` begins, once the store process
        died, while the store cannot be reached, e.g. a PostgreSQL database down, and from a
        failed commit, e.g. a disk full, until a commit succeeds again or a few seconds pass
        without another failure: see :class:`~spanmeter.outage.CommitHealth`)."""
        writes = self._store_process if self._store_process is not None else self._writer
        failing = writes is not None and writes.writes_failing
        return self._accepting and not self.failed.is_set() and not failing and self.store.available()

    def _on_store_process_exit(self, code: int | None) -> None:
        _logger.critical("spanmeter: the store process exited (code %s); exports now fail retryably", code)
        self.failed.set()


def _tls(config: ServeConfig) -> TLSFiles | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    return TLSFiles(cert=config.tls_cert, key=config.tls_key, client_ca=config.tls_client_ca)


def _price_book(config: ServeConfig) -> PriceBook:
    if config.pricing_file:
        return PriceBook.from_file(config.pricing_file)
    return PriceBook.from_env()
