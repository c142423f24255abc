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
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final, NamedTuple, TypedDict

from ..store import Measures, SpanStore
from ..store.rollups import MINUTE, aligned_window
from ..timeunits import NS_PER_SECOND
from .clock_skew import ClockJudge
from .common import nearest_rank, scope_text
from .documents import Span, dump, span
from .unknown_models import override_snippet
from .window import TimeWindow

__all__ = [
    "CHECKS",
    "Check",
    "CheckSpec",
    "Details",
    "QualityReport",
    "looks_like_pii",
    "quality_report",
    "render_quality",
]

Details = Mapping[str, object]
"""The evidence behind one check: each check has its own (unknown models and the override
snippet, PII examples, clock skews...), so it stays a free-form JSON object."""


class Check(TypedDict):
    """One check of the checklist."""

    name: str
    title: str
    weight: int
    passed: int
    applicable: int
    share: float
    status: str
    remedy: str | None
    details: Details


class QualityReport(TypedDict):
    """Every check and the tracking quality score."""

    window: Span
    environment: str | None
    data_mode: str | None
    attempts: int
    score: float
    checks: list[Check]


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


class _Row(NamedTuple):
    """One raw row as the checks read it (the field names are the columns scanned)."""

    endpoint_tag: str | None
    prompt_version: str | None
    provider: str | None
    model: str | None
    pricing_status: str | None
    input_tokens: int | None
    output_tokens: int | None
    outcome: str | None
    tenant_id: str | None
    user_id: str | None
    environment: str | None
    data_mode: str | None
    start_time_ns: int | None
    end_time_ns: int | None
    received_at_ns: int
    cost_nano_usd: int | None
    service_name: str | None
    scope_name: str | None
    scope_version: str | None


_COLUMNS: Final = _Row._fields


@dataclass(slots=True)
class _Scan:
    """What one pass over the raw rows found: passed/applicable per check, and the evidence
    the details show. Kept together so the scan is one pass and every check sees the same rows."""

    counts: dict[str, list[int]] = field(default_factory=lambda: {spec.name: [0, 0] for spec in CHECKS})
    """Check name -> [passed, applicable]."""
    unknown: Counter[tuple[str, str]] = field(default_factory=Counter[tuple[str, str]])
    """(provider, model) -> attempts priced ``unknown_model``."""
    suspicious: Counter[str] = field(default_factory=Counter[str])
    """Environment and tenant of ``real`` attempts that look like test traffic."""
    pii_examples: Counter[str] = field(default_factory=Counter[str])
    """Masked ids that look like an email or a phone number."""
    without_usage: Counter[str] = field(default_factory=Counter[str])
    """Instrumentation scopes of successful attempts without token usage."""
    skews: list[int] = field(default_factory=list[int])
    """Arrival minus end, ns, of every attempt with a start time."""
    clock: ClockJudge = field(default_factory=ClockJudge)
    raw_cost: int = 0
    raw_attempts: int = 0

    def tally(self, name: str, ok: bool) -> None:
        """One more applicable attempt for check ``name``, passed or not."""
        entry = self.counts[name]
        entry[0] += ok
        entry[1] += 1

    def add(self, row: _Row) -> None:
        """Judge one attempt on every per-attempt check."""
        self.raw_attempts += 1
        self.raw_cost += row.cost_nano_usd or 0
        self._add_tags_and_pricing(row)
        self._add_traffic(row)

    def _add_tags_and_pricing(self, row: _Row) -> None:
        """The checks that decide whether the attempt's cost can be attributed and trusted."""
        self.tally("endpoint_tag", row.endpoint_tag is not None)
        self.tally("prompt_version", row.prompt_version is not None)
        self.tally("priced_models", row.pricing_status != "unknown_model")
        if row.pricing_status == "unknown_model":
            self.unknown[(row.provider or "", row.model or "")] += 1
        if row.outcome == "success":
            has_usage = row.input_tokens is not None or row.output_tokens is not None
            self.tally("usage", has_usage)
            if not has_usage:
                scope_name, scope_version = row.scope_name, row.scope_version
                emitter = f"{scope_name} {scope_version}" if scope_version else scope_name
                self.without_usage[emitter or "(instrumentation scope not reported)"] += 1

    def _add_traffic(self, row: _Row) -> None:
        """The checks on who sent the attempt and when: test traffic, leaked ids, clocks."""
        tenant, user, env = row.tenant_id, row.user_id, row.environment
        if row.data_mode == "real":
            flagged = (env or "").lower() in _TEST_ENVIRONMENTS or any(
                _TEST_ID.search(value or "") for value in (tenant, user)
            )
            self.tally("data_mode", not flagged)
            if flagged:
                self.suspicious[f"environment={env} tenant={tenant}"] += 1
        leaked = [value for value in (user, tenant) if value is not None and looks_like_pii(value)]
        self.tally("pii", not leaked)
        for value in leaked:
            self.pii_examples[_mask(value)] += 1
        start, end, received = row.start_time_ns, row.end_time_ns, row.received_at_ns
        if start:
            self.skews.append(received - (end or start))
            self.clock.add(row.service_name or "(unknown service)", end or start, received)


def quality_report(
    store: SpanStore,
    window: TimeWindow,
    *,
    environment: str | None = None,
    data_mode: str | None = None,
) -> QualityReport:
    """Every check and the score, as a JSON-ready document."""
    lo, hi = aligned_window(window.start_ns, window.end_ns, MINUTE.bucket_seconds)
    start_ns, end_ns = (
        lo * NS_PER_SECOND,
        hi * NS_PER_SECOND,
    )  # whole minutes, so the reconciliation compares like with like
    scan = _Scan()
    for values in store.scan_requests(
        start_ns, end_ns, columns=_COLUMNS, environment=environment, data_mode=data_mode
    ):
        scan.add(_Row(*values))
    scan.clock.judge()
    scan.counts["clock"] = [scan.clock.passed, scan.clock.applicable]
    rolled = store.aggregate((), start_ns, end_ns, environment=environment, data_mode=data_mode).total
    reconciled = rolled.cost_nano_usd == scan.raw_cost and rolled.attempts == scan.raw_attempts
    scan.counts["reconciliation"] = [int(reconciled), 1]
    details = _details(scan, rolled)
    checks = [_check(spec, scan.counts[spec.name], details.get(spec.name, {})) for spec in CHECKS]
    weighted = sum((spec.weight * _share(scan.counts[spec.name]) for spec in CHECKS), Fraction(0))
    total_weight = sum(spec.weight for spec in CHECKS)
    return {
        "window": span(*TimeWindow(start_ns, end_ns).iso()),
        "environment": environment,
        "data_mode": data_mode,
        "attempts": scan.raw_attempts,
        "score": round(float(100 * weighted / total_weight), 1),
        "checks": checks,
    }


def _details(scan: _Scan, rolled: Measures) -> dict[str, Details]:
    """The evidence behind each check that has some, so a failing check says what to fix."""
    return {
        "priced_models": {
            "unknown_models": [
                {"provider": p, "model": m, "attempts": n} for (p, m), n in scan.unknown.most_common(50)
            ],
            "override_snippet": override_snippet(scan.unknown),
        },
        "usage": {
            "instrumentations": [
                {"instrumentation": k, "attempts": n} for k, n in scan.without_usage.most_common(5)
            ]
        },
        "data_mode": {"examples": [{"what": k, "attempts": n} for k, n in scan.suspicious.most_common(5)]},
        "pii": {"examples": [{"value": k, "attempts": n} for k, n in scan.pii_examples.most_common(5)]},
        "clock": {
            "median_skew_s": _seconds(nearest_rank(sorted(scan.skews), 50)),
            "p99_skew_s": _seconds(nearest_rank(sorted(scan.skews), 99)),
            "backfilled_attempts": scan.clock.backfilled,
            "services": [{"service": k, "attempts": n} for k, n in scan.clock.skewed_services.most_common(5)],
        },
        "reconciliation": {
            "rollup_cost_nano_usd": rolled.cost_nano_usd,
            "raw_cost_nano_usd": scan.raw_cost,
            "rollup_attempts": rolled.attempts,
            "raw_attempts": scan.raw_attempts,
        },
    }


def _share(counts: list[int]) -> Fraction:
    """Passed / applicable, exact; 1 when nothing applies (nothing to get wrong)."""
    passed, applicable = counts
    return Fraction(passed, applicable) if applicable else Fraction(1)


def _check(spec: CheckSpec, counts: list[int], details: Details) -> Check:
    """One check's entry in the document: its share, status, and the remedy unless it is ok."""
    passed, applicable = counts
    share = _share(counts)
    status = "ok" if share >= spec.ok_at else "warn" if share >= spec.warn_at else "fail"
    return {
        "name": spec.name,
        "title": spec.title,
        "weight": spec.weight,
        "passed": passed,
        "applicable": applicable,
        "share": round(float(share), 6),
        "status": status,
        "remedy": None if status == "ok" else spec.remedy,
        "details": details,
    }


def _seconds(ns: int | None) -> float | None:
    return None if ns is None else round(ns / NS_PER_SECOND, 3)


def _mask(value: str) -> str:
    """Enough of a leaked id to find it, not enough to repeat the leak in a report."""
    return value[:2] + "***" + value[-2:] if len(value) > 6 else "***"


_MARKS: Final = {"ok": "[ok]  ", "warn": "[warn]", "fail": "[FAIL]"}


def render_quality(report: QualityReport, fmt: str, *, preamble: list[str] | None = None) -> str:
    """The checklist as ``table`` (with remedies and details) or ``json``."""
    if fmt == "json":
        return dump(report, indent=2) + "\n"
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
        details: Mapping[str, Any] = check["details"]
        shown = check["status"] != "ok"
        if details.get("backfilled_attempts"):
            lines.append(
                f"         {details['backfilled_attempts']} attempts arrived in back-filled batches"
                " (spans ending hours apart sent together): judged only for a clock running ahead"
            )
        models: list[Mapping[str, Any]] = details.get("unknown_models", [])[:10] if shown else []
        for model in models:
            lines.append(f"            {model['provider']}/{model['model']}: {model['attempts']} attempts")
        for key in ("examples", "services", "instrumentations"):
            items: list[Mapping[str, Any]] = details.get(key, [])[:3] if shown else []
            for item in items:
                lines.append(f"            {next(iter(item.values()))}: {item['attempts']} attempts")
    snippet = next(
        (c["details"].get("override_snippet") for c in report["checks"] if c["name"] == "priced_models"), ""
    )
    if isinstance(snippet, str) and snippet:
        lines += ["", "override file entries to fill in:", *("  " + line for line in snippet.splitlines())]
    return "\n".join(lines) + "\n"
