"""The ``rules:`` section of the budgets file: alert rule kinds, their keys and defaults.

Each entry names a ``kind`` and overrides any default below; ``name`` defaults to the
kind (plus ``:by`` when given), and must be unique because rule episodes are stored by name.

=========================  =============================  ======  ========  =========  ==========
kind                       by (default first)             window  baseline  threshold  min_requests
=========================  =============================  ======  ========  =========  ==========
cost_per_request_drift     endpoint_tag, prompt_version   1h      24h       30% rise   20
prompt_version_regression  endpoint_tag                   6h      7d        20% rise   20
spend_share                tenant_id, user_id             1h      --        50% share  (min_cost_usd 1)
request_burst              all, endpoint_tag, tenant_id   10m     1h        10% drop   20
retry_multiplier           endpoint_tag, all              15m     24h       1.5x       20
unknown_model_ratio        all                            1h      --        5% ratio   20
=========================  =============================  ======  ========  =========  ==========

``request_burst`` also takes ``rate_multiplier`` (default 3: requests per minute at least 3x
the baseline's) and its threshold is the fall of the success ratio, in points;
``retry_multiplier`` takes ``rise`` (default 25%: the multiplier must also be that much
above the baseline's).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, cast

from ...money import usd_to_nano
from ...timeunits import NS_PER_SECOND
from ..definitions.model import AlertRule
from ..definitions.values import ConfigErrors, duration_ns, fraction, usd
from .kinds import RULE_KINDS, RuleKind

__all__ = ["parse_rules"]


_KEYS: Final = frozenset(
    {
        "kind",
        "name",
        "by",
        "window",
        "baseline",
        "threshold",
        "min_requests",
        "min_cost_usd",
        "environment",
        "data_mode",
        "severity",
        "rate_multiplier",
        "rise",
        "channels",
    }
)


def _rule(errors: ConfigErrors, index: int, value: object) -> AlertRule | None:
    found = errors.entry(f"rules[{index}]", value, "kind")
    if found is None:
        return None
    entry, where = found
    kind_name = entry.get("kind")
    kind = RULE_KINDS.get(str(kind_name))
    if kind is None:
        errors.add(where, f"kind: use one of {', '.join(RULE_KINDS)} (got {kind_name!r})")
        return None
    before = len(errors.errors)
    errors.unknown_keys(where, entry, _KEYS)
    by = _by(errors, where, entry, kind)
    window, baseline, threshold = _judging(errors, where, entry, kind)
    min_requests, min_cost = _floors(errors, where, entry)
    severity = str(entry.get("severity", "warning"))
    if severity not in ("info", "warning", "critical"):
        errors.add(f"{where}: severity", f"use info, warning or critical (got {severity!r})")
    multiplier = errors.guard(
        f"{where}: rate_multiplier", lambda: fraction(entry.get("rate_multiplier", 3), allow_above_one=True)
    )
    rise = errors.guard(f"{where}: rise", lambda: fraction(entry.get("rise", "25%"), allow_above_one=True))
    channels = entry.get("channels")
    if channels is not None and not isinstance(channels, list):
        errors.add(f"{where}: channels", f"expected a list of channel names, got {channels!r}")
    name = str(entry.get("name") or (f"{kind_name}:{by}" if "by" in entry and by else kind_name))
    if len(errors.errors) > before or window is None or threshold is None:
        return None
    data_mode = entry.get("data_mode", "real")
    return AlertRule(
        kind=str(kind_name),
        name=name,
        by=by,
        window_ns=window,
        baseline_ns=baseline,
        threshold=threshold,
        min_requests=int(min_requests),
        min_cost_nano_usd=usd_to_nano(min_cost),
        environment=None if entry.get("environment") is None else str(entry["environment"]),
        data_mode=None if data_mode in ("all", None) else str(data_mode),
        severity=severity,
        rate_multiplier=multiplier or Decimal(3),
        rise=rise or Decimal("0.25"),
        channels=None if channels is None else tuple(str(c) for c in cast(list[Any], channels)),
    )


def _by(errors: ConfigErrors, where: str, entry: Mapping[str, Any], kind: RuleKind) -> str | None:
    """The dimension the rule judges by (None: ``all``, the traffic as a whole); each kind
    judges by its own dimensions only."""
    by_raw = entry.get("by", kind.by[0] or "all")
    by = None if by_raw in ("all", None) else str(by_raw)
    if by not in kind.by:
        allowed = ", ".join(value or "all" for value in kind.by)
        errors.add(f"{where}: by", f"{entry.get('kind')} judges by {allowed} (got {by_raw!r})")
    return by


def _judging(
    errors: ConfigErrors, where: str, entry: Mapping[str, Any], kind: RuleKind
) -> tuple[int | None, int, Decimal | None]:
    """The window judged, the baseline it is compared with (only kinds that have one) and
    the threshold, each defaulting to the kind's."""
    window = errors.guard(
        f"{where}: window", lambda: duration_ns(entry.get("window", kind.window_ns / NS_PER_SECOND))
    )
    baseline = kind.baseline_ns
    if "baseline" in entry:
        if not kind.baseline_ns:
            errors.add(f"{where}: baseline", f"{entry.get('kind')} has no baseline")
        else:
            baseline = errors.guard(f"{where}: baseline", lambda: duration_ns(entry["baseline"])) or baseline
    threshold = errors.guard(
        f"{where}: threshold",
        lambda: fraction(entry.get("threshold", kind.threshold), allow_above_one=kind.threshold_above_one),
    )
    return window, baseline, threshold


def _floors(errors: ConfigErrors, where: str, entry: Mapping[str, Any]) -> tuple[Any, Decimal]:
    """The requests and the cost a window needs before the rule judges it (too little
    traffic changes nothing); spend_share's cost floor defaults to 1 USD."""
    min_requests = entry.get("min_requests", 20)
    if isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 1:
        errors.add(f"{where}: min_requests", f"expected a whole number >= 1, got {min_requests!r}")
    min_cost = Decimal(1) if entry.get("kind") == "spend_share" else Decimal(0)
    if "min_cost_usd" in entry:
        min_cost = errors.guard(f"{where}: min_cost_usd", lambda: usd(entry["min_cost_usd"])) or min_cost
    return min_requests, min_cost


def parse_rules(errors: ConfigErrors, raw: object) -> list[AlertRule]:
    """Validate the ``rules`` list, recording problems in ``errors``."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.add("rules", f"expected a list, got {raw!r}")
        return []
    rules = [
        rule for index, entry in enumerate(cast(list[Any], raw)) if (rule := _rule(errors, index, entry))
    ]
    names = [rule.name for rule in rules]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.add("rules", f"name {name!r} is used more than once (give each rule its own name)")
    return rules
