"""Reloading the budgets file when it changes.

The file is re-read when its size, modification time or inode changed (an editor's save, a
ConfigMap update swapping a symlink) and its content differs. A new version that does not
validate is logged with every problem and the previous budgets stay in force: a typo must
never switch budgets off.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from ..definitions.model import BudgetsConfig
from .load import BudgetConfigError, load_config

__all__ = ["ConfigWatcher"]

_logger = logging.getLogger(__name__)


class ConfigWatcher:
    """Reloads a budgets file when it changes.

    Args:
        path: The budgets file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._signature: tuple[int, int, int] | None = None
        self._digest: str | None = None
        self.last_error: str | None = None
        """The problems of the last version that failed to load (None once one loads)."""

    @property
    def digest(self) -> str | None:
        """SHA-256 (hex) of the file's content as last loaded: the config's fingerprint."""
        return self._digest

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def load(self) -> BudgetsConfig:
        """Load now (at start: errors propagate).

        Raises:
            BudgetConfigError: the file is missing or invalid.
        """
        signature = self._stat()
        config = load_config(self.path)
        self._signature = signature
        self._digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self.last_error = None
        return config

    def poll(self) -> BudgetsConfig | None:
        """The new config if the file changed and validates; None otherwise (errors logged)."""
        signature = self._stat()
        if signature is None or signature == self._signature:
            return None
        self._signature = signature
        try:
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None
        if digest == self._digest:
            return None
        try:
            config = load_config(self.path)
        except BudgetConfigError as error:
            self.last_error = str(error)
            _logger.error(
                "spanmeter: budgets file changed but is invalid; keeping the previous budgets. %s", error
            )
            return None
        self._digest = digest
        self.last_error = None
        _logger.info(
            "spanmeter: reloaded %s: %d budgets, %d rules", self.path, len(config.budgets), len(config.rules)
        )
        return config
