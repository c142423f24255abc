"""Budgets and alerts: budget definitions, exact evaluation at ingest, alert rules, an alerts
inbox and delivery that never loses an alert.

How the parts fit:

* :mod:`.config` reads and validates the budgets file into :class:`BudgetsConfig`;
* :class:`BudgetLedgerHook` is registered with the store and turns each committed batch
  into counter increments judged in the same transaction (:mod:`.matcher`, :mod:`.judge`);
* :class:`RuleEvaluator` runs the alert rules over the rollups on a schedule;
* :class:`OutboxWorker` delivers stored alerts (webhook, Slack, log) with retries;
* :func:`budget_states` answers "where does each budget stand now" for the API, the CLI
  and :class:`spanmeter.BudgetGuard`;
* :func:`attach_budgets` wires all of it into a receiver service.

Example::

    from spanmeter.budgets import BudgetsRuntime, load_config
    runtime = BudgetsRuntime(store, config=load_config("budgets.yaml")).start()
"""

from __future__ import annotations

from .config import BudgetConfigError, load_config, parse_config
from .context import alert_context
from .delivery import sign, verify_signature
from .hook import BudgetLedgerHook, Snapshot
from .matcher import BudgetIndex
from .model import AlertRule, Budget, BudgetsConfig, Channel, RetryPolicy
from .outbox import OutboxWorker
from .rules import RuleEvaluator
from .runtime import BudgetsRuntime, attach_budgets
from .status import BudgetState, budget_states, status_document
from .store_factory import budgets_store_factory, open_with_budgets
from .windows import WindowSpec

__all__ = [
    "AlertRule",
    "Budget",
    "BudgetConfigError",
    "BudgetIndex",
    "BudgetLedgerHook",
    "BudgetState",
    "BudgetsConfig",
    "BudgetsRuntime",
    "Channel",
    "OutboxWorker",
    "RetryPolicy",
    "RuleEvaluator",
    "Snapshot",
    "WindowSpec",
    "alert_context",
    "attach_budgets",
    "budget_states",
    "budgets_store_factory",
    "load_config",
    "open_with_budgets",
    "parse_config",
    "sign",
    "status_document",
    "verify_signature",
]
