"""Every analysis question answers the same from the CLI on the store (--db) and from a
running server's JSON API (--url), and the API rejects bad questions with 400/404."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from click.testing import CliRunner

from spanmeter.api import make_api
from spanmeter.cli import main
from spanmeter.store import SQLiteStore
from spanmeter.synthetic import PromptDeploy, SyntheticConfig, generate

WINDOW = "2026-03-04T00:00..2026-03-05T00:00"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    path = tmp_path_factory.mktemp("api") / "api.db"
    config = SyntheticConfig(
        start=datetime(2026, 3, 3, tzinfo=timezone.utc),
        days=2,
        requests_per_hour=40,
        incidents=(
            PromptDeploy("support.reply", "support_v6", at=datetime(2026, 3, 4, tzinfo=timezone.utc)),
        ),
    )
    with SQLiteStore(path) as store:
        generate(config).write_to(store)
        server = make_server("127.0.0.1", 0, make_api(store), handler_class=_Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield path, f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@pytest.mark.parametrize(
    "args",
    [
        ["investigate", "--window", WINDOW, "--format", "json"],
        ["investigate", "--window", WINDOW, "--where", "endpoint_tag=support.reply", "--format", "triage"],
        ["compare", "prompt-versions", "--window", WINDOW, "--endpoint", "support.reply", "--format", "json"],
        ["economics", "--window", WINDOW, "--format", "json"],
        ["doctor", "--window", WINDOW, "--format", "json"],
        ["report", "weekly", "--week", "2026-03-04", "--format", "json"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_cli_on_the_store_and_through_the_api_agree(served: tuple[Path, str], args: list[str]) -> None:
    path, url = served
    local = CliRunner().invoke(main, [*args, "--db", str(path)])
    remote = CliRunner().invoke(main, [*args, "--url", url])
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    assert remote.output == local.output


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("/api/v1/investigate?window=2026-03-05..2026-03-04", 400),
        ("/api/v1/investigate?window=" + WINDOW + "&baseline=yesterday", 400),
        ("/api/v1/investigate?window=" + WINDOW + "&where=colour=blue", 400),
        ("/api/v1/investigate?window=" + WINDOW + "&format=pdf", 400),
        ("/api/v1/export/requests?window=" + WINDOW + "&format=xml", 400),
        ("/api/v1/nothing-here", 404),
    ],
)
def test_bad_questions_get_clear_errors(served: tuple[Path, str], query: str, status: int) -> None:
    _, url = served
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url + query, timeout=30)
    assert caught.value.code == status
    assert json.loads(caught.value.read())["error"]
    caught.value.close()


@pytest.mark.parametrize(
    ("args", "query"),
    [
        (
            ["top", "--by", "endpoint_tag", "--from", "2026-03-04T00:00", "--to", "2026-03-05T00:00"],
            "/api/v1/top?by=endpoint_tag&from=2026-03-04T00:00&to=2026-03-05T00:00",
        ),
        (
            ["top", "--by", "tenant_id", "--window", WINDOW, "--where", "endpoint_tag=support.reply"],
            f"/api/v1/top?by=tenant_id&window={WINDOW}&where=endpoint_tag=support.reply",
        ),
        (["investigate", "--window", WINDOW], f"/api/v1/investigate?window={WINDOW}"),
        (
            ["investigate", "--window", WINDOW, "--baseline", "7d", "--where", "endpoint_tag=support.reply"],
            f"/api/v1/investigate?window={WINDOW}&baseline=7d&where=endpoint_tag=support.reply",
        ),
        (
            ["compare", "prompt-versions", "--window", WINDOW, "--endpoint", "support.reply"],
            f"/api/v1/compare/prompt-versions?window={WINDOW}&endpoint=support.reply",
        ),
        (["economics", "--window", WINDOW], f"/api/v1/economics?window={WINDOW}"),
        (
            ["doctor", "--window", WINDOW, "--data-mode", "all"],
            f"/api/v1/quality?window={WINDOW}&data_mode=all",
        ),
    ],
    ids=lambda value: " ".join(value[:2]) if isinstance(value, list) else None,
)
def test_cli_json_and_api_json_are_the_same_document(
    served: tuple[Path, str], args: list[str], query: str
) -> None:
    """The CLI's ``--format json`` on the store file and the API's JSON answer (fetched
    over HTTP, not through the CLI) are one document: same keys, order and values."""
    path, url = served
    local = CliRunner().invoke(main, [*args, "--format", "json", "--db", str(path)])
    assert local.exit_code == 0, local.output
    with urllib.request.urlopen(url + query, timeout=60) as response:
        assert response.headers["Content-Type"] == "application/json"
        api_text = response.read().decode()
    cli_document, api_document = json.loads(local.output), json.loads(api_text)
    assert cli_document == api_document
    assert list(cli_document) == list(api_document)  # same key order, not only the same keys
    assert json.dumps(cli_document) == api_text  # the API serialises the very same document
