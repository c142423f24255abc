"""Alert rule kinds, said once: for each kind, what it may judge by, its defaults, and the
function that judges it.

One registry instead of a table of defaults in the config parser and a table of judges
beside it: a kind cannot be accepted by the budgets file and then fail at evaluation time
for want of a judge. The budgets file's ``rules:`` section (:mod:`.config`) reads the
defaults; evaluation (:mod:`.evaluator`) calls :attr:`RuleKind.judge`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ...timeunits import NS_PER_HOUR, NS_PER_MINUTE
from .judges import (
    Judge,
    judge_burst,
    judge_drift,
    judge_regression,
    judge_retries,
    judge_share,
    judge_unknown,
)

__all__ = ["RULE_KINDS", "RuleKind"]


@dataclass(frozen=True)
class RuleKind:
    """One kind of alert rule."""

    by: tuple[str | None, ...]
    """Dimensions it may judge by (None: all traffic as one); the first is the default."""
    window_ns: int
    baseline_ns: int
    """0: the kind has no baseline window."""
    threshold: str
    judge: Judge
    threshold_above_one: bool = False


RULE_KINDS: Final[Mapping[str, RuleKind]] = {
    "cost_per_request_drift": RuleKind(
        ("endpoint_tag", "prompt_version"), NS_PER_HOUR, 24 * NS_PER_HOUR, "30%", judge_drift
    ),
    "prompt_version_regression": RuleKind(
        ("endpoint_tag",), 6 * NS_PER_HOUR, 7 * 24 * NS_PER_HOUR, "20%", judge_regression
    ),
    "spend_share": RuleKind(("tenant_id", "user_id"), NS_PER_HOUR, 0, "50%", judge_share),
    "request_burst": RuleKind(
        (None, "endpoint_tag", "tenant_id"), 10 * NS_PER_MINUTE, NS_PER_HOUR, "10%", judge_burst
    ),
    "retry_multiplier": RuleKind(
        ("endpoint_tag", None),
        15 * NS_PER_MINUTE,
        24 * NS_PER_HOUR,
        "1.5",
        judge_retries,
        threshold_above_one=True,
    ),
    "unknown_model_ratio": RuleKind((None,), NS_PER_HOUR, 0, "5%", judge_unknown),
}
"""Rule kinds by the name the budgets file gives them."""
