"""The JSON API of budgets and alerts: the ``/api/v1/budgets`` and ``/api/v1/alerts`` routes
(:mod:`.api`) and the documents of budget definitions they serve (:mod:`.documents`)."""

from __future__ import annotations

from .api import BudgetsSource, WSGIApp, make_budgets_api
from .documents import budgets_document

__all__ = ["BudgetsSource", "WSGIApp", "budgets_document", "make_budgets_api"]
