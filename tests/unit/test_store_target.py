"""Which store a command opens: ``--store``/``--db``, then ``SPANMETER_STORE``, then
``SPANMETER_DB_PATH``, then ``spanmeter.db``; the receiver's config reads them the same way,
and a URL's password never shows."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from spanmeter.cli.common import opened_store, store_target
from spanmeter.service import ServeConfig
from spanmeter.store import describe_target, is_postgres_url

URL = "postgresql://spanmeter:secret@db:5432/spans"


def test_cli_store_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPANMETER_STORE", raising=False)
    monkeypatch.delenv("SPANMETER_DB_PATH", raising=False)
    assert store_target(None) == "spanmeter.db"
    monkeypatch.setenv("SPANMETER_DB_PATH", "file.db")
    assert store_target(None) == "file.db"
    monkeypatch.setenv("SPANMETER_STORE", URL)
    assert store_target(None) == URL
    assert store_target("given.db") == "given.db"


def test_receiver_config_store_precedence() -> None:
    both = {"SPANMETER_STORE": URL, "SPANMETER_DB_PATH": "file.db"}
    assert ServeConfig.load(environ=both).db == URL
    assert ServeConfig.load(environ={"SPANMETER_DB_PATH": "file.db"}).db == "file.db"
    assert ServeConfig.load({"db": "option.db"}, environ=both).db == "option.db"


def test_urls_are_told_apart_and_shown_without_password() -> None:
    assert is_postgres_url(URL) and is_postgres_url("postgres://h/d")
    assert not is_postgres_url("spanmeter.db")
    assert describe_target(URL) == "postgresql://spanmeter@db:5432/spans"
    assert describe_target("spanmeter.db") == "spanmeter.db"


def test_a_store_that_cannot_open_is_one_line_for_every_command(tmp_path: Path) -> None:
    """Every command (and ``store copy``'s target) opens through ``opened_store``: the
    store's refusal becomes one line naming the target, never a traceback."""
    with pytest.raises(
        click.ClickException, match=r"^cannot open the store :memory:: SQLiteStore needs a file"
    ):
        opened_store(":memory:")
    with pytest.raises(click.ClickException, match=r"cannot open the store .*missing"):
        opened_store(str(tmp_path / "missing" / "cost.db"))
    opened_store(str(tmp_path / "cost.db")).close()
