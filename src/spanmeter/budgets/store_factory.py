"""Open a store with the budgets ledger registered: wherever the store is, the ledger is.

The ledger must run inside the write transaction, so it must live in the process that
writes. A receiver may write from a separate store process, which builds its store from a
picklable factory; wrapping that factory here carries the budgets file along, and the
store is opened with its :class:`~spanmeter.budgets.ledger.hook.BudgetLedgerHook` registered and
watching the file in whichever process opens it::

    factory = budgets_store_factory(partial(SQLiteStore, "spanmeter.db"), config)
    store = factory()          # here or in the store process: same budgets, same reloads
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Protocol, TypeVar

from .. import environment_variables as env
from ..store import SpanStore, SupportsBudgets

__all__ = ["BudgetsFileSetting", "budgets_path", "budgets_store_factory", "open_with_budgets"]

S = TypeVar("S", bound=SpanStore)


class BudgetsFileSetting(Protocol):
    """A serve config as far as budgets go (:class:`spanmeter.service.config.ServeConfig` is
    one): the budgets file it names, None for none."""

    @property
    def budgets_file(self) -> str | None: ...


def budgets_path(config: BudgetsFileSetting) -> str | None:
    """The budgets file of a serve config (``budgets_file``), else ``SPANMETER_BUDGETS_FILE``."""
    return config.budgets_file or os.environ.get(env.SPANMETER_BUDGETS_FILE) or None


def open_with_budgets(factory: Callable[[], S], path: str) -> S:
    """``factory()`` with a ledger hook for the budgets file ``path`` registered and watching.

    Raises:
        BudgetConfigError: the file is missing or invalid.
        TypeError: the store cannot host budgets.
    """
    from .ledger.hook import BudgetLedgerHook

    store = factory()
    if not isinstance(store, SupportsBudgets):
        store.close()
        raise TypeError(f"{type(store).__name__} cannot host budgets")
    try:
        store.attach_ledger(BudgetLedgerHook(path=path).watch())
    except BaseException:
        store.close()
        raise
    return store


def budgets_store_factory(factory: Callable[[], S], config: BudgetsFileSetting) -> Callable[[], S]:
    """``factory`` itself without a budgets file; else one that opens with the ledger (picklable
    if ``factory`` is). Validates the file now, so a bad one stops ``serve`` at once.

    Raises:
        BudgetConfigError: the file is missing or invalid.
    """
    path = budgets_path(config)
    if not path:
        return factory
    from .config.load import load_config

    load_config(path)
    return partial(open_with_budgets, factory, path)
