"""What to do with a cost that already arrived on the span.

Some spans carry a cost of their own: a provider may return one in its response
(OpenRouter's ``usage.cost``), or another tool in the app may have computed one (OpenLIT's
``gen_ai.usage.cost``, Logfire's ``operation.cost``). The normaliser records it on
:class:`~spanmeter.semantic_conventions.GenAIRecord` as ``reported_cost_usd`` with
``reported_cost_source`` ``provider`` or ``local``; the policy decides whether that number
or spanmeter's own price becomes the span's cost.
"""

from __future__ import annotations

import enum

__all__ = ["CostPolicy"]


class CostPolicy(str, enum.Enum):
    """Which cost wins when a span already carries one.

    In every policy a span with ``billable`` False gets no cost at all (its children carry
    it), and a reported cost that is negative or not a finite number is ignored.
    """

    PREFER_PROVIDER = "prefer_provider"
    """Default. A provider-reported cost is what was billed, so it is used as-is (status
    ``reported``). A locally computed cost is another tool's estimate from possibly stale
    prices, so spanmeter's own price wins; the local cost is used only when spanmeter cannot
    price the span (unknown model, no model, no or invalid usage), since a cost beats none."""

    ALWAYS_COMPUTE = "always_compute"
    """Ignore every reported cost: the cost is spanmeter's price or nothing. For audits that
    must not mix price sources."""

    TRUST_REPORTED = "trust_reported"
    """Any reported cost wins, provider or local; spanmeter prices only spans without one.
    For apps whose own cost tool is authoritative (negotiated prices it knows and we don't)."""
