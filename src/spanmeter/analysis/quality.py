"""Tracking quality: the checks to pass before trusting cost numbers, and one score.

Each check counts the attempts (billable raw rows in the window, all data modes unless
one is given) that pass it; its share is passed / applicable (1 when nothing applies).
The score is the weighted mean of the shares, times 100, so it can be recomputed from the
raw rows by hand. Status per check: ``ok`` at or above ``ok_at``, ``warn`` at or above
``warn_at``, ``fail`` below.

Checks (weights add up to 100):

====================  ======  ==================================================================
check                 weight  an attempt passes when
====================  ======  ==================================================================
endpoint_tag          20      it carries an endpoint tag
prompt_version        15      it carries a prompt version
priced_models         20      its model is known to the price list (the share shown is the
                              priced share: 100% means no unknown model)
usage                 15      a successful attempt reports token usage (failed ones may not)
data_mode             10      a ``real`` attempt does not look like test/demo traffic
                              (staging-like environment, or a test/demo tenant or user id)
pii                   10      its user and tenant ids look neither like an email nor a phone
clock                 5       arrival minus end lies within [-60 s, +15 min] (host clock sane);
                              back-filled spans on the -60 s bound only (:mod:`.clock_skew`)
reconciliation        5       window totals from the rollups equal the raw rows (all or nothing)
====================  ======  ==================================================================
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

from ..store import SpanStore
from ..store.rollups import MINUTE, aligned_window
from ..timeunits import NS_PER_SECOND
from .clock_skew import ClockJudge
from .common import nearest_rank, scope_text
from .unknown_models import override_snippet
from .window import TimeWindow

__all__ = ["CHECKS", "CheckSpec", "looks_like_pii", "quality_report", "render_quality"]

_NS: Final = NS_PER_SECOND
_TEST_ENVIRONMENTS: Final = frozenset(
    {"test", "testing", "staging", "stage", "dev", "development", "qa", "ci", "local", "demo", "sandbox"}
)
_TEST_ID = re.compile(r"(^|[_\-.:])(test|demo|qa|sandbox)([_\-.:0-9]|$)", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?[\d(][\d\s().-]{6,}\d")


def looks_like_pii(value: str | None) -> bool:
    """An email address or a phone number (a raw identifier where a hash belongs)."""
    if not value:
        return False
    if _EMAIL.fullmatch(value):
        return True
    # a phone number has a + or separators: a bare number is an internal id, which is fine
    formatted = value.startswith("+") or any(c in " ().-" for c in value)
    return bool(_PHONE.fullmatch(value)) and formatted and sum(c.isdigit() for c in value) >= 7


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One quality check: its weight, thresholds and what to do when it fails."""

    name: str
    title: str
    weight: int
    ok_at: Fraction
    warn_at: Fraction
    remedy: str


CHECKS: Final = (
    CheckSpec(
        "endpoint_tag",
        "endpoint tag coverage",
        20,
        Fraction(95, 100),
        Fraction(80, 100),
        "Set spanmeter.endpoint_tag on every GenAI call (spanmeter.attribution(endpoint_tag=...)).",
    ),
    CheckSpec(
        "prompt_version",
        "prompt version coverage",
        15,
        Fraction(90, 100),
        Fraction(60, 100),
        "Set gen_ai.prompt.version on deploy-controlled endpoints so deploys can be tied to spend.",
    ),
    CheckSpec(
        "priced_models",
        "priced models (known to the price list)",
        20,
        Fraction(99, 100),
        Fraction(95, 100),
        "Add the models below to the override file (SPANMETER_PRICING_FILE), then run spanmeter reprice.",
    ),
    CheckSpec(
        "usage",
        "usage fields present",
        15,
        Fraction(99, 100),
        Fraction(90, 100),
        "Record gen_ai.usage.input_tokens/output_tokens (streaming calls: enable usage in the final chunk);"
        " the instrumentations below sent spans without it (docs/instrumentations.md: known gaps).",
    ),
    CheckSpec(
        "data_mode",
        "test/demo traffic kept out of real",
        10,
        Fraction(999, 1000),
        Fraction(99, 100),
        "Mark test and demo traffic with spanmeter.data_mode=test|demo (or SPANMETER_DATA_MODE).",
    ),
    CheckSpec(
        "pii",
        "user and tenant ids without PII",
        10,
        Fraction(1),
        Fraction(999, 1000),
        "Send hashed ids: set SPANMETER_USER_ID_HASH_KEY and map tenants to internal ids.",
    ),
    CheckSpec(
        "clock",
        "clock skew between span times and arrival",
        5,
        Fraction(99, 100),
        Fraction(95, 100),
        "Sync the clocks of the hosts below (NTP); check Collector queues for long delays.",
    ),
    CheckSpec(
        "reconciliation",
        "rollups reconcile with raw rows",
        5,
        Fraction(1),
        Fraction(1),
        "Run spanmeter doctor again after ingest settles; if it persists, report a bug.",
    ),
)
"""Every check, in checklist order."""

_COLUMNS: Final = (
    "endpoint_tag",
    "prompt_version",
    "provider",
    "model",
    "pricing_status",
    "input_tokens",
    "output_tokens",
    "outcome",
    "tenant_id",
    "user_id",
    "environment",
    "data_mode",
    "start_time_ns",
    "end_time_ns",
    "received_at_ns",
    "cost_nano_usd",
    "service_name",
    "scope_name",
    "scope_version",
)


def quality_report(
    store: SpanStore,
    window: TimeWindow,
    *,
    environment: str | None = None,
    data_mode: str | None = None,
) -> dict[str, Any]:
    """Every check and the score, as a JSON-ready document."""
    lo, hi = aligned_window(window.start_ns, window.end_ns, MINUTE.bucket_seconds)
    start_ns, end_ns = lo * _NS, hi * _NS  # whole minutes, so the reconciliation compares like with like
    counts: dict[str, list[int]] = {spec.name: [0, 0] for spec in CHECKS}
    unknown: Counter[tuple[str, str]] = Counter()
    suspicious: Counter[str] = Counter()
    pii_examples: Counter[str] = Counter()
    without_usage: Counter[str] = Counter()
    skews: list[int] = []
    clock = ClockJudge()
    raw_cost = raw_attempts = 0

    def tally(name: str, ok: bool) -> None:
        entry = counts[name]
        entry[0] += ok
        entry[1] += 1

    for (
        tag,
        version,
        provider,
        model,
        status,
        tokens_in,
        tokens_out,
        outcome,
        tenant,
        user,
        env,
        mode,
        start,
        end,
        received,
        cost,
        service,
        scope_name,
        scope_version,
    ) in store.scan_requests(
        start_ns, end_ns, columns=_COLUMNS, environment=environment, data_mode=data_mode
    ):
        raw_attempts += 1
        raw_cost += cost or 0
        tally("endpoint_tag", tag is not None)
        tally("prompt_version", version is not None)
        tally("priced_models", status != "unknown_model")
        if status == "unknown_model":
            unknown[(provider or "", model or "")] += 1
        if outcome == "success":
            has_usage = tokens_in is not None or tokens_out is not None
            tally("usage", has_usage)
            if not has_usage:
                emitter = f"{scope_name} {scope_version}" if scope_version else scope_name
                without_usage[emitter or "(instrumentation scope not reported)"] += 1
        if mode == "real":
            flagged = (env or "").lower() in _TEST_ENVIRONMENTS or any(
                _TEST_ID.search(value or "") for value in (tenant, user)
            )
            tally("data_mode", not flagged)
            if flagged:
                suspicious[f"environment={env} tenant={tenant}"] += 1
        leaked = [value for value in (user, tenant) if looks_like_pii(value)]
        tally("pii", not leaked)
        for value in leaked:
            pii_examples[_mask(value)] += 1
        if start:
            skews.append(received - (end or start))
            clock.add(service or "(unknown service)", end or start, received)
    clock.judge()
    counts["clock"] = [clock.passed, clock.applicable]
    rolled = store.aggregate((), start_ns, end_ns, environment=environment, data_mode=data_mode).total
    reconciled = rolled.cost_nano_usd == raw_cost and rolled.attempts == raw_attempts
    counts["reconciliation"] = [int(reconciled), 1]
    details: dict[str, Callable[[], Any]] = {
        "priced_models": lambda: {
            "unknown_models": [
                {"provider": p, "model": m, "attempts": n} for (p, m), n in unknown.most_common(50)
            ],
            "override_snippet": override_snippet(unknown),
        },
        "usage": lambda: {
            "instrumentations": [
                {"instrumentation": k, "attempts": n} for k, n in without_usage.most_common(5)
            ]
        },
        "data_mode": lambda: {"examples": [{"what": k, "attempts": n} for k, n in suspicious.most_common(5)]},
        "pii": lambda: {"examples": [{"value": k, "attempts": n} for k, n in pii_examples.most_common(5)]},
        "clock": lambda: {
            "median_skew_s": _seconds(nearest_rank(sorted(skews), 50)),
            "p99_skew_s": _seconds(nearest_rank(sorted(skews), 99)),
            "backfilled_attempts": clock.backfilled,
            "services": [{"service": k, "attempts": n} for k, n in clock.skewed_services.most_common(5)],
        },
        "reconciliation": lambda: {
            "rollup_cost_nano_usd": rolled.cost_nano_usd,
            "raw_cost_nano_usd": raw_cost,
            "rollup_attempts": rolled.attempts,
            "raw_attempts": raw_attempts,
        },
    }
    checks = []
    weighted = Fraction(0)
    for spec in CHECKS:
        passed, applicable = counts[spec.name]
        share = Fraction(passed, applicable) if applicable else Fraction(1)
        weighted += spec.weight * share
        status = "ok" if share >= spec.ok_at else "warn" if share >= spec.warn_at else "fail"
        checks.append(
            {
                "name": spec.name,
                "title": spec.title,
                "weight": spec.weight,
                "passed": passed,
                "applicable": applicable,
                "share": round(float(share), 6),
                "status": status,
                "remedy": None if status == "ok" else spec.remedy,
                "details": details[spec.name]() if spec.name in details else {},
            }
        )
    total_weight = sum(spec.weight for spec in CHECKS)
    begin, finish = TimeWindow(start_ns, end_ns).iso()
    return {
        "window": {"from": begin, "to": finish},
        "environment": environment,
        "data_mode": data_mode,
        "attempts": raw_attempts,
        "score": round(float(100 * weighted / total_weight), 1),
        "checks": checks,
    }


def _seconds(ns: int | None) -> float | None:
    return None if ns is None else round(ns / _NS, 3)


def _mask(value: str) -> str:
    """Enough of a leaked id to find it, not enough to repeat the leak in a report."""
    return value[:2] + "***" + value[-2:] if len(value) > 6 else "***"


_MARKS: Final = {"ok": "[ok]  ", "warn": "[warn]", "fail": "[FAIL]"}


def render_quality(report: dict[str, Any], fmt: str, *, preamble: list[str] | None = None) -> str:
    """The checklist as ``table`` (with remedies and details) or ``json``."""
    if fmt == "json":
        import json

        return json.dumps(report, indent=2) + "\n"
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}: use table or json")
    window = report["window"]
    lines = [*(preamble or [])]
    lines.append(
        f"tracking quality {window['from']} .. {window['to']}: score {report['score']}/100"
        f" over {report['attempts']} attempts ({scope_text(report)})"
    )
    for check in report["checks"]:
        lines.append(
            f"  {_MARKS[check['status']]} {check['title']:<44}{check['share']:>9.2%}"
            f"  ({check['passed']}/{check['applicable']}, weight {check['weight']})"
        )
        if check["remedy"]:
            lines.append(f"         -> {check['remedy']}")
        details = check["details"]
        if details.get("backfilled_attempts"):
            lines.append(
                f"         {details['backfilled_attempts']} attempts arrived in back-filled batches"
                " (spans ending hours apart sent together): judged only for a clock running ahead"
            )
        for model in details.get("unknown_models", [])[:10] if check["status"] != "ok" else []:
            lines.append(f"            {model['provider']}/{model['model']}: {model['attempts']} attempts")
        for key in ("examples", "services", "instrumentations"):
            for item in details.get(key, [])[:3] if check["status"] != "ok" else []:
                lines.append(f"            {next(iter(item.values()))}: {item['attempts']} attempts")
    snippet = next(
        (c["details"].get("override_snippet") for c in report["checks"] if c["name"] == "priced_models"), ""
    )
    if snippet:
        lines += ["", "override file entries to fill in:", *("  " + line for line in snippet.splitlines())]
    return "\n".join(lines) + "\n"
