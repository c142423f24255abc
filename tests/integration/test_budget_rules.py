"""Scheduled alert rules: for each kind, traffic that must fire it and traffic that must not,
through a real SQLite store and its rollups; episodes alert once and resolve when clear."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spanmeter.budgets import RuleEvaluator
from spanmeter.budgets.definitions.model import BudgetsConfig
from spanmeter.store import SpanRow
from support.budget_helpers import NS, Clock, at, config, row
from support.stores import BACKENDS, BudgetHost, opened_budget_store

NOW = "2026-03-10T12:00:30"
MINUTE = 60 * NS
_ids = itertools.count()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BudgetHost]:
    with opened_budget_store(str(request.param), tmp_path, request) as opened:
        yield opened


def traffic(
    store: BudgetHost, start: str, minutes: int, per_minute: int, cost_usd: float | None, **fields: Any
) -> None:
    """``per_minute`` attempts a minute for ``minutes`` minutes from ``start``."""
    attempts = fields.pop("attempts", 1)
    errors_every = fields.pop("errors_every", 0)
    rows: list[SpanRow] = []
    for minute in range(minutes):
        for i in range(per_minute):
            external = f"req-{next(_ids)}"
            for _ in range(attempts):
                error = bool(errors_every) and i % errors_every == 0
                rows.append(
                    row(
                        at(start) + minute * MINUTE + i * NS,
                        cost_usd,
                        external_request_id=external,
                        outcome="error" if error else "success",
                        **fields,
                    )
                )
    store.write_batch(rows)


def evaluate(store: BudgetHost, cfg: BudgetsConfig, now: str = NOW) -> list[tuple[str, bool | None]]:
    evaluator = RuleEvaluator(store.budget_store, Clock(now))
    return sorted((o.subject, o.firing) for o in evaluator.outcomes(cfg.rules[0], cfg, at(now)))


def fire(store: BudgetHost, cfg: BudgetsConfig, now: str = NOW) -> list[str]:
    """Evaluate and record; the titles of the alerts inserted."""
    evaluator = RuleEvaluator(store.budget_store, Clock(now))
    ids = evaluator.evaluate_all(cfg)
    return [store.budget_store.get_alert(i).title for i in ids]  # type: ignore[union-attr]


DRIFT = config("""
rules:
  - {kind: cost_per_request_drift, by: endpoint_tag, window: 1h, baseline: 24h, threshold: 30%, min_requests: 20}
""")


def test_cost_per_request_drift_fires_on_a_rise_and_resolves_when_it_falls_back(store: BudgetHost) -> None:
    traffic(store, "2026-03-09T20:00", 30, 1, 0.01, endpoint_tag="search")  # baseline
    traffic(store, "2026-03-09T20:00", 30, 1, 0.01, endpoint_tag="chat")
    traffic(store, "2026-03-10T11:10", 25, 1, 0.02, endpoint_tag="search")  # doubled
    traffic(store, "2026-03-10T11:10", 25, 1, 0.011, endpoint_tag="chat")  # +10%: not a drift
    traffic(store, "2026-03-10T11:10", 5, 1, 0.05, endpoint_tag="rare")  # too few requests
    assert evaluate(store, DRIFT) == [
        ("endpoint_tag=chat", False),
        ("endpoint_tag=rare", None),
        ("endpoint_tag=search", True),
    ]
    (title,) = fire(store, DRIFT)
    assert title.startswith("Cost per request of search up 100%")
    assert fire(store, DRIFT, "2026-03-10T12:01:30") == []  # the same episode: no new alert
    (alert,) = store.budget_store.list_alerts()
    assert alert.kind == "rule.cost_per_request_drift"
    assert alert.details["observed"]["cost_per_request_usd"] == "0.020000000"
    assert alert.details["filters"] == {"endpoint_tag": "search", "data_mode": "real"}
    # an hour later the expensive traffic has left the window and cheap traffic is back
    traffic(store, "2026-03-10T12:20", 25, 1, 0.01, endpoint_tag="search")
    assert fire(store, DRIFT, "2026-03-10T13:00:30") == []
    resolved = store.budget_store.get_alert(alert.id)
    assert resolved is not None and resolved.state == "resolved"


def test_cost_per_request_drift_by_prompt_version(store: BudgetHost) -> None:
    cfg = config("""
    rules:
      - {kind: cost_per_request_drift, by: prompt_version, threshold: 50%}
    """)
    traffic(store, "2026-03-09T20:00", 30, 1, 0.01, prompt_version="v1", endpoint_tag="a")
    traffic(store, "2026-03-09T20:00", 30, 1, 0.01, prompt_version="v1", endpoint_tag="b")
    traffic(store, "2026-03-10T11:10", 30, 1, 0.02, prompt_version="v1", endpoint_tag="a")
    traffic(store, "2026-03-10T11:10", 30, 1, 0.012, prompt_version="v1", endpoint_tag="b")
    assert evaluate(store, cfg) == [
        ("endpoint_tag=a&prompt_version=v1", True),
        ("endpoint_tag=b&prompt_version=v1", False),
    ]


REGRESSION = config("""
rules:
  - {kind: prompt_version_regression, window: 6h, baseline: 7d, threshold: 20%, min_requests: 20}
""")


def test_a_new_prompt_version_costlier_than_the_previous_one_fires_once(store: BudgetHost) -> None:
    traffic(store, "2026-03-08T10:00", 40, 1, 0.010, endpoint_tag="summary", prompt_version="v3")
    traffic(store, "2026-03-08T10:00", 40, 1, 0.010, endpoint_tag="reply", prompt_version="r1")
    traffic(store, "2026-03-10T08:00", 30, 1, 0.010, endpoint_tag="summary", prompt_version="v3")
    traffic(store, "2026-03-10T09:00", 30, 1, 0.016, endpoint_tag="summary", prompt_version="v4")  # +60%
    traffic(store, "2026-03-10T09:00", 30, 1, 0.0105, endpoint_tag="reply", prompt_version="r2")  # +5%
    assert evaluate(store, REGRESSION) == [
        ("endpoint_tag=reply&prompt_version=r2", False),
        ("endpoint_tag=summary&prompt_version=v4", True),
    ]
    (title,) = fire(store, REGRESSION)
    assert title.startswith("Prompt version v4 of summary costs 60% more per request than v3")
    (alert,) = store.budget_store.list_alerts()
    assert alert.details["observed"]["previous_version"] == "v3"


def test_an_established_or_cheaper_version_does_not_fire(store: BudgetHost) -> None:
    traffic(store, "2026-03-08T10:00", 40, 1, 0.010, endpoint_tag="summary", prompt_version="v3")
    traffic(store, "2026-03-08T10:00", 40, 1, 0.020, endpoint_tag="summary", prompt_version="v2")
    traffic(store, "2026-03-10T09:00", 30, 1, 0.020, endpoint_tag="summary", prompt_version="v2")  # not new
    traffic(store, "2026-03-10T09:00", 30, 1, 0.009, endpoint_tag="summary", prompt_version="v5")  # cheaper
    assert evaluate(store, REGRESSION) == [("endpoint_tag=summary&prompt_version=v5", False)]


SHARE = config("""
rules:
  - {kind: spend_share, by: tenant_id, window: 1h, threshold: 50%, min_cost_usd: 1}
""")


def test_one_tenant_taking_most_of_the_spend_fires(store: BudgetHost) -> None:
    traffic(store, "2026-03-10T11:30", 10, 8, 0.1, tenant_id="acme")  # 8 USD
    traffic(store, "2026-03-10T11:30", 10, 1, 0.1, tenant_id="beta")  # 1 USD
    traffic(store, "2026-03-10T11:30", 10, 1, 0.1, tenant_id="gamma")
    assert evaluate(store, SHARE) == [
        ("tenant_id=acme", True),
        ("tenant_id=beta", False),
        ("tenant_id=gamma", False),
    ]
    (title,) = fire(store, SHARE)
    assert title.startswith("tenant_id acme took 80% of spend")


def test_balanced_spend_or_a_single_tenant_does_not_fire(store: BudgetHost) -> None:
    traffic(store, "2026-03-10T11:30", 10, 4, 0.1, tenant_id="acme")
    traffic(store, "2026-03-10T11:30", 10, 3, 0.1, tenant_id="beta")
    traffic(store, "2026-03-10T11:30", 10, 3, 0.1, tenant_id="gamma")
    assert [firing for _, firing in evaluate(store, SHARE)] == [False, False, False]


def test_a_single_tenant_is_not_a_concentration(store: BudgetHost) -> None:
    traffic(store, "2026-03-10T11:30", 10, 4, 0.1, tenant_id="acme")
    assert evaluate(store, SHARE) == [("tenant_id=acme", None)]


def test_user_share_reads_the_hourly_rollup(store: BudgetHost) -> None:
    cfg = config("""
    rules:
      - {kind: spend_share, by: user_id, threshold: 60%, min_cost_usd: 1}
    """)
    traffic(store, "2026-03-10T12:00", 1, 30, 0.1, user_id="heavy")
    traffic(store, "2026-03-10T12:00", 1, 5, 0.1, user_id="light")
    assert evaluate(store, cfg) == [("user_id=heavy", True), ("user_id=light", False)]


BURST = config("""
rules:
  - {kind: request_burst, window: 10m, baseline: 1h, rate_multiplier: 3, threshold: 10%, min_requests: 20}
""")


def test_a_burst_with_a_falling_success_ratio_fires(store: BudgetHost) -> None:
    traffic(store, "2026-03-10T10:50", 60, 2, 0.01)  # baseline: 2/min, all successful
    traffic(store, "2026-03-10T11:51", 10, 10, 0.01, errors_every=3)  # 10/min, 40% errors
    assert evaluate(store, BURST) == [("all", True)]
    (title,) = fire(store, BURST)
    assert title.startswith("Request burst on all traffic: 10.0/min vs 2.0/min, success 60%")


def test_a_burst_that_succeeds_or_errors_without_a_burst_do_not_fire(store: BudgetHost) -> None:
    traffic(store, "2026-03-10T10:50", 60, 2, 0.01, endpoint_tag="a")
    traffic(store, "2026-03-10T10:50", 60, 5, 0.01, endpoint_tag="b")
    traffic(store, "2026-03-10T11:51", 10, 10, 0.01, endpoint_tag="a")  # a burst, all successful
    traffic(store, "2026-03-10T11:51", 10, 5, 0.01, endpoint_tag="b", errors_every=2)  # errors, same rate
    cfg = config("""
    rules:
      - {kind: request_burst, by: endpoint_tag}
    """)
    assert evaluate(store, cfg) == [("endpoint_tag=a", False), ("endpoint_tag=b", False)]


RETRIES = config("""
rules:
  - {kind: retry_multiplier, by: endpoint_tag, window: 15m, baseline: 24h, threshold: 1.5, min_requests: 20}
""")


def test_a_retry_storm_fires(store: BudgetHost) -> None:
    traffic(store, "2026-03-09T20:00", 30, 1, 0.01, endpoint_tag="search")
    traffic(store, "2026-03-10T11:46", 12, 2, 0.01, endpoint_tag="search", attempts=3)
    assert evaluate(store, RETRIES) == [("endpoint_tag=search", True)]
    (alert_title,) = fire(store, RETRIES)
    assert "3.00 attempts per request (baseline 1.00)" in alert_title


def test_a_normal_retry_rate_does_not_fire(store: BudgetHost) -> None:
    traffic(store, "2026-03-09T20:00", 30, 1, 0.01, endpoint_tag="search", attempts=2)  # always 2
    traffic(store, "2026-03-10T11:46", 12, 2, 0.01, endpoint_tag="search", attempts=2)
    traffic(store, "2026-03-10T11:46", 12, 2, 0.01, endpoint_tag="chat")
    assert evaluate(store, RETRIES) == [("endpoint_tag=chat", False), ("endpoint_tag=search", False)]


UNKNOWN = config("""
rules:
  - {kind: unknown_model_ratio, window: 1h, threshold: 5%, min_requests: 20}
""")


def test_an_unknown_model_ratio_over_the_threshold_fires_and_names_the_models(store: BudgetHost) -> None:
    traffic(store, "2026-03-10T11:30", 10, 9, 0.01)
    traffic(store, "2026-03-10T11:30", 10, 1, None, model="my-finetune", provider="acme-llm")
    assert evaluate(store, UNKNOWN) == [("all", True)]
    (title,) = fire(store, UNKNOWN)
    assert title.startswith("10% of attempts have no price (10 of 100)")
    (alert,) = store.budget_store.list_alerts()
    assert alert.details["observed"]["models"] == [
        {"provider": "acme-llm", "model": "my-finetune", "unpriced_attempts": 10}
    ]


def test_a_low_unknown_model_ratio_or_too_little_traffic_does_not_fire(store: BudgetHost) -> None:
    assert evaluate(store, UNKNOWN) == [("all", None)]
    traffic(store, "2026-03-10T11:30", 10, 10, 0.01)
    traffic(store, "2026-03-10T11:30", 2, 1, None, model="my-finetune")
    assert evaluate(store, UNKNOWN) == [("all", False)]


def test_measures_group_any_dimensions_of_a_rollup(store: BudgetHost) -> None:
    traffic(store, "2026-03-10T11:30", 2, 3, 0.5, endpoint_tag="a", prompt_version="v1")
    traffic(store, "2026-03-10T11:30", 1, 2, None, endpoint_tag="a", prompt_version=None, errors_every=1)
    groups = store.budget_store.measures(("endpoint_tag", "prompt_version"), at("2026-03-10T11:00"), at(NOW))
    summary = {g.key: (g.attempts, g.logical_requests, g.cost_nano_usd, g.errors, g.unpriced) for g in groups}
    assert summary == {("a", "v1"): (6, 6, 3 * 10**9, 0, 0), ("a", None): (2, 2, 0, 2, 2)}
    (total,) = store.budget_store.measures((), at("2026-03-10T11:00"), at(NOW))
    assert total.attempts == 8
    with pytest.raises(ValueError, match="cannot group or filter on"):
        store.budget_store.measures(("user_id", "model"), 0, at(NOW))


def test_a_back_filled_baseline_is_judged_when_asked_fresh(store: BudgetHost) -> None:
    """A long baseline is cached for the hour: judged before a back-fill it stays empty
    (nothing fires), until an evaluation asks for fresh baselines (as the demo does)."""
    evaluator = RuleEvaluator(store.budget_store, Clock(NOW))
    traffic(store, "2026-03-10T09:00", 30, 1, 0.016, endpoint_tag="summary", prompt_version="v4")
    assert evaluator.evaluate_all(REGRESSION) == []  # no baseline yet: v4 is all there is
    traffic(store, "2026-03-08T10:00", 40, 1, 0.010, endpoint_tag="summary", prompt_version="v3")
    assert evaluator.evaluate_all(REGRESSION) == []  # the hour's cached (empty) baseline
    evaluator.forget_baselines()
    (alert_id,) = evaluator.evaluate_all(REGRESSION)
    assert store.budget_store.get_alert(alert_id).title.startswith(  # type: ignore[union-attr]
        "Prompt version v4 of summary costs 60% more per request than v3"
    )
