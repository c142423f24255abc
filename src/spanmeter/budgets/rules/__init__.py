"""Alert rules over the rollups: the kinds (:mod:`.kinds`) and how each is judged
(:mod:`.judges`), the ``rules:`` section of the budgets file (:mod:`.config`), the scheduled
evaluator that turns firing verdicts into alerts (:mod:`.evaluator`), and what an alert is
about: its spend window (:mod:`.alert_window`) and its drivers and focused view
(:mod:`.context`).
"""

from __future__ import annotations

from .alert_window import alert_spend_window
from .config import parse_rules
from .context import alert_context
from .evaluator import RuleEvaluator
from .kinds import RULE_KINDS, RuleKind

__all__ = ["RULE_KINDS", "RuleEvaluator", "RuleKind", "alert_context", "alert_spend_window", "parse_rules"]
