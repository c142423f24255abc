"""The budgets file: YAML read and validated into a :class:`~spanmeter.budgets.BudgetsConfig`
(:mod:`.load`), and watched for changes (:mod:`.watch`)."""

from __future__ import annotations

from .load import load_config, parse_config
from .watch import ConfigWatcher

__all__ = ["ConfigWatcher", "load_config", "parse_config"]
