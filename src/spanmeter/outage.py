"""Log an outage once, not once per failed attempt.

While a dependency is down (the PostgreSQL database, a full disk), every commit, every idle
compaction and every exporter's retry fails the same way, many times a second. The first
failure is worth a warning with its reason; the rest are counted; the recovery is logged with
how many failures and how long it lasted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

__all__ = ["NOT_READY_AFTER_FAILURE_S", "CommitHealth", "OutageLog"]


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


class OutageLog:
    """One warning when ``what`` starts failing, one line when it works again.

    Args:
        logger: Where the two lines go.
        what: What fails, as a phrase (``"store writes"``).
    """

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._logger = logger
        self._what = what
        self._lock = threading.Lock()
        self._failures = 0
        self._since = 0.0

    @property
    def failing(self) -> bool:
        """Has the last attempt failed?"""
        return self._failures > 0

    def failed(self, error: BaseException) -> None:
        """Count a failure; the first of an outage is logged with its reason (first line)."""
        with self._lock:
            self._failures += 1
            first = self._failures == 1
            if first:
                self._since = time.monotonic()
        if first:
            self._logger.warning(
                "spanmeter: %s failing (%s); retried, logged again once they work", self._what, _reason(error)
            )

    def succeeded(self) -> None:
        """End an outage, if one was going on, with one line saying how long it lasted."""
        if not self._failures:  # the common case: no lock, nothing to say
            return
        with self._lock:
            failures, self._failures = self._failures, 0
            lasted = time.monotonic() - self._since
        if failures:
            self._logger.warning(
                "spanmeter: %s work again after %d failures over %.1f s", self._what, failures, lasted
            )


NOT_READY_AFTER_FAILURE_S: Final = 5.0
"""How long a failed commit keeps ``/readyz`` at 503 when nothing else is committed."""


class CommitHealth:
    """Whether commits are failing, for readiness: from a failed commit until one succeeds,
    or until ``hold_s`` passed without another failure.

    Why the time limit: a load balancer stops sending exports to a replica that is not ready,
    so a replica waiting for a commit to succeed would never get one, and stay out of rotation
    after the disk was freed or the database came back. After ``hold_s`` it is ready again
    ("half-open"): the next export tries a commit, and if that fails too, readiness is lost for
    another ``hold_s``. An unreachable database is not ready all along (the store's own check).
    """

    def __init__(
        self, hold_s: float = NOT_READY_AFTER_FAILURE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._hold_s = hold_s
        self._clock = clock
        self._failed_at: float | None = None

    def failed(self) -> None:
        """A commit failed (the store could not write, not a refused batch)."""
        self._failed_at = self._clock()

    def succeeded(self) -> None:
        """A commit succeeded."""
        self._failed_at = None

    @property
    def failing(self) -> bool:
        """Did a commit fail, with none succeeding since, within the last ``hold_s``?"""
        failed_at = self._failed_at
        return failed_at is not None and self._clock() - failed_at < self._hold_s
