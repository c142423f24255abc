"""PostgreSQL for the benchmarks: a server started for the run, or one given by URL.

The server is the tests' throwaway one (``tests/support/postgres_server.py``: ``initdb`` and
``postgres`` into a temporary folder, on a free port, run as the ``postgres`` user when
started as root, since both refuse root), started here with fsync and synchronous commits
on, as a production server runs. A benchmark that is given ``--postgres-url`` uses that
server instead and creates a database of its own there for each measurement (the URL's
role needs ``CREATEDB``), so two runs never share rows.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

if TYPE_CHECKING:
    from tests.support.postgres_server import PostgresServer
else:
    from support.postgres_server import PostgresServer

__all__ = ["Databases", "PostgresServer", "databases"]

_names = itertools.count(1)


class Databases:
    """Makes fresh databases on one server; ``pids`` are its processes on this machine."""

    def __init__(self, server: PostgresServer | None, url: str | None) -> None:
        self._server = server
        self._url = url

    def new(self, prefix: str = "bench") -> str:
        """An empty database's URL."""
        if self._server is not None:
            return self._server.new_database(prefix)
        import psycopg
        from psycopg import sql

        assert self._url is not None
        name = f"{prefix}_{os.getpid()}_{next(_names)}"
        with psycopg.connect(self._url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return urlunsplit(urlsplit(self._url)._replace(path=f"/{name}"))

    def root_pid(self) -> int | None:
        """The started server's top process (its children are the postmaster's), or None
        for a server given by URL (its CPU is then part of the "other load")."""
        process = getattr(self._server, "_process", None) if self._server is not None else None
        return None if process is None else int(process.pid)


@contextlib.contextmanager
def databases(url: str | None = None) -> Generator[Databases, None, None]:
    """A durable server started for the run (removed after), or the one at ``url``."""
    if url is not None:
        yield Databases(None, url)
        return
    with PostgresServer(durable=True) as server:
        yield Databases(server, None)
