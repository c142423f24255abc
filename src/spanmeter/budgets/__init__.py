"""Budgets and alerts: budget definitions, exact evaluation at ingest, alert rules, an alerts
inbox and delivery that never loses an alert.

How the parts fit, each subpackage importing only those listed before it:

* :mod:`.definitions`: what a budget and an alert rule are (:class:`BudgetsConfig`), their
  windows, the index matching spans to budget scopes, and their JSON documents;
* :mod:`.rules`: the alert rule kinds, their judgement and the ``rules:`` section;
  :class:`RuleEvaluator` runs them over the rollups on a schedule;
* :mod:`.config` reads, validates and watches the budgets file;
* :mod:`.ledger`: :class:`BudgetLedgerHook` is registered with the store and turns each
  committed batch into counter increments judged in the same transaction;
  :func:`budget_states` answers "where does each budget stand now" for the API, the CLI
  and :class:`spanmeter.BudgetGuard`;
* :mod:`.delivery`: :class:`OutboxWorker` delivers stored alerts (webhook, Slack, log) with
  retries;
* :mod:`.editing`: ``spanmeter budgets add|remove`` on the YAML file;
* at the top, the wiring: :class:`BudgetsRuntime` and its scheduler, and
  :func:`attach_budgets`, which wires all of it into a receiver service
  (:mod:`.store_factory` opens the store with its ledger, wherever it runs).

The HTTP routes of budgets and alerts are the API's (:mod:`spanmeter.api.budgets`).

Example::

    from spanmeter.budgets import BudgetsRuntime, load_config
    runtime = BudgetsRuntime(store, config=load_config("budgets.yaml")).start()
"""

from __future__ import annotations

from .config import load_config, parse_config
from .definitions import (
    AlertRule,
    Budget,
    BudgetConfigError,
    BudgetIndex,
    BudgetsConfig,
    Channel,
    RetryPolicy,
    WindowSpec,
)
from .delivery import OutboxWorker, sign, verify_signature
from .ledger import BudgetLedgerHook, BudgetState, Snapshot, budget_states, status_document
from .rules import RuleEvaluator, alert_context
from .runtime import BudgetsRuntime, attach_budgets
from .store_factory import budgets_store_factory, open_with_budgets

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
