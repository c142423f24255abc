"""One run of the demo: a receiver with budgets, the app's traffic, then what an operator reads.

:class:`DemoSession` owns the moving parts (the receiver service on the embedded SQLite
store, the webhook that receives its alerts, the instrumented app) and answers with a
:class:`DemoResult` read back from the store through the same functions the CLI and the
API use, so what the demo prints is what ``spanmeter top``, ``budgets status``,
``alerts list`` and ``investigate`` print against the same database afterwards.

Example::

    with DemoSession(DemoSettings(db=Path("demo.db"))) as session:
        session.drive()
        session.settle()
        result = session.results()
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ..analysis import investigate, top_report
from ..analysis.investigate_documents import InvestigateReport
from ..budgets import BudgetsRuntime, budget_states, status_document
from ..budgets.delivery.documents import alert_document
from ..lifecycle import StartStop
from ..service import ReceiverService, ServeConfig
from ..store import SpanRow
from ..synthetic import SyntheticConfig, iter_rows
from ..timeunits import NS_PER_HOUR
from .scenario import DemoScenario
from .traffic import DemoApp
from .webhook import AlertSink

__all__ = ["DemoError", "DemoResult", "DemoSession", "DemoSettings"]

_POLL_S: Final = 0.05


class DemoError(RuntimeError):
    """The demo could not complete (a span was lost, the receiver failed...)."""


@dataclass(frozen=True)
class DemoSettings:
    """Where the demo keeps its store and which ports its receiver binds."""

    db: Path
    """SQLite store to create (``spanmeter demo`` refuses to replace a file without ``--force``)."""
    grpc_port: int = 0
    """OTLP/gRPC port (0: any free port)."""
    http_port: int = 0
    """OTLP/HTTP, API and ``/metrics`` port (0: any free port)."""
    store_process: bool = True
    """Commit in a separate store process, as ``spanmeter serve`` does."""
    settle_timeout_s: float = 20.0
    """Longest wait for the last commits and alert deliveries."""

    @property
    def budgets_file(self) -> Path:
        """The budgets file written next to the store."""
        return self.db.with_name(self.db.stem + "-budgets.yaml")


@dataclass
class DemoResult:
    """What the demo shows, as JSON-ready documents (the API's own shapes)."""

    scenario: DemoScenario
    db: Path
    budgets_file: Path
    http_url: str
    grpc_endpoint: str
    spans_sent: int
    spans_stored: int
    traffic_seconds: float
    top: dict[str, Any]
    """``top_report`` by endpoint tag over the incident window."""
    budgets: dict[str, Any]
    """``status_document`` of every budget state now."""
    alerts: list[dict[str, Any]]
    """The alerts inbox, newest first (``alert_document`` each)."""
    webhook_received: int
    """Alerts the demo webhook accepted (signature checked)."""
    investigation: InvestigateReport
    """``investigate`` of the incident window against the 24 hours before."""
    exporter: dict[str, int] = field(default_factory=dict[str, int])
    """The app pipeline's counters (priced, exported, dropped...)."""


class DemoSession(StartStop):
    """Receiver + webhook + app for one demo run; use as a context manager.

    Args:
        settings: Store path and ports.
        scenario: The story (default: traffic ending at the start of the current hour).
    """

    def __init__(self, settings: DemoSettings, scenario: DemoScenario | None = None) -> None:
        self.settings = settings
        self.scenario = scenario or DemoScenario.ending_at(time.time_ns())
        self.sink = AlertSink(secrets.token_hex(16))
        self.service: ReceiverService | None = None
        self.app: DemoApp | None = None
        self.traffic_seconds = 0.0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> DemoSession:
        """Write the budgets file, start the webhook and the receiver.

        Raises:
            OSError: a port could not be bound.
        """
        settings = self.settings
        self.sink.start()
        settings.budgets_file.write_text(self.scenario.budgets_yaml(self.sink.url, secret=self.sink.secret))
        config = ServeConfig(
            db=str(settings.db),
            grpc_port=settings.grpc_port,
            http_port=settings.http_port,
            budgets_file=str(settings.budgets_file),
            store_process=settings.store_process,
        )
        try:
            self.service = ReceiverService(config).start()
        except BaseException:
            self.sink.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the app pipeline, the receiver (every acknowledged span committed), the webhook."""
        if self.app is not None:
            self.app.close()
            self.app = None
        if self.service is not None:
            self.service.stop()
            self.service = None
        self.sink.stop()

    # -- the run ----------------------------------------------------------------------------

    @property
    def http_url(self) -> str:
        """The receiver's OTLP/HTTP, API and metrics base URL."""
        return f"http://127.0.0.1:{self._service().http_port}"

    @property
    def grpc_endpoint(self) -> str:
        """The receiver's OTLP/gRPC endpoint."""
        return f"127.0.0.1:{self._service().grpc_port}"

    def drive(self, progress: Callable[[int, int], object] | None = None) -> int:
        """Send the scenario's traffic hour by hour; ``progress(hours_done, spans_sent)`` after
        each hour. Returns the spans sent.

        Raises:
            DemoError: the receiver did not acknowledge an hour of traffic.
        """
        self.app = app = DemoApp(self.http_url + "/")
        started = time.perf_counter()
        scenario = self.scenario
        for boundary, rows in _hours(scenario.synthetic_config()):
            if not app.replay(rows):
                raise DemoError("the receiver did not acknowledge the traffic in time")
            if progress is not None:
                progress(min(scenario.hours, (boundary - scenario.start_ns) // NS_PER_HOUR), app.sent)
        self.traffic_seconds = time.perf_counter() - started
        return app.sent

    def settle(self) -> None:
        """Check that every span sent is stored, evaluate the alert rules now (they run on a
        schedule, every minute, in a live receiver), and wait until the webhook has every alert.

        Raises:
            DemoError: spans went missing, or the receiver failed.
        """
        service, app = self._service(), self._app()
        stats = app.stats()
        lost = stats.get("export.dropped_spans", 0) + stats.get("queue.dropped_spans", 0)
        if lost or stats.get("export.failed_spans", 0):
            raise DemoError(f"the app pipeline lost spans: {stats}")
        deadline = time.monotonic() + self.settings.settle_timeout_s
        while service.store.count_requests() < app.sent:
            if service.failed.is_set() or time.monotonic() > deadline:
                raise DemoError(
                    f"{app.sent} spans sent but {service.store.count_requests()} stored; see the log (-v)"
                )
            time.sleep(_POLL_S)
        runtime = self._runtime()
        runtime.evaluate_rules(time.time_ns(), fresh=True)  # the scheduler judged before the back-fill
        while not self._delivered():
            if time.monotonic() > deadline:
                break  # shown as pending: the inbox is the record, delivery is best effort here
            runtime.outbox.wake()
            time.sleep(_POLL_S)

    def results(self) -> DemoResult:
        """Read back what the demo shows, from the store."""
        service, scenario = self._service(), self.scenario
        runtime = self._runtime()
        now = time.time_ns()
        states = budget_states(runtime.budget_store, runtime.snapshot.index, now)
        alerts = [alert_document(record) for record in runtime.budget_store.list_alerts(limit=100)]
        return DemoResult(
            scenario=scenario,
            db=self.settings.db,
            budgets_file=self.settings.budgets_file,
            http_url=self.http_url,
            grpc_endpoint=self.grpc_endpoint,
            spans_sent=self._app().sent,
            spans_stored=service.store.count_requests(),
            traffic_seconds=self.traffic_seconds,
            top=top_report(service.store, "endpoint_tag", scenario.incident_window),
            budgets=status_document(states, now),
            alerts=alerts,
            webhook_received=len(self.sink.accepted_ids()),
            investigation=investigate(service.store, scenario.incident_window, "previous", limit=5),
            exporter=self._app().stats(),
        )

    # -- helpers ----------------------------------------------------------------------------

    def _delivered(self) -> bool:
        records = self._runtime().budget_store.list_alerts(limit=1000)
        return all(d.state != "pending" for record in records for d in record.deliveries)

    def _service(self) -> ReceiverService:
        if self.service is None:
            raise DemoError("the demo session is not started")
        return self.service

    def _app(self) -> DemoApp:
        if self.app is None:
            raise DemoError("no traffic was sent yet")
        return self.app

    def _runtime(self) -> BudgetsRuntime:
        runtime = self._service().budgets
        if runtime is None:  # the demo's store is SQLite, which always holds budgets
            raise DemoError("the demo's store holds no budgets")
        return runtime


def _hours(config: SyntheticConfig) -> Iterator[tuple[int, list[SpanRow]]]:
    """The synthetic rows in hours of span time, each with the end of its hour (the app
    flushes after each: progress that means "stored up to here", and a bounded queue)."""
    chunk: list[SpanRow] = []
    boundary = 0
    for row in iter_rows(config):
        if row.start_time_ns >= boundary:
            if chunk:
                yield boundary, chunk
                chunk = []
            boundary = row.start_time_ns - row.start_time_ns % NS_PER_HOUR + NS_PER_HOUR
        chunk.append(row)
    if chunk:
        yield boundary, chunk
