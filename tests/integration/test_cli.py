"""The command line: quickstart shows the loop end to end; every command is documented."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from spanmeter.cli import main


def test_quickstart_runs_the_whole_loop(tmp_path: Path) -> None:
    db = tmp_path / "qs.db"
    result = CliRunner().invoke(main, ["quickstart", "--calls", "120", "--db", str(db)])
    assert result.exit_code == 0, result.output
    tables = result.output.split("\ntop ")[1:]
    assert len(tables) == 2
    for table in tables:
        rows = [line for line in table.splitlines() if re.match(r"^\S+\s+\d+\.\d{6}\s", line)]
        groups = [Decimal(line.split()[1]) for line in rows if not line.startswith("total")]
        (total,) = [Decimal(line.split()[1]) for line in rows if line.startswith("total")]
        assert groups and abs(sum(groups) - total) <= Decimal("0.000001") * len(groups)
        assert total > 0
    assert "checkout.ai_summary" in tables[0]
    assert "t_acme" in tables[1]
    assert db.exists()


def test_top_without_a_store_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["top", "--db", str(tmp_path / "missing.db")])
    assert result.exit_code != 0
    assert "no store at" in result.output


def test_top_rejects_bad_windows_and_filters(tmp_path: Path) -> None:
    for args in (
        ["--since", "yesterday"],
        ["--where", "colour=blue"],
        ["--since", "1h", "--from", "2026-01-01"],
    ):
        result = CliRunner().invoke(main, ["top", "--db", str(tmp_path / "x.db"), *args])
        assert result.exit_code == 2, (args, result.output)


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, command in group.commands.items():
        found.append(((*prefix, name), command))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize(
    ("path", "command"), _commands(main), ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_command_is_documented(path: tuple[str, ...], command: click.Command) -> None:
    assert command.help, f"spanmeter {' '.join(path)} has no help text"
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    for parameter in command.params:
        if isinstance(parameter, click.Option) and not parameter.hidden:
            assert parameter.help, f"spanmeter {' '.join(path)} {parameter.opts[0]} has no help text"
