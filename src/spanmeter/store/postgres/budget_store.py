""":class:`PostgresBudgetStore`: the budgets-and-alerts side of :class:`~.store.PostgresStore`,
shared by every replica on the database.

Its writes are short transactions on pooled connections (not the ingest write connection,
so a delivery being recorded never waits behind a batch); the ledger itself runs inside
ingest's transaction (:mod:`.budget_ledger`). Due deliveries are claimed, not just read
(:mod:`.alerts`), and cluster-wide scheduled work asks :meth:`PostgresBudgetStore.lead`
first (:mod:`.leader`). Reached as ``store.budget_store``.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

from ...timeunits import NS_PER_SECOND
from ..budget_store_base import BudgetStoreBase, Connections
from ..inbox import Delivery
from . import budget_ledger, queries
from .alerts import ALERTS
from .leader import AdvisoryLeader

__all__ = ["DEFAULT_CLAIM_S", "PostgresBudgetStore"]

DEFAULT_CLAIM_S: Final = 300.0
"""How long a claimed delivery stays with the replica that claimed it: longer than a pass
over a claimed batch takes (each attempt has its own timeout), so a live worker never loses
a claim mid-pass; a dead one's claims are retried by another replica after this."""

Conn = psycopg.Connection[tuple[Any, ...]]


class PostgresBudgetStore(BudgetStoreBase[Conn]):
    """Implements :class:`~spanmeter.store.inbox.BudgetStore` on the store's database.

    Args:
        transaction: Opens one transaction on a connection of its own.
        reader: Lends an autocommit connection for one read.
        leader: The leadership connection of this replica.
        claim_s: How long a claimed delivery is kept from other replicas.
    """

    def __init__(
        self,
        transaction: Connections[Conn],
        reader: Connections[Conn],
        leader: AdvisoryLeader,
        *,
        claim_s: float = DEFAULT_CLAIM_S,
    ) -> None:
        super().__init__(
            transaction, reader, ledger=budget_ledger, alerts=ALERTS, aggregate=queries.aggregate
        )
        self._leader = leader
        self._claim_ns = int(claim_s * NS_PER_SECOND)

    # -- outbox ---------------------------------------------------------------------------

    def due_deliveries(self, now_ns: int, *, limit: int = 100) -> list[Delivery]:
        """Claim the pending deliveries due now that no other replica's worker holds."""
        with self._transaction() as conn:
            return ALERTS.due_deliveries(conn, now_ns, limit, self._claim_ns)

    # -- cluster-wide work ----------------------------------------------------------------

    def lead(self, name: str) -> bool:
        """Whether this replica runs the cluster-wide job ``name`` now (see :mod:`.leader`)."""
        return self._leader.lead(name)
