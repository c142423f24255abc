"""API keys for the tests, made as an operator makes them: ``spanmeter keys create``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from spanmeter.cli import main

__all__ = ["create_key"]


def create_key(store: Path | str, name: str, scope: str, *more: str) -> str:
    """A new key's secret, from ``keys create --format json`` on ``store`` (``more``: further
    options, e.g. ``--tenant t1`` or ``--rate-limit 5``)."""
    args = ["keys", "create", "--name", name, "--scope", scope, "--format", "json", "--store", str(store)]
    result = CliRunner().invoke(main, [*args, *more])
    assert result.exit_code == 0, result.output
    return str(json.loads(result.output)["key"])
