"""The API's heavy queries in query processes (spanmeter.service.query_process): the same
answers as in the receiver, on SQLite and PostgreSQL; a bad parameter still a 400; a query
over the time limit killed and its place freed at once; a lower CPU priority (``nice`` and
the idle scheduling class); a store opened read-only, so that a query process cannot write;
no query process left behind by a stop or by a receiver killed mid-query."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from spanmeter.api import make_api
from spanmeter.service import ReceiverService, ServeConfig
from spanmeter.service.query_process import QueryFailed, QueryProcesses, QueryProcessSettings, QueryTimeout
from spanmeter.service.query_worker import DEFAULT_IDLE_CLASS, DEFAULT_NICENESS
from spanmeter.store import SpanStore, StoreBusy, open_store, open_store_for_reading
from support.query_jobs import SlowTopStore, delete_requests, fail_with, own_pid, scheduling, sleep_then
from support.store_rows import random_rows
from support.stores import BACKENDS, backend_target

WINDOW = "2026-01-01T00:00..2026-01-04T00:00"
CASES = (
    ("/api/v1/top", f"by=user_id&window={WINDOW}&limit=100"),
    ("/api/v1/top", f"by=model&window={WINDOW}&format=csv"),
    ("/api/v1/top", f"by=tenant_id&window={WINDOW}&where=endpoint_tag=chat&data_mode=all"),
    ("/api/v1/investigate", f"window={WINDOW}"),
    ("/api/v1/investigate", f"window={WINDOW}&format=triage"),
    ("/api/v1/compare/prompt-versions", f"window={WINDOW}&endpoint=chat"),
    ("/api/v1/economics", f"window={WINDOW}"),
    ("/api/v1/quality", f"window={WINDOW}&data_mode=all"),
    ("/api/v1/reports/weekly", "week=2026-W01"),
    ("/api/v1/reprice/preview", f"window={WINDOW}"),
    ("/api/v1/reprice/audits", ""),
    ("/api/v1/export/requests", f"window={WINDOW}&format=ndjson"),
    ("/api/v1/export/rollups", f"window={WINDOW}&format=csv"),
    ("/api/v1/top", f"by=colour&window={WINDOW}"),  # a bad parameter: the same 400
)
_PROMPTLY_S = 15.0


def _call(app: Callable[..., Any], path: str, query: str) -> tuple[str, bytes]:
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen.append(status)

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query}
    body = b"".join(app(environ, start_response))
    return seen[0], body


def _fill(store: SpanStore) -> None:
    store.write_batches([random_rows(random.Random(7), 600)])


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by whoever adopted it, is not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def _wait_gone(pids: list[int], within_s: float) -> list[int]:
    deadline = time.monotonic() + within_s
    while (alive := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def _with_tests_dir() -> str:
    """``PYTHONPATH`` with the tests' folder first (a child process imports ``support``)."""
    return os.pathsep.join(filter(None, [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")]))


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[tuple[str, SpanStore]]:
    path = str(tmp_path / "cost.db")
    store = open_store(path)
    _fill(store)
    try:
        yield path, store
    finally:
        store.close()


@pytest.fixture
def pool(filled: tuple[str, SpanStore]) -> Iterator[QueryProcesses]:
    queries = QueryProcesses(
        QueryProcessSettings(partial(open_store, filled[0])), size=2, timeout_s=60
    ).start()
    try:
        yield queries
    finally:
        queries.close()


def test_every_view_and_export_answers_the_same_bytes_from_a_query_process(
    filled: tuple[str, SpanStore], pool: QueryProcesses
) -> None:
    _, store = filled
    here, there = make_api(store), make_api(store, queries=pool)
    for path, query in CASES:
        expected = _call(here, path, query)
        assert _call(there, path, query) == expected, (path, query)
    statuses = [_call(here, path, query)[0] for path, query in CASES]
    assert statuses[:-1] == ["200 OK"] * (len(CASES) - 1)  # real answers, not errors compared
    assert statuses[-1].startswith("400")
    assert b'"user_id"' in _call(there, *CASES[0])[1]


def test_a_job_runs_in_another_process_at_a_lower_priority(pool: QueryProcesses) -> None:
    pid = pool(own_pid)
    assert pid in pool.pids and pid != os.getpid()
    expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + DEFAULT_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, pid) == expected
    assert DEFAULT_IDLE_CLASS
    assert os.sched_getscheduler(pid) == os.SCHED_IDLE
    assert pool(scheduling) == (os.SCHED_IDLE, expected)  # the thread running the job too


def test_the_idle_class_can_be_left_off(filled: tuple[str, SpanStore]) -> None:
    settings = QueryProcessSettings(partial(open_store, filled[0]), niceness=0, idle_class=False)
    queries = QueryProcesses(settings, size=1, timeout_s=60).start()
    try:
        assert queries(scheduling) == (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
    finally:
        queries.close()


def test_a_query_process_on_a_store_opened_for_reading_cannot_write(filled: tuple[str, SpanStore]) -> None:
    path, store = filled
    settings = QueryProcessSettings(partial(open_store_for_reading, path))
    queries = QueryProcesses(settings, size=1, timeout_s=60).start()
    try:
        with pytest.raises(QueryFailed, match="OperationalError: attempt to write a readonly database"):
            queries(delete_requests)
        assert store.stats().requests == 600
        here, there = make_api(store), make_api(store, queries=queries)
        assert _call(there, *CASES[0]) == _call(here, *CASES[0])  # and it answers as before
    finally:
        queries.close()


def test_errors_in_a_job_come_back_and_keep_its_process(pool: QueryProcesses) -> None:
    before = pool.pids
    with pytest.raises(ValueError, match=r"^window too wide$"):
        pool(fail_with, "value", "window too wide")
    with pytest.raises(QueryFailed, match="RuntimeError: broken"):
        pool(fail_with, "runtime", "broken")
    assert pool(sleep_then, 0, "still here") == "still here"
    assert pool.pids == before


def test_a_query_over_the_time_limit_is_killed_and_frees_its_place(filled: tuple[str, SpanStore]) -> None:
    queries = QueryProcesses(
        QueryProcessSettings(partial(open_store, filled[0])), size=1, timeout_s=1.0
    ).start()
    try:
        (first,) = queries.pids
        started = time.monotonic()
        with pytest.raises(QueryTimeout, match="time limit of 1 s"):
            queries(sleep_then, 120, "too late")
        assert time.monotonic() - started < _PROMPTLY_S
        assert not _alive(first)  # killed, not left running under the cap
        assert queries.pids == []
        started = time.monotonic()
        assert queries(sleep_then, 0, "next") == "next"  # the one place is free: a new process
        assert time.monotonic() - started < _PROMPTLY_S
        assert len(queries.pids) == 1 and queries.pids != [first]
    finally:
        queries.close()


def test_a_store_that_cannot_be_opened_fails_the_start(tmp_path: Path) -> None:
    queries = QueryProcesses(
        QueryProcessSettings(partial(open_store, str(tmp_path / "missing-dir" / "x.db"))), size=1, timeout_s=5
    )
    with pytest.raises(RuntimeError, match="query process failed to start"):
        queries.start()
    assert queries.pids == []


def test_lazy_processes_start_on_the_first_query_and_exit_when_idle(filled: tuple[str, SpanStore]) -> None:
    queries = QueryProcesses(
        QueryProcessSettings(partial(open_store, filled[0])), size=2, timeout_s=60, idle_exit_s=1.0
    ).start(lazily=True)
    try:
        assert queries.pids == []  # nothing resident before the API is used
        first = queries(own_pid)
        assert queries.pids == [first] and queries(own_pid) == first  # warm: the same one
        deadline = time.monotonic() + 10
        while queries.pids and time.monotonic() < deadline:
            time.sleep(0.1)
        assert queries.pids == [] and _wait_gone([first], 5.0) == []  # idle 1 s: it exited
        again = queries(own_pid)  # the place is free: a new process answers
        assert again != first and queries.pids == [again]
        here, there = make_api(filled[1]), make_api(filled[1], queries=queries)
        assert _call(there, *CASES[0]) == _call(here, *CASES[0])
    finally:
        queries.close()
    assert _wait_gone([again], 5.0) == []


def test_a_lazy_query_on_a_store_that_cannot_be_opened_fails_that_query(tmp_path: Path) -> None:
    queries = QueryProcesses(
        QueryProcessSettings(partial(open_store, str(tmp_path / "missing-dir" / "x.db"))), size=1, timeout_s=5
    ).start(lazily=True)
    try:
        with pytest.raises(QueryFailed, match="query process failed to start"):
            queries(own_pid)
        assert queries.pids == []
    finally:
        queries.close()


def test_a_lazy_query_while_the_database_is_down_is_retryable(unused_tcp_port_url: str) -> None:
    queries = QueryProcesses(
        QueryProcessSettings(partial(open_store_for_reading, unused_tcp_port_url)), size=1, timeout_s=30
    ).start(lazily=True)
    try:
        with pytest.raises(StoreBusy, match="cannot open the store now: OperationalError"):
            queries(own_pid)  # the API answers 503 + Retry-After, as once the store is open
        assert queries.pids == []
    finally:
        queries.close()


@pytest.fixture
def unused_tcp_port_url() -> str:
    """A PostgreSQL URL where nothing listens (a database down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/spanmeter"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("kind", BACKENDS)
def test_the_receiver_answers_from_its_query_processes_and_stops_them(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    target = backend_target(kind, tmp_path, request)
    store = open_store(target)
    try:
        _fill(store)
        config = ServeConfig(db=target, grpc_port=None, http_port=0, api_workers=2)
        with ReceiverService(config) as service:
            assert service.query_process_pids == []  # started by the first query
            base = f"http://127.0.0.1:{service.http_port}"
            pids: list[int] = []
            for path, query in (CASES[0], CASES[3], CASES[11], CASES[-1]):
                status, body = _get(f"{base}{path}?{query}")
                expected = _call(make_api(store), path, query)
                assert (status, body) == (int(expected[0][:3]), expected[1]), (path, query)
                pids = pids or service.query_process_pids
            assert len(pids) == 1 and service.store_process_pid not in pids
            assert service.query_process_pids == pids  # one query at a time: the same process
        assert _wait_gone(pids, 5.0) == []
    finally:
        store.close()


def _open_for_writing(pid: int, names: set[str]) -> list[str]:
    """The files among ``names`` that process ``pid`` holds open for writing."""
    found: list[str] = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
            flags = int(Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text().split("flags:")[1].split()[0], 8)
        except OSError:
            continue  # closed meanwhile
        if Path(target).name in names and flags & (os.O_WRONLY | os.O_RDWR):
            found.append(target)
    return found


def test_the_receivers_query_processes_open_the_sqlite_store_read_only(tmp_path: Path) -> None:
    path = tmp_path / "cost.db"
    store = open_store(path)
    try:
        _fill(store)
        config = ServeConfig(db=str(path), grpc_port=None, http_port=0, api_workers=1)
        with ReceiverService(config) as service:
            base = f"http://127.0.0.1:{service.http_port}"
            assert _get(f"{base}{CASES[0][0]}?{CASES[0][1]}")[0] == 200  # its reader is open now
            (pid,) = service.query_process_pids
            opened = {Path(os.readlink(fd)).name for fd in Path(f"/proc/{pid}/fd").iterdir()}
            assert {"cost.db", "cost.db-wal"} <= opened  # it did open the store...
            # ...read-only (SQLite opens the -wal file read-write whatever the mode; the
            # connection then only reads it: the test above shows a write refused)
            assert _open_for_writing(pid, {"cost.db"}) == []
            assert _open_for_writing(service.store_process_pid or 0, {"cost.db"})  # the writer: not
    finally:
        store.close()


def test_a_query_killed_by_the_time_limit_frees_its_slot_in_the_receiver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", _with_tests_dir())  # the store process imports the store from there
    path, flag = tmp_path / "cost.db", tmp_path / "slow"
    config = ServeConfig(db=str(path), grpc_port=None, http_port=0, api_workers=1, api_timeout_s=5)
    url = f"/api/v1/top?by=model&window={WINDOW}"
    with ReceiverService(config, store_factory=partial(SlowTopStore, path, flag)) as service:
        base = f"http://127.0.0.1:{service.http_port}"
        assert _get(base + url)[0] == 200  # starts the one query process
        (first,) = service.query_process_pids
        flag.touch()  # the next read takes a minute
        started = time.monotonic()
        status, body = _get(base + url)
        assert status == 503 and b"time limit" in body
        assert time.monotonic() - started < _PROMPTLY_S
        flag.unlink()
        # The one API slot: held for a minute by the abandoned query if it ran on (429 all
        # along), free since its process was killed; the next query starts a new process
        # (on a loaded machine that can take longer than the 5 s limit: a 503 meanwhile).
        deadline = time.monotonic() + 3 * _PROMPTLY_S
        while (status := _get(base + url)[0]) in (429, 503) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 200
        assert not _alive(first)
        assert len(service.query_process_pids) == 1 and service.query_process_pids != [first]


_DRIVER = """
import sys, threading, time
from functools import partial
from spanmeter.service.query_process import QueryProcesses, QueryProcessSettings
from spanmeter.store import open_store
from support.query_jobs import sleep_then
queries = QueryProcesses(QueryProcessSettings(partial(open_store, sys.argv[1])), size=2, timeout_s=300).start()
threading.Thread(target=queries, args=(sleep_then, 300, "never"), daemon=True).start()
time.sleep(0.5)
print(" ".join(map(str, queries.pids)), flush=True)
time.sleep(300)
"""


def test_no_query_process_outlives_its_receiver_killed_mid_query(filled: tuple[str, SpanStore]) -> None:
    env = {**os.environ, "PYTHONPATH": _with_tests_dir()}
    driver = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, filled[0]], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert driver.stdout is not None
        pids = [int(pid) for pid in driver.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)  # one idle, one mid-query
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        assert _wait_gone(pids, 5.0) == []
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        assert driver.stdout is not None
        driver.stdout.close()
