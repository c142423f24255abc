"""Editing the budgets file in place (``spanmeter budgets add`` / ``remove``): YAML round
trips that keep comments and layout, and write only a file that validates (:mod:`.edit`)."""

from __future__ import annotations

from .edit import add_budget, remove_budget

__all__ = ["add_budget", "remove_budget"]
