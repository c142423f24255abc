"""A throwaway PostgreSQL server for the tests: ``initdb`` into a temporary folder and a
``postgres`` listening on 127.0.0.1 at a free port, stopped at the end of the session.

Run as root (CI), ``initdb`` and ``postgres`` refuse to start, so both run as the ``postgres``
system user (the Debian package creates it) through ``runuser``; run as anyone else, as
that user. Durability settings are relaxed (``fsync=off``): the tests kill replicas, never
the database's machine, and a killed client is all a commit must survive here.

Each test gets a database of its own (:meth:`PostgresServer.new_database`), so tests never
see each other's rows and need no cleanup.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["PostgresServer", "find_bindir"]

_START_TIMEOUT_S = 30.0


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``postgres`` (Debian keeps them off PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries not found (initdb): install the postgresql package "
            "(`make system-deps` does, as root)"
        )
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(argv: Sequence[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return list(argv)


class PostgresServer:
    """One running server; :meth:`stop` (or the context manager) shuts it down and removes
    its files."""

    def __init__(self, *, durable: bool = False) -> None:
        """``durable``: fsync and synchronous commits on, as a production server runs (for
        benchmarks); off by default, since the tests never crash the database's machine."""
        self._durable = durable
        self._bindir = find_bindir()
        self._root = Path(tempfile.mkdtemp(prefix="spanmeter-pg-"))
        self.data_dir = self._root / "data"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        if os.geteuid() == 0:
            shutil.chown(self._root, "postgres", "postgres")
        self._run(
            [
                str(self._bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
            ]
        )

    def _run(self, argv: Sequence[str]) -> None:
        result = subprocess.run(_as_server_user(argv), capture_output=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {result.stderr.decode(errors='replace')[-2000:]}")

    @property
    def log_path(self) -> Path:
        return self._root / "postgres.log"

    def start(self) -> PostgresServer:
        """Start (on a free port the first time, the same one after) and wait until it accepts connections."""
        self.port = self.port or _free_port()  # a restart keeps its port: clients hold its URL
        argv = [
            str(self._bindir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-k", str(self._root),
            "-c", "listen_addresses=127.0.0.1",
            *(() if self._durable else ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")),
            "-c", "max_connections=200",
            "-c", "shared_buffers=64MB",
        ]  # fmt: skip
        log = open(self.log_path, "ab")  # noqa: SIM115 - the server keeps writing to it
        self._process = subprocess.Popen(_as_server_user(argv), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def dsn(self, database: str) -> str:
        """A ``postgresql://`` URL for ``database`` on this server (trust auth on loopback)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """Create an empty database; returns its URL."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.dsn(name)

    def stop(self, *, fast: bool = True) -> None:
        """Stop the server (``fast``: roll back open transactions and disconnect clients)."""
        process, self._process = self._process, None
        if process is None:
            return
        if os.geteuid() == 0:
            subprocess.run(["pkill", "-INT" if fast else "-TERM", "-P", str(process.pid)], check=False)
        process.send_signal(signal.SIGINT if fast else signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (it recovers from its WAL on the next start)."""
        process, self._process = self._process, None
        if process is None:
            return
        subprocess.run(["pkill", "-KILL", "-f", f"-D {self.data_dir}"], check=False)
        process.kill()
        process.wait()

    def remove(self) -> None:
        """Stop and delete every file of the server."""
        self.stop()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.remove()
