"""``spanmeter serve`` as a real process for the tests: started on free ports, waited for until
``/readyz`` answers, stopped (SIGTERM, then SIGKILL) at the end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["free_port", "is_ready", "serve_process"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_ready(http_port: int) -> bool:
    """Does ``/readyz`` answer 200? (False on 503, refused or timed out.)"""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.HTTPError, OSError):
        return False


@contextmanager
def serve_process(
    store: str, *arguments: str, log: Path | None = None, ready_within_s: float = 60.0
) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    """``spanmeter serve --store STORE *arguments`` on free ports: yields (process, gRPC port,
    HTTP port) once ready; stderr goes to ``log`` when given."""
    grpc_port, http_port = free_port(), free_port()
    argv: Sequence[str] = [
        sys.executable, "-m", "spanmeter", "serve", "--store", store,
        "--grpc-port", str(grpc_port), "--http-port", str(http_port), *arguments,
    ]  # fmt: skip
    log_file = open(log, "wb") if log is not None else None  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=log_file if log_file is not None else subprocess.PIPE,
        env={**os.environ, "SPANMETER_USER_ID_HASH_KEY": "k"},
    )
    try:
        deadline = time.monotonic() + ready_within_s
        while not is_ready(http_port):
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else "exited"
            assert time.monotonic() < deadline, "spanmeter serve did not become ready"
            time.sleep(0.05)
        yield process, grpc_port, http_port
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
        if log_file is not None:
            log_file.close()
