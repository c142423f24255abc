"""``spanmeter budgets add|remove``: edit the budgets file safely (validated as a whole
first, written atomically, comments and other content kept)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from spanmeter.budgets import BudgetConfigError, load_config
from spanmeter.budgets.editing.edit import add_budget, remove_budget
from spanmeter.cli import main

FILE = """\
# Budgets reviewed by the platform team.
timezone: Europe/Paris
budgets:
  - name: global          # all traffic
    window: month
    limit_usd: 5000
rules:
  - kind: cost_per_request_drift
    by: endpoint_tag
    threshold: 30%
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["budgets", *args])
    return result.exit_code, result.output


def test_add_and_remove_keep_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(FILE)
    os.chmod(path, 0o640)
    code, output = run(
        "add", "tenant-daily", "--scope", "tenant_id=*", "--scope", "endpoint_tag=search",
        "--window", "day", "--limit", "25.50", "--warn", "60,90%", "--file", str(path),
    )  # fmt: skip
    assert code == 0, output
    assert "added budget tenant-daily" in output and "2 budgets" in output
    text = path.read_text()
    assert text.startswith("# Budgets reviewed by the platform team.\n")
    assert "- name: global          # all traffic" in text
    config = load_config(path)
    budget = config.budgets[1]
    assert (budget.name, str(budget.limit_usd), budget.window.kind, budget.window.timezone) == (
        "tenant-daily",
        "25.50",
        "day",
        "Europe/Paris",  # the file's default zone
    )
    assert dict(budget.scope) == {"tenant_id": "*", "endpoint_tag": "search", "data_mode": "real"}
    assert [str(f) for f in budget.warn_at] == ["0.6", "0.9"]
    assert [r.kind for r in config.rules] == ["cost_per_request_drift"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    code, output = run(
        "add", "hourly", "--window", "rolling:6h", "--limit", "2", "--timezone", "UTC", "--file", str(path)
    )
    assert code == 0, output
    assert load_config(path).budgets[2].window.hours == 6
    code, output = run("remove", "tenant-daily", "--file", str(path))
    assert code == 0 and "2 budgets left" in output, output
    assert [b.name for b in load_config(path).budgets] == ["global", "hourly"]
    assert "# all traffic" in path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["budgets.yaml"]  # no temporary file left


def test_an_invalid_result_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(FILE)
    code, output = run("add", "bad", "--window", "dai", "--limit", "-1", "--file", str(path))
    assert code == 1
    assert "window: unknown window 'dai'" in output and "limit_usd: must be a positive amount" in output
    code, output = run("add", "global", "--window", "day", "--limit", "1", "--file", str(path))
    assert code == 1 and "a budget named 'global' exists" in output
    code, output = run(
        "add", "x", "--scope", "team=ml", "--window", "day", "--limit", "1", "--file", str(path)
    )
    assert code == 1 and "unknown dimension 'team'" in output
    code, output = run("remove", "nope", "--file", str(path))
    assert code == 1 and "no budget named 'nope'; known: global" in output
    assert path.read_text() == FILE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["budgets.yaml"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("budgets: [{name: a, window: day}]\n")  # already invalid: an add cannot fix it
    with pytest.raises(BudgetConfigError, match="limit_usd: required"):
        add_budget(broken, {"name": "b", "window": "day", "limit_usd": 1})
    assert broken.read_text() == "budgets: [{name: a, window: day}]\n"


def test_add_creates_the_file_and_follows_a_symlink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPANMETER_BUDGETS_FILE", raising=False)
    target = tmp_path / "real.yaml"
    link = tmp_path / "budgets.yaml"
    add_budget(target, {"name": "daily", "window": "day", "limit_usd": 10})
    link.symlink_to(target)
    remove_budget(link, "daily")
    add_budget(link, {"name": "weekly", "window": "week", "limit_usd": "7.5"})
    assert link.is_symlink() and [b.name for b in load_config(target).budgets] == ["weekly"]
    code, output = run("remove", "weekly")
    assert code != 0 and "--file" in output
