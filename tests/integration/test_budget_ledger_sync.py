"""One budgets file, two processes: the receiver's API and the store process's ledger.

The receiver has the store process reload the file before it shows new budgets, and both
report the fingerprint (SHA-256 of the file) they use, so a client can wait on it instead
of sleeping through a polling interval."""

from __future__ import annotations

import hashlib
import os
from functools import partial
from pathlib import Path

import pytest

from spanmeter.budgets import BudgetLedgerHook, budgets_store_factory
from spanmeter.service.store_process import StoreProcessClient, StoreProcessSettings
from spanmeter.store import SQLiteStore, WriterClosed

FIRST = "budgets: [{name: daily, window: day, limit_usd: 10}]\n"
SECOND = FIRST + "# and a comment: another version of the file\n"


class _Config:
    def __init__(self, path: Path) -> None:
        self.budgets_file = str(path)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def touch_later(path: Path, text: str) -> None:
    """Rewrite ``path`` with a later mtime (a change a poll must see, whatever the clock)."""
    stat = path.stat()
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_the_store_process_reloads_on_request_and_says_which_file_it_counts_with(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(FIRST)
    factory = budgets_store_factory(partial(SQLiteStore, tmp_path / "cost.db"), _Config(budgets))
    client = StoreProcessClient(StoreProcessSettings(store_factory=factory))
    with pytest.raises(WriterClosed):
        client.sync_ledger()  # not started
    client.start()
    try:
        assert client.sync_ledger() == digest(budgets)
        touch_later(budgets, SECOND)
        assert client.sync_ledger() == digest(budgets)  # at once, not at the next 2 s poll
    finally:
        assert client.close() == 0
    with pytest.raises(WriterClosed):
        client.sync_ledger()


def test_a_reload_asks_the_peers_first_and_reports_their_fingerprint(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(FIRST)
    hook = BudgetLedgerHook(path=budgets)
    first = digest(budgets)
    assert hook.snapshot.fingerprint == hook.ledger_fingerprint == first  # counts itself
    seen: list[str | None] = []

    def peer() -> str:
        seen.append(hook.snapshot.fingerprint)  # what this hook shows while the peer reloads
        return "peer-" + digest(budgets)

    hook.peers.append(peer)
    assert hook.ledger_fingerprint is None  # the peer has not said yet
    touch_later(budgets, SECOND)
    second = digest(budgets)
    assert hook.poll_config()
    assert seen == [first]  # asked before the new budgets were shown here
    assert hook.snapshot.fingerprint == second
    assert hook.ledger_fingerprint == "peer-" + second

    def broken() -> str:
        raise TimeoutError("no answer")

    hook.peers[:] = [broken]
    touch_later(budgets, FIRST)
    assert hook.poll_config()  # a peer that fails does not stop the reload here
    assert hook.snapshot.fingerprint == first
    assert hook.ledger_fingerprint == "peer-" + second  # the last answer: a client keeps waiting
