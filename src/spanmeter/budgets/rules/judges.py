"""The judgement of each alert rule kind: measures of two windows in, one verdict per subject out.

Pure functions over :class:`~spanmeter.store.MeasureGroup` lists (no store, no clock), so
each kind is tested with plain numbers; :mod:`spanmeter.budgets.rules.evaluator` feeds them and turns
firing verdicts into alerts. What each kind means is described there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from ...money import dollars, usd
from ...store import MeasureGroup
from ...timeunits import NS_PER_MINUTE
from ..definitions.matcher import encode_scope_key
from ..definitions.model import AlertRule, percent

__all__ = [
    "Judge",
    "Verdict",
    "Windows",
    "judge_burst",
    "judge_drift",
    "judge_regression",
    "judge_retries",
    "judge_share",
    "judge_unknown",
]


Windows = tuple[int, int, int, int]
"""(window start, window end, baseline start, baseline end), Unix ns."""


def _cpr(group: MeasureGroup | None) -> Decimal | None:
    if group is None or not group.logical_requests:
        return None
    return Decimal(group.cost_nano_usd) / group.logical_requests


def _label(value: str | None) -> str:
    return "(none)" if value is None else value


def _subject(dims: Sequence[str], key: Sequence[str | None]) -> str:
    return encode_scope_key(dims, [value or "" for value in key]) if dims else "all"


Verdict = tuple[str, bool | None, dict[str, str | None], dict[str, Any]]
"""(subject, firing, subject dimensions, facts for the alert)."""


def _of(by: tuple[str, ...], group: MeasureGroup) -> tuple[str, dict[str, str | None]]:
    """The subject of ``group``'s verdict, and the dimensions naming it."""
    return _subject(by, group.key), dict(zip(by, group.key, strict=True))


def _unjudged(subject: str, dims: dict[str, str | None]) -> Verdict:
    """Too little traffic to judge: no firing and no clearing either."""
    return (subject, None, dims, {})


def _name(key: Sequence[str | None]) -> str:
    """A subject as a title names it: its values, or all traffic."""
    return " ".join(_label(v) for v in key) or "all traffic"


def _pct(ratio: Decimal) -> str:
    """A ratio as a title writes it: a percentage, to a tenth of a point."""
    return percent(ratio.quantize(Decimal("0.001")))


Judge = Callable[[AlertRule, tuple[str, ...], list[MeasureGroup], list[MeasureGroup], Windows], list[Verdict]]


def judge_drift(
    rule: AlertRule, by: tuple[str, ...], cur: list[MeasureGroup], base: list[MeasureGroup], _: Windows
) -> list[Verdict]:
    baseline = {g.key: g for g in base}
    verdicts: list[Verdict] = []
    for group in cur:
        before = baseline.get(group.key)
        subject, dims = _of(by, group)
        if (
            group.logical_requests < rule.min_requests
            or before is None
            or before.logical_requests < rule.min_requests
        ):
            verdicts.append(_unjudged(subject, dims))
            continue
        now_cpr, base_cpr = _cpr(group), _cpr(before)
        assert now_cpr is not None and base_cpr is not None
        if not base_cpr:
            verdicts.append(_unjudged(subject, dims))
            continue
        rise = now_cpr / base_cpr - 1
        name = _name(group.key)
        verdicts.append(
            (
                subject,
                rise >= rule.threshold,
                dims,
                {
                    "title": f"Cost per request of {name} up {_pct(rise)}: "
                    f"{dollars(int(now_cpr))} vs {dollars(int(base_cpr))} in the baseline",
                    "cost_per_request_usd": usd(int(now_cpr)),
                    "baseline_cost_per_request_usd": usd(int(base_cpr)),
                    "rise": float(round(rise, 6)),
                    "logical_requests": group.logical_requests,
                    "baseline_logical_requests": before.logical_requests,
                    "cost_usd": usd(group.cost_nano_usd),
                },
            )
        )
    return verdicts


def judge_regression(
    rule: AlertRule, by: tuple[str, ...], cur: list[MeasureGroup], base: list[MeasureGroup], _: Windows
) -> list[Verdict]:
    before: dict[str | None, dict[str | None, MeasureGroup]] = {}
    for group in base:
        before.setdefault(group.key[0], {})[group.key[1]] = group
    now: dict[str | None, dict[str | None, MeasureGroup]] = {}
    for group in cur:
        now.setdefault(group.key[0], {})[group.key[1]] = group
    verdicts: list[Verdict] = []
    for endpoint, versions in now.items():
        old = before.get(endpoint, {})
        established = [
            g for g in old.values() if g.logical_requests >= rule.min_requests and g.key[1] is not None
        ]
        if not established:
            continue
        previous = max(established, key=lambda g: (g.logical_requests, g.key[1] or ""))
        reference = versions.get(previous.key[1])
        if reference is None or reference.logical_requests < rule.min_requests:
            reference = previous  # the previous version no longer serves: compare with its baseline
        for version, group in versions.items():
            if version is None or version in old:
                continue
            dims: dict[str, str | None] = {"endpoint_tag": endpoint, "prompt_version": version}
            subject = _subject(by, (endpoint, version))
            if group.logical_requests < rule.min_requests:
                verdicts.append(_unjudged(subject, dims))
                continue
            new_cpr, old_cpr = _cpr(group), _cpr(reference)
            assert new_cpr is not None and old_cpr is not None
            if not old_cpr:
                continue
            rise = new_cpr / old_cpr - 1
            verdicts.append(
                (
                    subject,
                    rise >= rule.threshold,
                    dims,
                    {
                        "title": f"Prompt version {version} of {_label(endpoint)} costs "
                        f"{_pct(rise)} more per request than {previous.key[1]}: "
                        f"{dollars(int(new_cpr))} vs {dollars(int(old_cpr))}",
                        "previous_version": previous.key[1],
                        "cost_per_request_usd": usd(int(new_cpr)),
                        "previous_cost_per_request_usd": usd(int(old_cpr)),
                        "rise": float(round(rise, 6)),
                        "logical_requests": group.logical_requests,
                        "previous_logical_requests": reference.logical_requests,
                        "input_tokens_per_request": group.input_tokens // max(group.logical_requests, 1),
                        "previous_input_tokens_per_request": reference.input_tokens
                        // max(reference.logical_requests, 1),
                    },
                )
            )
    return verdicts


def judge_share(
    rule: AlertRule, by: tuple[str, ...], cur: list[MeasureGroup], base: list[MeasureGroup], _: Windows
) -> list[Verdict]:
    total = sum(g.cost_nano_usd for g in cur)
    named = [g for g in cur if g.key[0] is not None]
    enough = total >= max(rule.min_cost_nano_usd, 1) and len(cur) >= 2
    verdicts: list[Verdict] = []
    for group in named:
        subject, dims = _of(by, group)
        if not enough:
            verdicts.append(_unjudged(subject, dims))
            continue
        share = Decimal(group.cost_nano_usd) / total
        verdicts.append(
            (
                subject,
                share >= rule.threshold,
                dims,
                {
                    "title": f"{by[0]} {group.key[0]} took {_pct(share)} of spend: "
                    f"{dollars(group.cost_nano_usd)} of {dollars(total)}",
                    "share": float(round(share, 6)),
                    "cost_usd": usd(group.cost_nano_usd),
                    "total_cost_usd": usd(total),
                    "logical_requests": group.logical_requests,
                    "values_in_window": len(cur),
                },
            )
        )
    return verdicts


def _minutes(start: int, end: int) -> Decimal:
    return Decimal(max(end - start, NS_PER_MINUTE)) / NS_PER_MINUTE


def _totals(groups: list[MeasureGroup], by: tuple[str, ...]) -> list[MeasureGroup]:
    """Groups with traffic (``by`` is kept for a uniform call shape)."""
    return [g for g in groups if g.attempts]


def judge_burst(
    rule: AlertRule, by: tuple[str, ...], cur: list[MeasureGroup], base: list[MeasureGroup], w: Windows
) -> list[Verdict]:
    start, end, base_start, base_end = w
    baseline = {g.key: g for g in _totals(base, by)}
    verdicts: list[Verdict] = []
    for group in _totals(cur, by):
        subject, dims = _of(by, group)
        before = baseline.get(group.key)
        if group.attempts < rule.min_requests or before is None:
            verdicts.append(_unjudged(subject, dims))
            continue
        rate, base_rate = (
            group.attempts / _minutes(start, end),
            before.attempts / _minutes(base_start, base_end),
        )
        success = 1 - Decimal(group.errors) / group.attempts
        base_success = 1 - Decimal(before.errors) / before.attempts
        drop = base_success - success
        firing = rate >= base_rate * rule.rate_multiplier and drop >= rule.threshold
        name = _name(group.key)
        verdicts.append(
            (
                subject,
                firing,
                dims,
                {
                    "title": f"Request burst on {name}: {rate:.1f}/min vs {base_rate:.1f}/min, success "
                    f"{_pct(success)} (was {_pct(base_success)})",
                    "attempts_per_minute": float(round(rate, 3)),
                    "baseline_attempts_per_minute": float(round(base_rate, 3)),
                    "success_ratio": float(round(success, 6)),
                    "baseline_success_ratio": float(round(base_success, 6)),
                    "attempts": group.attempts,
                    "errors": group.errors,
                },
            )
        )
    return verdicts


def judge_retries(
    rule: AlertRule, by: tuple[str, ...], cur: list[MeasureGroup], base: list[MeasureGroup], _: Windows
) -> list[Verdict]:
    baseline = {g.key: g for g in _totals(base, by)}
    verdicts: list[Verdict] = []
    for group in _totals(cur, by):
        subject, dims = _of(by, group)
        if group.logical_requests < rule.min_requests:
            verdicts.append(_unjudged(subject, dims))
            continue
        multiplier = Decimal(group.attempts) / group.logical_requests
        before = baseline.get(group.key)
        base_multiplier = (
            Decimal(before.attempts) / before.logical_requests if before and before.logical_requests else None
        )
        firing = multiplier >= rule.threshold and (
            base_multiplier is None or multiplier >= base_multiplier * (1 + rule.rise)
        )
        name = _name(group.key)
        verdicts.append(
            (
                subject,
                firing,
                dims,
                {
                    "title": f"Retry multiplier of {name} at {multiplier:.2f} attempts per request"
                    + (f" (baseline {base_multiplier:.2f})" if base_multiplier is not None else ""),
                    "multiplier": float(round(multiplier, 4)),
                    "baseline_multiplier": None
                    if base_multiplier is None
                    else float(round(base_multiplier, 4)),
                    "attempts": group.attempts,
                    "logical_requests": group.logical_requests,
                    "cost_usd": usd(group.cost_nano_usd),
                },
            )
        )
    return verdicts


def judge_unknown(
    rule: AlertRule, by: tuple[str, ...], cur: list[MeasureGroup], base: list[MeasureGroup], _: Windows
) -> list[Verdict]:
    attempts = sum(g.attempts for g in cur)
    unpriced = sum(g.unpriced for g in cur)
    if attempts < rule.min_requests:
        return [("all", None, {}, {})]
    ratio = Decimal(unpriced) / attempts
    models = sorted((g for g in cur if g.unpriced), key=lambda g: (-g.unpriced, str(g.key)))
    listed = [{"provider": g.key[0], "model": g.key[1], "unpriced_attempts": g.unpriced} for g in models[:10]]
    names = ", ".join(f"{_label(g.key[1])} ({g.unpriced})" for g in models[:3])
    return [
        (
            "all",
            ratio >= rule.threshold,
            {},
            {
                "title": f"{_pct(ratio)} of attempts have no price "
                f"({unpriced} of {attempts}); add the models to the price override file: {names}",
                "ratio": float(round(ratio, 6)),
                "unpriced_attempts": unpriced,
                "attempts": attempts,
                "models": listed,
            },
        )
    ]
