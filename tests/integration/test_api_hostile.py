"""Absurd parameters on every ``/api/v1`` route of a running receiver: a 400 with a JSON error
body (never a 500), answered quickly, and the server still up."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from spanmeter.analysis.views import VIEWS as ROUTES
from spanmeter.service import ReceiverService, ServeConfig

BUDGETS = """
budgets:
  - name: global
    window: {rolling: 24h}
    limit_usd: 1
"""

BUDGET_ROUTES = ("/api/v1/budgets", "/api/v1/budgets/status", "/api/v1/alerts")
ROUTE_PATHS = (*sorted(ROUTES), *BUDGET_ROUTES)

ABSURD: tuple[tuple[str, str], ...] = (
    ("since", "99999999999999999999d"),
    ("since", "99999999999999999999999999999999999999999999.5w"),
    ("since", "0.0000000001s"),
    ("since", "-5d"),
    ("limit", "1e23"),
    ("limit", "99999999999999999999"),
    ("limit", "-1"),
    ("max_cost_share", "1/0"),
    ("max_cost_share", "1e9999999"),
    ("max_cost_share", "nan"),
    ("min_samples", "99999999999999999999"),
    ("from", "0&to=99999999999999999999"),
    ("from", "-99999999999999999999"),
    ("from", "0001-01-01&to=9999-12-31"),
    ("to", "99999999999999999999.99999"),
    ("window", "0..99999999999999999999"),
    ("window", "0001-01-01..9999-12-31"),
    ("baseline", "99999999999999999999d"),
    ("baseline", "0..99999999999999999999"),
    ("baseline", "20000d"),
    ("week", "99999-W01"),
    ("week", "0001-W01"),
    ("week", "9999-W53"),
    ("granularity", "minute&from=1970-01-01&to=9999-12-31"),
)
"""(parameter, value): the value is sent as it is (``&`` adds companions)."""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("api-hostile")
    budgets = path / "budgets.yaml"
    budgets.write_text(BUDGETS)
    config = ServeConfig(db=str(path / "cost.db"), grpc_port=0, http_port=0, budgets_file=str(budgets))
    with ReceiverService(config) as service:
        yield f"http://127.0.0.1:{service.http_port}"


def get(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def assert_no_server_error(url: str, method: str = "GET") -> int:
    started = time.monotonic()
    status, content_type, body = get(url, method)
    elapsed = time.monotonic() - started
    assert status < 500, (url, status, body[:300])
    if status >= 400:
        assert content_type.startswith("application/json"), (url, content_type)
        assert json.loads(body)["error"], url
    assert elapsed < 5, (url, elapsed)  # nothing holds a worker for long
    return status


@pytest.mark.parametrize("route", ROUTE_PATHS)
def test_absurd_parameters_get_a_json_400_on_every_route(base: str, route: str) -> None:
    for name, value in ABSURD:
        first, _, rest = value.partition("&")
        query = f"{name}={quote(first)}" + (f"&{rest}" if rest else "")
        assert_no_server_error(f"{base}{route}?{query}")
    assert get(f"{base}/healthz")[0] == 200


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_absurd_alert_ids_are_not_a_500(base: str, method: str) -> None:
    for alert_id in ("99999999999999999999", "9223372036854775808", "0"):
        suffix = "/ack" if method == "POST" else ""
        status = assert_no_server_error(f"{base}/api/v1/alerts/{alert_id}{suffix}", method)
        assert status == 404 or (method == "POST" and status == 405), (alert_id, status)


def test_export_windows_are_bounded(base: str) -> None:
    for route in ("/api/v1/export/requests", "/api/v1/export/rollups"):
        status, _, body = get(f"{base}{route}?from=2020-01-01&to=2026-01-01")
        assert status == 400
        assert "at most 400 days" in json.loads(body)["error"]
        assert get(f"{base}{route}?from=2025-01-01&to=2026-01-01")[0] == 200


def test_the_cli_export_is_not_bounded(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from spanmeter.cli import main
    from spanmeter.store import SQLiteStore

    db = tmp_path / "cli.db"
    SQLiteStore(db).close()
    result = CliRunner().invoke(
        main,
        ["export", "requests", "--db", str(db), "--window", "2000-01-01..2026-01-01", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
