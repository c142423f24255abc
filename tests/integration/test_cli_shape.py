"""The CLI is one shape: every view's options and its API route come from one parameter spec
(same defaults, same errors, same documents), ``--url``/``SPANMETER_URL`` work on every
command that reads a store, and every mistake a user can make gets a one-line error, never
a traceback. The receiver, the pipes and the ports here are real."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from spanmeter.analysis.parameters import SPECS, TOP, TOP_LIMIT
from spanmeter.cli import main
from spanmeter.dimensions import DIMENSIONS, RANKABLE, REGISTRY
from spanmeter.store import SQLiteStore
from spanmeter.synthetic import SyntheticConfig, UnknownModel, generate

WINDOW = "2026-03-03T00:00..2026-03-04T00:00"
SPANMETER = [sys.executable, "-m", "spanmeter.cli"]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shape") / "shape.db"
    start = datetime(2026, 3, 3, tzinfo=timezone.utc)
    config = SyntheticConfig(
        start=start,
        days=1,
        requests_per_hour=120,
        incidents=(UnknownModel("acme-llm-9", start, datetime(2026, 3, 4, tzinfo=timezone.utc), share=0.2),),
    )
    with SQLiteStore(path) as store:
        generate(config).write_to(store)
    return path


@pytest.fixture(scope="module")
def receiver(store_path: Path) -> Iterator[tuple[str, str]]:
    """``spanmeter serve`` on the store, as a real process: (http URL, grpc URL as http://)."""
    env = {**os.environ, "SPANMETER_USER_ID_HASH_KEY": "test-key"}
    process = subprocess.Popen(
        [
            *SPANMETER,
            "serve",
            "--db",
            str(store_path),
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--no-store-process",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        line = ""
        while "receiving OTLP on" not in line:
            line = process.stderr.readline()
            assert line, "the receiver exited before listening"
        words = line.split()
        grpc_url = next(w for w in words if w.startswith("grpc://")).replace("grpc://", "http://")
        http_url = next(w for w in words if w.startswith("http://"))
        yield http_url, grpc_url
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


def _run(args: list[str], **env: str) -> Result:
    return CliRunner().invoke(main, args, env=env or None)


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = json.loads(error.read())
        error.close()
        return error.code, body


# ------------------------------------------------------------------ one spec, two doors


def test_top_answers_the_same_document_from_the_cli_and_the_api(
    store_path: Path, receiver: tuple[str, str]
) -> None:
    url, _ = receiver
    args = ["top", "--by", "user_id", "--window", WINDOW, "--data-mode", "all", "--format", "json"]
    local = _run([*args, "--db", str(store_path)])
    remote = _run([*args, "--url", url])
    status, document = _get(f"{url}/api/v1/top?by=user_id&window={WINDOW}&data_mode=all")
    assert local.exit_code == 0 and remote.exit_code == 0, local.output + remote.output
    assert status == 200
    assert json.loads(local.output) == document == json.loads(remote.output)
    # the one default: more users than TOP_LIMIT, and both doors show TOP_LIMIT of them
    assert document["totals"]["groups"] > TOP_LIMIT
    assert len(document["groups"]) == TOP_LIMIT


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_cli_and_api_defaults_come_from_the_one_spec(spec: object) -> None:
    from spanmeter.analysis.parameters import ViewSpec

    assert isinstance(spec, ViewSpec)
    cli, api = spec.parse({}, window_optional=True), spec.parse({}, api=True, window_optional=True)
    assert (cli.where, cli.environment, cli.data_mode, cli.values) == (
        api.where,
        api.environment,
        api.data_mode,
        api.values,
    )
    assert cli.fmt == spec.formats[0] and api.fmt == spec.api_format
    command: click.Command = main
    for word in spec.name.split()[:2]:
        if word.startswith("--"):
            break
        assert isinstance(command, click.Group)
        command = command.commands[word]
    options = {option.name: option for option in command.params if isinstance(option, click.Option)}
    for param in spec.all_params:
        option = options[f"param_{param.name}"]
        assert option.help == param.describe()
        if param.default is not None and not param.flag:
            assert f"[default {param.default}]" in (option.help or "")
    if "data_mode" in spec.scoped:
        assert cli.data_mode == "real"  # one data-mode default, doctor included


@pytest.mark.parametrize(
    ("args", "query", "message"),
    [
        (
            ["--data-mode", "bogus"],
            "data_mode=bogus",
            "data_mode: 'bogus' is not one of real, test, demo, all",
        ),
        (
            ["--where", "tenant_id=a", "--where", "tenant_id=b"],
            "where=tenant_id=a&where=tenant_id=b",
            "dimension 'tenant_id' filtered twice",
        ),
        (["--since", "100000000d"], "since=100000000d", "duration too long: '100000000d'"),
        (["--limit", "0"], "limit=0", "limit: 0 is out of range (from 1 to 10000)"),
        (["--by", "colour"], "by=colour", "by: 'colour' is not one of"),
    ],
)
def test_bad_values_get_the_same_message_from_the_cli_and_the_api(
    store_path: Path, receiver: tuple[str, str], args: list[str], query: str, message: str
) -> None:
    url, _ = receiver
    result = _run(["top", *args, "--db", str(store_path)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    status, body = _get(f"{url}/api/v1/top?{query}")
    assert status == 400 and message in str(body["error"])


def test_every_store_command_takes_url_and_spanmeter_url(
    store_path: Path, receiver: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = receiver
    monkeypatch.chdir(tmp_path)  # no spanmeter.db here: only the receiver can answer
    for args in (
        ["top", "--window", WINDOW],
        ["investigate", "--window", WINDOW, "--format", "json"],
        ["export", "requests", "--window", WINDOW, "--format", "ndjson"],
        ["reprice", "--window", WINDOW, "--dry-run", "--format", "json"],
        ["reprice", "--history", "--format", "json"],
        ["doctor", "--window", WINDOW, "--format", "json"],
        ["compare", "prompt-versions", "--window", WINDOW, "--format", "json"],
        ["economics", "--window", WINDOW, "--format", "json"],
        ["report", "weekly", "--week", "2026-03-03", "--format", "json"],
        ["alerts", "list", "--format", "json"],
    ):
        local = _run([*args, "--db", str(store_path)])
        through_env = _run(args, SPANMETER_URL=url)
        assert local.exit_code == 0, (args, local.output)
        assert through_env.exit_code == 0, (args, through_env.output)
        assert through_env.stdout == local.stdout, args
    assert _run(["budgets", "list"], SPANMETER_URL=url).exit_code == 0
    applying = _run(["reprice", "--window", WINDOW, "--reason", "x", "--yes"], SPANMETER_URL=url)
    assert applying.exit_code == 2 and "use --db" in applying.output


def test_unpriced_rows_do_not_read_as_free(store_path: Path) -> None:
    result = _run(["top", "--by", "model", "--window", WINDOW, "--data-mode", "all", "--db", str(store_path)])
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if line.startswith("acme-llm-9")]
    assert row.split()[1] == "unpriced" and row.split()[-1] == "-"
    assert "attempts without a price" in result.output


def test_the_registry_is_what_the_lists_say() -> None:
    from spanmeter.budgets.definitions.model import DIMENSIONS as BUDGET_DIMENSIONS
    from spanmeter.prometheus.cost_sums import COST_LABELS
    from spanmeter.store.rollups import TOP_DIMENSIONS

    assert BUDGET_DIMENSIONS == DIMENSIONS
    assert set(TOP_DIMENSIONS) == set(RANKABLE)
    assert set(COST_LABELS) == {d.prometheus_label for d in REGISTRY if d.prometheus_label}
    assert all(d.prometheus_label is None for d in REGISTRY if d.hashed)
    top = main.commands["top"]
    (by,) = [option for option in top.params if option.name == "param_by"]
    assert by.help == TOP.param("by").describe() and all(name in (by.metavar or "") for name in RANKABLE)


# ------------------------------------------------------------------ mistakes, one line each


def test_a_store_in_a_missing_directory_is_named(tmp_path: Path) -> None:
    db = tmp_path / "var" / "lib" / "spanmeter" / "spanmeter.db"
    result = subprocess.run(
        [*SPANMETER, "serve", "--db", str(db), "--grpc-port", "0", "--http-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"the directory {db.parent} does not exist" in result.stderr
    assert "Traceback" not in result.stderr and not db.parent.exists()


def test_files_that_are_not_stores_are_refused_and_left_alone(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("hello")
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER)")
    conn.close()
    for path, message in (
        (text, "is not a spanmeter store"),
        (foreign, "a SQLite database but not a spanmeter store"),
    ):
        before = path.read_bytes()
        for args in (["top"], ["doctor"], ["export", "requests"], ["alerts", "list"]):
            result = _run([*args, "--db", str(path)])
            assert result.exit_code == 1, (args, result.output)
            assert message in result.output and "Traceback" not in result.output
        served = subprocess.run(
            [*SPANMETER, "serve", "--db", str(path), "--grpc-port", "0", "--http-port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert served.returncode == 1 and message in served.stderr and "Traceback" not in served.stderr
        assert path.read_bytes() == before  # no spanmeter tables added to someone else's database


def test_url_mistakes_are_explained(receiver: tuple[str, str]) -> None:
    _, grpc_url = receiver
    no_scheme = _run(["top", "--url", "127.0.0.1:4318"])
    assert no_scheme.exit_code == 2 and "with its scheme" in no_scheme.output
    from_env = _run(["top"], SPANMETER_URL="localhost:4318")
    assert from_env.exit_code == 2 and "SPANMETER_URL" in from_env.output
    grpc = _run(["top", "--url", grpc_url])
    assert grpc.exit_code == 1 and "gRPC port" in grpc.output
    assert "Traceback" not in grpc.output + no_scheme.output


def test_a_port_in_use_is_named_and_leaves_no_store(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for ports in (
            ["--http-port", str(port), "--grpc-port", "0"],
            ["--grpc-port", str(port), "--http-port", "0"],
        ):
            db = tmp_path / "new.db"
            result = subprocess.run(
                [*SPANMETER, "serve", "--db", str(db), "--host", "127.0.0.1", *ports],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 1, result.stderr
            assert f"127.0.0.1:{port}" in result.stderr.splitlines()[-1]
            assert "Traceback" not in result.stderr
            assert not list(tmp_path.iterdir()), "a failed start left a store behind"


def test_export_into_a_reader_that_stops_early_exits_quietly(store_path: Path) -> None:
    process = subprocess.Popen(
        [*SPANMETER, "export", "requests", "--db", str(store_path), "--window", WINDOW, "--data-mode", "all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    header = process.stdout.readline()
    process.stdout.close()  # what `| head -1` does
    code = process.wait(timeout=60)
    errors = process.stderr.read().decode()
    process.stderr.close()
    assert header.startswith(b"trace_id,")
    assert code in (0, 1) and errors == ""
