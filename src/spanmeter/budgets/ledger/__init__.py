"""Budgets counted at ingest: the ledger hook the store runs inside each write transaction
(:mod:`.hook`), the judge that turns its totals into level changes and alerts
(:mod:`.judge`), and where each budget stands now (:mod:`.status`)."""

from __future__ import annotations

from .hook import BudgetLedgerHook, Snapshot
from .judge import BudgetJudge
from .status import BudgetState, budget_states, status_document

__all__ = ["BudgetJudge", "BudgetLedgerHook", "BudgetState", "Snapshot", "budget_states", "status_document"]
