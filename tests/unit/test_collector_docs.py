"""The Collector commands in README.md and docs/collector.md set the variables the shipped
configurations read: one name for each address, everywhere (a one-liner that sets another
name starts a Collector with an empty endpoint)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from spanmeter.collector_config import KINDS, shipped

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "collector.md"]
_SHELL_BLOCK = re.compile(
    r"^```(?:bash|console|sh|shell)(?: no-run:[^\n]*)?\n(.*?)^```", re.MULTILINE | re.DOTALL
)
_PLACEHOLDER = re.compile(r"\$\{env:([A-Z0-9_]+)\}")


def read_variables(kind: str) -> set[str]:
    return set(_PLACEHOLDER.findall(shipped(kind)))  # type: ignore[arg-type]


def documented_runs(doc: Path) -> list[tuple[str, set[str]]]:
    """(kind, variables set) of each shell block that runs a shipped configuration."""
    runs: list[tuple[str, set[str]]] = []
    for block in _SHELL_BLOCK.findall(doc.read_text(encoding="utf-8")):
        words = shlex.split(block.replace("\\\n", " "), comments=True)
        if "otelcol-contrib" not in words:
            continue
        config = words[words.index("--config") + 1]
        kind = re.fullmatch(r"collector_config/(\w+)\.yaml", config)
        assert kind, f"{doc.name}: runs {config}, not a shipped configuration"
        assigned = {w.split("=", 1)[0] for w in words if re.match(r"[A-Z][A-Z0-9_]*=", w)}
        runs.append((kind.group(1), assigned))
    return runs


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_commands_set_exactly_what_the_configuration_reads(doc: Path) -> None:
    runs = documented_runs(doc)
    assert runs, f"{doc.name} shows no otelcol-contrib command"
    for kind, assigned in runs:
        assert assigned == read_variables(kind), (doc.name, kind)


def test_the_variable_table_names_what_each_configuration_reads() -> None:
    text = (ROOT / "docs" / "collector.md").read_text(encoding="utf-8")
    section = text.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| ([^|]+) \|", section, re.MULTILINE)
    assert rows
    for kind in KINDS:
        listed = {name for name, used_by in rows if "all three" in used_by or kind in used_by}
        assert listed == read_variables(kind), kind


def test_the_sdk_variable_is_not_read_by_any_configuration() -> None:
    # SPANMETER_ENDPOINT is the SDK's URL (http://spanmeter:4318); the Collector's is a host:port
    for kind in KINDS:
        assert "SPANMETER_ENDPOINT" not in read_variables(kind)
