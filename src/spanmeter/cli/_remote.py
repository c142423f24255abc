"""Small helpers shared by CLI commands that read a running receiver or a store file."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import click

from ..environment_variables import SPANMETER_DB_PATH
from ..store import SQLiteStore

__all__ = ["api_request", "open_store"]


def api_request(url: str, *, body: dict[str, Any] | None = None) -> Any:
    """GET (or POST ``body`` as JSON) and decode the JSON answer; errors become ClickException."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="GET" if body is None else "POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        raise click.ClickException(f"{url}: HTTP {error.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise click.ClickException(f"{url}: {error}") from None


def open_store(db: str | None) -> SQLiteStore:
    """The store at ``db`` (or ``SPANMETER_DB_PATH``, or ``spanmeter.db``); it must exist."""
    path = db or os.environ.get(SPANMETER_DB_PATH) or "spanmeter.db"
    if not os.path.exists(path):
        raise click.ClickException(f"no store at {path}: run `spanmeter serve` first, or pass --db or --url")
    return SQLiteStore(path)
