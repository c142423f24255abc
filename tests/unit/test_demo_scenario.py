"""The demo's story is fixed by its end instant: the incident lands in the windows that judge it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import yaml
from click.testing import CliRunner

from spanmeter.budgets import WindowSpec, parse_config
from spanmeter.cli import main
from spanmeter.demo import ENDPOINT_BUDGET, INCIDENT_ENDPOINT, NEW_VERSION, TENANT_BUDGET, DemoScenario
from spanmeter.synthetic import PromptDeploy, to_ns

_HOUR = 3600 * 1_000_000_000
_NOW = 1_772_900_000 * 1_000_000_000 + 1_234  # 2026-03-07 16:13:20 UTC and a bit


def test_traffic_ends_at_the_current_hour_and_the_deploy_is_inside_the_judged_windows() -> None:
    scenario = DemoScenario.ending_at(_NOW)
    assert scenario.end_ns % _HOUR == 0 and scenario.end_ns <= _NOW < scenario.end_ns + _HOUR
    assert scenario.end_ns - scenario.start_ns == 48 * _HOUR
    incident, baseline = scenario.incident_window, scenario.baseline_window
    assert baseline.end_ns == incident.start_ns < scenario.deploy_ns < incident.end_ns == scenario.end_ns
    # the rolling budget window at the demo's "now" covers the deploy and everything after it
    since = WindowSpec.rolling(24).rolling_since(_NOW)
    assert since < scenario.deploy_ns
    config = scenario.synthetic_config()
    (deploy,) = config.incidents
    assert isinstance(deploy, PromptDeploy)
    assert (deploy.endpoint, deploy.version, to_ns(deploy.at)) == (
        INCIDENT_ENDPOINT,
        NEW_VERSION,
        scenario.deploy_ns,
    )
    assert to_ns(config.start) == scenario.start_ns and config.days * 24 == scenario.hours


def test_budgets_file_is_valid_and_scales_with_the_traffic() -> None:
    for rate, limit in ((300.0, Decimal(30)), (150.0, Decimal(15))):
        text = DemoScenario.ending_at(_NOW, requests_per_hour=rate).budgets_yaml(
            "http://127.0.0.1:9/alerts", secret="s3cret"
        )
        config = parse_config(yaml.safe_load(text))
        budgets = {b.name: b for b in config.budgets}
        assert dict(budgets[ENDPOINT_BUDGET].scope) == {
            "endpoint_tag": INCIDENT_ENDPOINT,
            "data_mode": "real",
        }
        assert budgets[ENDPOINT_BUDGET].limit_usd == limit
        assert dict(budgets[TENANT_BUDGET].scope) == {"tenant_id": "*", "data_mode": "real"}
        assert all(b.window == WindowSpec.rolling(24) for b in config.budgets)
        (rule,) = config.rules
        assert rule.kind == "prompt_version_regression" and rule.window_ns == rule.baseline_ns == 24 * _HOUR
        assert [c.name for c in config.channels] == ["demo-webhook"]


def test_demo_refuses_to_replace_an_existing_store(tmp_path: Path) -> None:
    db = tmp_path / "precious.db"
    db.write_bytes(b"not yours")
    result = CliRunner().invoke(main, ["demo", "--db", str(db)])
    assert result.exit_code == 1
    assert "exists: pass --force" in result.output
    assert db.read_bytes() == b"not yours"
