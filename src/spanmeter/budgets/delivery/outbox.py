"""The outbox worker: delivers each stored alert to each of its channels, once.

Alerts and their outbox rows are committed together with whatever caused them, so a
delivery is never lost: if the receiver stops, the rows are still pending when it starts
again; if an endpoint is down, the row is retried with exponential backoff and jitter
(``delivery.retry``: 1 s doubling to 5 min by default, given up after 24 h and marked dead,
logged). A delivery is marked done only after the endpoint answered 2xx, and the worker
finishes the attempt in flight before it stops, so a graceful restart never sends one
twice. Only a hard crash between a 2xx and its commit can repeat a delivery; the
``Idempotency-Key`` header, the same on every attempt, lets the receiver drop it.

Before the first delivery of an alert the worker attaches its investigation context
(:mod:`spanmeter.budgets.rules.context`), off the ingest path.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Final

from ...outage import OutageLog
from ...store import AlertRecord, BudgetStore, Delivery, SpanStore, StoreBusy, delivery_update
from ...timeunits import NS_PER_SECOND
from ..definitions.model import BudgetsConfig
from ..rules.context import alert_context
from .channels import DeliveryError, send

__all__ = ["OutboxWorker"]

_logger = logging.getLogger(__name__)

_BATCH: Final = 100


class OutboxWorker:
    """Polls the outbox and delivers due rows, on its own thread.

    Args:
        store: The span store (for the context queries).
        budget_store: The inbox and outbox.
        config: Returns the config in force (channels and retry policy can be reloaded).
        clock: Unix time in ns.
        api_base: Returns the base URL of the API for links (None: relative links).
        poll_s: Pause between polls when nothing is due (a new alert wakes it sooner).
    """

    def __init__(
        self,
        store: SpanStore,
        budget_store: BudgetStore,
        config: Callable[[], BudgetsConfig],
        *,
        clock: Callable[[], int] = time.time_ns,
        api_base: Callable[[], str | None] = lambda: None,
        poll_s: float = 0.5,
    ) -> None:
        self._store = store
        self._inbox = budget_store
        self._config = config
        self._outage = OutageLog(_logger, "alert deliveries")
        self._clock = clock
        self._api_base = api_base
        self._poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._random = random.Random()
        self.delivered = 0
        """Deliveries completed since start."""
        self.failed_attempts = 0

    def start(self) -> OutboxWorker:
        """Start the worker thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="spanmeter-alert-outbox", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """Poll now (new alerts were committed)."""
        self._wake.set()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Finish the delivery in flight, then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once() > 0
                self._outage.succeeded()
            except StoreBusy as unavailable:  # the store unreachable: one warning per outage
                self._outage.failed(unavailable)
                busy = False
            except Exception:  # a store error must not end deliveries for good
                _logger.exception("spanmeter: alert outbox pass failed; retrying")
                busy = False
            if not busy:
                self._wake.wait(self._poll_s)
                self._wake.clear()

    def run_once(self) -> int:
        """Attempt every due delivery once (stopping early if asked to stop); returns how many."""
        now = self._clock()
        due = self._inbox.due_deliveries(now, limit=_BATCH)
        alerts: dict[int, AlertRecord | None] = {}
        attempted = 0
        for delivery in due:
            if self._stop.is_set():
                break
            if delivery.event_id not in alerts:
                alerts[delivery.event_id] = self._prepared(delivery.event_id)
            alert = alerts[delivery.event_id]
            if alert is not None:
                self._attempt(delivery, alert)
                attempted += 1
        return attempted

    def _prepared(self, event_id: int) -> AlertRecord | None:
        alert = self._inbox.get_alert(event_id)
        if alert is None or alert.context is not None:
            return alert
        try:
            context = alert_context(self._store, alert, api_base=self._api_base())
            self._inbox.set_alert_context(event_id, context, now_ns=self._clock())
            return self._inbox.get_alert(event_id)
        except Exception:  # deliver without context rather than not at all
            _logger.exception("spanmeter: could not build the context of alert %d", event_id)
            return alert

    def _attempt(self, delivery: Delivery, alert: AlertRecord) -> None:
        config = self._config()
        channel = config.channel(delivery.channel)
        now = self._clock()
        if channel is None:
            self._record(delivery, "dead", now, error="channel no longer configured")
            _logger.error(
                "spanmeter: alert %d: channel %r is gone; not delivered", alert.id, delivery.channel
            )
            return
        policy = config.retry
        try:
            send(channel, alert, timeout_s=policy.timeout_s, now_s=now / NS_PER_SECOND)
        except DeliveryError as error:
            self.failed_attempts += 1
            now = self._clock()
            age_s = (now - alert.occurred_at_ns) / NS_PER_SECOND
            if not error.retryable or age_s >= policy.give_up_after_s:
                self._record(delivery, "dead", now, error=str(error))
                _logger.error(
                    "spanmeter: alert %d not delivered to %s, giving up after %d attempts: %s",
                    alert.id,
                    channel.name,
                    delivery.attempts + 1,
                    error,
                )
                return
            delay = policy.delay_s(delivery.attempts, self._random.random())
            if error.retry_after_s is not None:
                delay = max(delay, min(error.retry_after_s, policy.max_s))
            self._record(
                delivery, "pending", now, error=str(error), next_attempt_ns=now + int(delay * NS_PER_SECOND)
            )
            _logger.warning(
                "spanmeter: alert %d to %s failed (%s); retry in %.1f s", alert.id, channel.name, error, delay
            )
            return
        self._record(delivery, "delivered", self._clock())
        self.delivered += 1

    def _record(
        self,
        delivery: Delivery,
        state: str,
        now: int,
        *,
        error: str | None = None,
        next_attempt_ns: int | None = None,
    ) -> None:
        update = delivery_update(state, now_ns=now, next_attempt_ns=next_attempt_ns, error=error)
        self._inbox.record_delivery(delivery.event_id, delivery.channel, update)
