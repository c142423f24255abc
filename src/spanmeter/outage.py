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

__all__ = ["OutageLog"]


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
