"""A cost that already arrived on the span: how much, who computed it, which key.

Several tools put a cost on GenAI spans before spanmeter sees them: the proposed OTel
``gen_ai.usage.cost.amount`` (with ``.currency`` and ``.source``: ``provider`` when it came
in the provider's response, ``local`` when computed in the app), OpenLIT's
``gen_ai.usage.cost``, Pydantic AI / Logfire's ``operation.cost``, OpenInference's
``llm.cost.total`` and Langfuse's ``cost_details`` JSON. The pricing policy decides what to
do with it; this module only reads it exactly (``Decimal``) and says where it came from.

One exception: a span that carries ``spanmeter.pricing.status`` was priced by spanmeter
itself (in the app's processor). Its ``gen_ai.usage.cost`` is spanmeter's own float copy,
so the exact integer ``spanmeter.cost.nano_usd`` is read instead, and nothing else.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from ..money import NANO_PER_USD
from ..semantic_conventions.alias_table import Key
from ._langfuse import parse_cost_total
from ._values import MAX_COST_USD, to_cost, to_count
from .record import CostSource

__all__ = ["reported_cost"]

_NANO_EXPONENT: Final = -9
_MAX_NANO_USD: Final = int(MAX_COST_USD) * NANO_PER_USD
_LOCAL_COST_KEYS: Final = (Key.COST, Key.OPERATION_COST, Key.LLM_COST_TOTAL)
"""Costs computed in the app by OpenLIT, Pydantic AI/Logfire and OpenInference, in order."""


def reported_cost(
    found: dict[str, object], issues: list[str]
) -> tuple[Decimal | None, CostSource | None, str | None]:
    """Read the span's own cost, if any.

    Args:
        found: The span's known attributes (see the normaliser's scan).
        issues: Notes about unusable values are appended here.

    Returns:
        ``(amount in USD, source, key)``, or three Nones when the span carries no usable
        cost. An unusable value falls through to the next key, with a note.
    """
    get = found.get
    if Key.PRICING_STATUS in found:
        nano = to_count(Key.COST_NANO_USD, get(Key.COST_NANO_USD), issues, limit=_MAX_NANO_USD)
        if nano is None:
            return None, None, None
        return Decimal(nano).scaleb(_NANO_EXPONENT), "local", Key.COST_NANO_USD
    amount = get(Key.COST_AMOUNT)
    if amount is not None:
        currency = get(Key.COST_CURRENCY)
        if currency is not None and not (isinstance(currency, str) and currency.strip().upper() == "USD"):
            # Converting currencies would need a rate and a date: not ours to guess.
            shown = currency[:16] if isinstance(currency, str) else type(currency).__name__
            issues.append(f"{Key.COST_CURRENCY}: {shown!r} is not USD, cost ignored")
        else:
            cost = to_cost(Key.COST_AMOUNT, amount, issues)
            if cost is not None:
                return cost, _cost_source(get(Key.COST_SOURCE), issues), Key.COST_AMOUNT
    for key in _LOCAL_COST_KEYS:
        value = get(key)
        if value is not None:
            cost = to_cost(key, value, issues)
            if cost is not None:
                return cost, "local", key
    raw = get(Key.LANGFUSE_COST_DETAILS)
    if raw is not None:
        cost = parse_cost_total(Key.LANGFUSE_COST_DETAILS, raw, issues)
        if cost is not None:
            return cost, "local", Key.LANGFUSE_COST_DETAILS
    return None, None, None


def _cost_source(value: object, issues: list[str]) -> CostSource | None:
    """``gen_ai.usage.cost.source``; absent means unknown (None), which the policy decides."""
    if value is None:
        return None
    source = value.strip().lower() if isinstance(value, str) else None
    if source == "provider":
        return "provider"
    if source == "local":
        return "local"
    issues.append(f"{Key.COST_SOURCE}: not provider or local")
    return None
