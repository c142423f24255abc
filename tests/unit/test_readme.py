"""The README stays true: every ``spanmeter`` command it shows parses with the real CLI, every
command is mentioned, and its environment-variable table lists exactly the variables declared
in :mod:`spanmeter.environment_variables`."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from spanmeter import environment_variables
from spanmeter.cli import main

_README = Path(__file__).resolve().parents[2] / "README.md"
_SHELL_BLOCK = re.compile(r"^```(?:bash|console|sh|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _readme() -> str:
    return _README.read_text()


def _shown_commands() -> list[str]:
    """``spanmeter ...`` lines of the README's shell blocks (continuations joined, comments cut)."""
    commands: list[str] = []
    for block in _SHELL_BLOCK.findall(_readme()):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("spanmeter "):
                commands.append(line)
    return commands


def test_the_readme_shows_commands() -> None:
    shown = _shown_commands()
    assert len(shown) >= 15
    assert any(line.startswith("spanmeter demo") for line in shown)


@pytest.mark.parametrize("line", _shown_commands())
def test_every_command_shown_parses(line: str) -> None:
    words = shlex.split(line, comments=True)[1:]
    command: click.Command = main
    path = ["spanmeter"]
    while isinstance(command, click.Group) and words and words[0] in command.commands:
        path.append(words[0])
        command = command.commands[words.pop(0)]
    assert not isinstance(command, click.Group), f"{line!r}: {' '.join(path)} needs a subcommand"
    # Parsing checks the options, their values and the arguments, without running anything.
    with command.make_context(" ".join(path), list(words)) as context:
        assert context.command is command


def test_every_top_level_command_is_in_the_readme() -> None:
    text = _readme()
    missing = [name for name in main.commands if f"spanmeter {name}" not in text]
    assert not missing, f"commands the README never mentions: {missing}"


def test_environment_variable_table_matches_the_declarations() -> None:
    text = _readme()
    section = re.split(r"^## Environment variables$", text, flags=re.MULTILINE)[1].split("\n## ", 1)[0]
    table = {
        name
        for line in section.splitlines()
        if line.startswith("|")
        for name in re.findall(r"SPANMETER_[A-Z_]+", line)
    }
    declared = {value for name, value in vars(environment_variables).items() if name.startswith("SPANMETER_")}
    assert table == declared, (
        f"only in the README: {sorted(table - declared)}; only declared: {sorted(declared - table)}"
    )
