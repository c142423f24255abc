"""Which store a command opens: ``--store``/``--db``, then ``SPANMETER_STORE``, then
``SPANMETER_DB_PATH``, then ``spanmeter.db``; the receiver's config reads them the same way,
and a URL's password never shows."""

from __future__ import annotations

import pytest

from spanmeter.cli.common import store_target
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
