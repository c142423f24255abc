"""The budgets file: shapes accepted, every problem reported with file, entry and field;
windows in time zones; the watcher reloads valid changes only."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from spanmeter.budgets import BudgetConfigError, WindowSpec, load_config, parse_config
from spanmeter.budgets.config.watch import ConfigWatcher
from support.budget_helpers import HOUR_NS, at, config

FULL = """
timezone: Europe/Paris
evaluate_every: 30s
public_url: http://spanmeter.internal:4318/
budgets:
  - name: monthly
    limit_usd: 5000
    window: month
  - name: tenant-daily
    description: every tenant gets 25 USD a day
    scope: {tenant_id: "*", environment: prod}
    window: day
    timezone: UTC
    limit_usd: "25.50"
    warn_at: [80%, 0.5]
    forecast_min_elapsed: 3h
    channels: [ops]
  - name: search-burst
    scope: {endpoint_tag: search}
    window: {rolling: 6h}
    limit_usd: 12.5
    warn_at: []
rules:
  - {kind: cost_per_request_drift, by: prompt_version, threshold: 40%}
  - {kind: spend_share, by: user_id, name: user-share, min_cost_usd: 5, severity: critical}
  - {kind: request_burst}
  - {kind: retry_multiplier, threshold: 2, rise: 50%}
  - {kind: unknown_model_ratio, data_mode: all}
  - {kind: prompt_version_regression, window: 2h, baseline: 3d}
delivery:
  retry: {initial: 2s, max: 10m, give_up_after: 2d}
  webhooks:
    - {name: ops, url: "https://hooks.example.com/x", secret_env: OPS_SECRET, kinds: ["budget.*"]}
  slack:
    - {name: finops, url_env: SLACK_URL, min_severity: critical}
"""


def test_a_full_file_parses_into_exact_values() -> None:
    cfg = config(FULL, OPS_SECRET="k", SLACK_URL="https://hooks.slack.com/services/T/B/X")
    monthly, tenant, burst = cfg.budgets
    assert monthly.window == WindowSpec.calendar("month", "Europe/Paris")
    assert monthly.scope == {"data_mode": "real"}
    assert monthly.warn_at == (Decimal("0.5"), Decimal("0.8")) and monthly.forecast
    assert tenant.limit_nano_usd == 25_500_000_000
    assert tenant.thresholds_nano_usd == (12_750_000_000, 20_400_000_000, 25_500_000_000)
    assert tenant.wildcards == ("tenant_id",)
    assert tenant.window.timezone == "UTC" and tenant.forecast_min_elapsed_ns == 3 * HOUR_NS
    assert tenant.channels == ("ops",)
    assert burst.window.hours == 6 and not burst.forecast and burst.exceeded_level == 1
    assert [r.name for r in cfg.rules] == [
        "cost_per_request_drift:prompt_version",
        "user-share",
        "request_burst",
        "retry_multiplier",
        "unknown_model_ratio",
        "prompt_version_regression",
    ]
    assert cfg.rules[1].min_cost_nano_usd == 5_000_000_000 and cfg.rules[1].severity == "critical"
    assert cfg.rules[3].threshold == Decimal(2) and cfg.rules[3].rise == Decimal("0.5")
    assert cfg.rules[4].data_mode is None
    assert cfg.evaluate_every_s == 30 and cfg.public_url == "http://spanmeter.internal:4318"
    assert cfg.retry.initial_s == 2 and cfg.retry.max_s == 600 and cfg.retry.give_up_after_s == 172_800
    assert [(c.name, c.type) for c in cfg.channels] == [
        ("ops", "webhook"),
        ("finops", "slack"),
        ("log", "log"),
    ]
    assert cfg.channels_for("budget.exceeded", "critical") == ("ops", "finops", "log")
    assert cfg.channels_for("rule.spend_share", "warning") == ("log",)
    assert cfg.channels_for("budget.warning", "warning", ("ops",)) == ("ops",)


def test_changing_what_is_counted_changes_the_counter_but_a_new_limit_does_not() -> None:
    base = config("budgets: [{name: b, window: day, limit_usd: 1, scope: {tenant_id: '*'}}]").budgets[0]
    limit = config("budgets: [{name: b, window: day, limit_usd: 2, scope: {tenant_id: '*'}}]").budgets[0]
    window = config("budgets: [{name: b, window: week, limit_usd: 1, scope: {tenant_id: '*'}}]").budgets[0]
    scope = config("budgets: [{name: b, window: day, limit_usd: 1}]").budgets[0]
    assert base.counter == limit.counter
    assert len({base.counter, window.counter, scope.counter}) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("budgets: [{name: a, window: day}]", "budgets[0] 'a': limit_usd: required"),
        (
            "budgets: [{name: a, window: day, limit_usd: 0}]",
            "budgets[0] 'a': limit_usd: must be a positive amount",
        ),
        (
            "budgets: [{name: a, window: fortnight, limit_usd: 1}]",
            "budgets[0] 'a': window: unknown window 'fortnight'",
        ),
        ("budgets: [{name: a, window: {rolling: 90m}, limit_usd: 1}]", "a whole number of hours"),
        (
            "budgets: [{name: a, window: {rolling: 2h}, limit_usd: 1, forecast: true}]",
            "has no end to project to",
        ),
        (
            "budgets: [{name: a, window: day, limit_usd: 1, scope: {team: x}}]",
            "scope: unknown dimension 'team'",
        ),
        (
            "budgets: [{name: a, window: day, limit_usd: 1, warn_at: [80]}]",
            "warn_at[0]: 80 is above 1: write a percentage",
        ),
        (
            "budgets: [{name: a, window: day, limit_usd: 1, timezone: Mars/Base}]",
            "unknown time zone 'Mars/Base'",
        ),
        ("budgets: [{name: a, window: day, limit_usd: 1, limit: 2}]", "budgets[0] 'a': unknown key 'limit'"),
        ("budgets: [{name: 'a b', window: day, limit_usd: 1}]", "name: required, letters, digits"),
        ("budgets: [{name: a, window: day, limit_usd: 1, channels: [pager]}]", "no channel named 'pager'"),
        (
            "budgets: [{name: a, window: day, limit_usd: 1}, {name: a, window: week, limit_usd: 1}]",
            "name 'a' is used more than once",
        ),
        (
            "rules: [{kind: spend_share, by: model}]",
            "rules[0] 'spend_share': by: spend_share judges by tenant_id",
        ),
        ("rules: [{kind: spend_share, baseline: 1h}]", "spend_share has no baseline"),
        ("rules: [{kind: cost_per_request_drift, threshold: lots}]", "threshold: expected a percentage"),
        (
            "rules: [{kind: request_burst}, {kind: request_burst}]",
            "name 'request_burst' is used more than once",
        ),
        ("delivery: {webhooks: [{name: w, url: 'http://x'}]}", "secret (or secret_env): required"),
        (
            "delivery: {webhooks: [{name: w, url: 'http://x', secret_env: NOPE}]}",
            "environment variable NOPE is not set",
        ),
        ("delivery: {slack: [{name: s, url: 'ftp://x'}]}", "url: required, http:// or https://"),
        ("delivery: {retry: {initial: soon}}", "delivery.retry.initial: invalid duration 'soon'"),
        ("colour: blue", "top level: unknown key 'colour'"),
    ],
)
def test_each_problem_names_the_file_the_entry_and_the_field(text: str, message: str) -> None:
    with pytest.raises(BudgetConfigError) as raised:
        parse_config(yaml.safe_load(text), "budgets.yaml", environ={})
    assert any(message in error for error in raised.value.errors), raised.value.errors
    assert all(error.startswith("budgets.yaml: ") for error in raised.value.errors)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text("budgets:\n  - {name: a, window: dai}\n  - {name: b, window: day, limit_usd: x}\n")
    with pytest.raises(BudgetConfigError) as raised:
        load_config(path)
    assert len(raised.value.errors) == 3  # a: window and limit; b: limit
    assert str(path) in str(raised.value)
    with pytest.raises(BudgetConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    path.write_text("budgets: [unclosed")
    with pytest.raises(BudgetConfigError, match="not valid YAML"):
        load_config(path)


@pytest.mark.parametrize(
    ("kind", "zone", "instant", "start", "end"),
    [
        ("day", "UTC", "2026-03-10T23:59:59", "2026-03-10", "2026-03-11"),
        ("week", "UTC", "2026-03-15T12:00", "2026-03-09", "2026-03-16"),  # Monday to Monday
        ("month", "UTC", "2026-02-28T23:00", "2026-02-01", "2026-03-01"),
        ("month", "UTC", "2026-12-31T23:00", "2026-12-01", "2027-01-01"),
        ("day", "Europe/Paris", "2026-03-29T12:00", "2026-03-28T23:00", "2026-03-29T22:00"),  # 23h: DST
        ("day", "Europe/Paris", "2026-10-25T12:00", "2026-10-24T22:00", "2026-10-25T23:00"),  # 25h
        ("week", "Asia/Kolkata", "2026-03-08T19:00", "2026-03-08T18:30", "2026-03-15T18:30"),
        ("month", "America/New_York", "2026-03-01T04:59", "2026-02-01T05:00", "2026-03-01T05:00"),
    ],
)
def test_calendar_windows(kind: str, zone: str, instant: str, start: str, end: str) -> None:
    window = WindowSpec(kind, zone)  # type: ignore[arg-type]
    assert window.bounds(at(instant)) == (at(start), at(end))
    assert window.bounds(at(start)) == (at(start), at(end))  # the start belongs to the window
    assert window.bounds(at(end))[0] == at(end)  # the end starts the next one
    assert window.previous(at(start))[1] == at(start)


def test_rolling_windows_are_hour_buckets() -> None:
    window = WindowSpec.rolling(6)
    assert window.bounds(at("2026-03-10T10:30")) == (at("2026-03-10T10:00"), at("2026-03-10T11:00"))
    assert window.rolling_since(at("2026-03-10T10:30")) == at("2026-03-10T05:00")
    assert window.current(at("2026-03-10T10:30")) == (at("2026-03-10T05:00"), at("2026-03-10T11:00"))


def test_the_watcher_reloads_valid_changes_and_keeps_the_last_good_config(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("budgets: [{name: a, window: day, limit_usd: 1}]")
    watcher = ConfigWatcher(path)
    assert watcher.load().budgets[0].limit_usd == 1
    assert watcher.poll() is None  # unchanged

    def rewrite(text: str, bump: int) -> None:
        path.write_text(text)
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump * 1_000_000_000))

    rewrite("budgets: [{name: a, window: day, limit_usd: 2}]", 1)
    reloaded = watcher.poll()
    assert reloaded is not None and reloaded.budgets[0].limit_usd == 2
    rewrite("budgets: [{name: a, window: dai, limit_usd: 2}]", 2)
    assert watcher.poll() is None
    assert watcher.last_error is not None and "unknown window 'dai'" in watcher.last_error
    rewrite("budgets: [{name: a, window: day, limit_usd: 3}]", 3)
    assert watcher.poll() is not None and watcher.last_error is None
