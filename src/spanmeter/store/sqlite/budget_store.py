""":class:`SQLiteBudgetStore`: the budgets-and-alerts side of :class:`~.store.SQLiteStore`.

It shares the store's single write connection (through the store's transaction factory,
so its short transactions queue behind ingest like retention does) and its per-thread
read connections. Reached as ``store.budget_store``. What each method does around its
statements is :class:`~spanmeter.store.budget_store_base.BudgetStoreBase`'s; the statements
are :mod:`.budget_ledger`'s and :mod:`.alerts`' (an :class:`~spanmeter.store.alert_store.AlertStore`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import nullcontext

from ..budget_store_base import BudgetStoreBase
from . import budget_ledger
from .alerts import ALERTS
from .analysis_queries import aggregate
from .maintenance import Transaction

__all__ = ["SQLiteBudgetStore"]


class SQLiteBudgetStore(BudgetStoreBase[sqlite3.Connection]):
    """Implements :class:`~spanmeter.store.inbox.BudgetStore` on the store's connections.

    Args:
        transaction: Opens one write transaction under the store's write lock.
        reader: This thread's read connection.
    """

    def __init__(self, transaction: Transaction, reader: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(
            transaction,
            lambda: nullcontext(reader()),
            ledger=budget_ledger,
            alerts=ALERTS,
            aggregate=aggregate,
        )
