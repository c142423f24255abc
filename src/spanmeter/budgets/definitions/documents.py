"""JSON documents of budget definitions, shared by the API and the CLI (so they agree)."""

from __future__ import annotations

from typing import Any

from ...money import usd
from ...timeunits import NS_PER_SECOND
from .model import Budget, BudgetsConfig, percent

__all__ = ["budget_document", "budgets_document"]


def budget_document(budget: Budget) -> dict[str, Any]:
    """One budget definition."""
    return {
        "name": budget.name,
        "description": budget.description,
        "scope": dict(budget.scope),
        "window": {
            "kind": budget.window.kind,
            "timezone": budget.window.timezone,
            "hours": budget.window.hours,
        },
        "window_text": budget.window.describe(),
        "limit_usd": usd(budget.limit_nano_usd),
        "warn_at": [percent(f) for f in budget.warn_at],
        "forecast": budget.forecast,
        "channels": list(budget.channels) if budget.channels is not None else None,
        "counter": budget.counter,
    }


def budgets_document(config: BudgetsConfig, *, config_error: str | None = None) -> dict[str, Any]:
    """Every budget, rule and channel of a config (secrets left out)."""
    return {
        "source": config.source,
        "config_error": config_error,
        "budgets": [budget_document(b) for b in config.budgets],
        "rules": [
            {
                "name": rule.name,
                "kind": rule.kind,
                "by": rule.by,
                "window_s": rule.window_ns // NS_PER_SECOND,
                "baseline_s": rule.baseline_ns // NS_PER_SECOND,
                "threshold": str(rule.threshold),
                "min_requests": rule.min_requests,
                "severity": rule.severity,
            }
            for rule in config.rules
        ],
        "channels": [{"name": c.name, "type": c.type, "kinds": list(c.kinds)} for c in config.channels],
        "evaluate_every_s": config.evaluate_every_s,
    }
