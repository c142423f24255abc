"""A SQLite store opened read-only (what the API's query processes open): the same answers
as the store that writes the file, and no write can happen through it, neither through the
store's methods nor through SQL on its connections; it never creates or migrates a file."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from spanmeter.store import SQLiteStore, open_store_for_reading
from spanmeter.store.sqlite.store import ReadOnlyStoreError
from support.store_rows import random_rows

START_NS, END_NS = 0, 2**62


@pytest.fixture
def written(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "cost.db")
    store.write_batches([random_rows(random.Random(3), 300)])
    try:
        yield store
    finally:
        store.close()


def test_a_read_only_store_answers_what_the_writer_stored(written: SQLiteStore) -> None:
    reader = open_store_for_reading(written.path)
    try:
        assert isinstance(reader, SQLiteStore) and reader.read_only and not written.read_only
        expected = written.top("user_id", START_NS, END_NS, limit=50)
        assert expected  # something to compare
        assert reader.top("user_id", START_NS, END_NS, limit=50) == expected
        assert reader.stats().requests == written.stats().requests == 300
        # a commit made after the open is seen by the next read
        written.write_batches([random_rows(random.Random(4), 20)])
        assert reader.stats().requests == 320
    finally:
        reader.close()


def test_no_write_goes_through_a_read_only_store(written: SQLiteStore) -> None:
    reader = SQLiteStore(written.path, read_only=True)
    try:
        with pytest.raises(ReadOnlyStoreError, match="read-only"):
            reader.write_batches([random_rows(random.Random(5), 5)])
        with pytest.raises(ReadOnlyStoreError):
            reader.compact_rollups()
        # SQL on its own connection is refused by SQLite itself (mode=ro), query_only or not
        conn = reader._reader()  # pyright: ignore[reportPrivateUsage]
        conn.execute("PRAGMA query_only = 0")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM requests")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("CREATE TABLE intruder (x)")
    finally:
        reader.close()
    assert written.stats().requests == 300


def test_a_read_only_open_never_creates_or_migrates_a_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(RuntimeError, match="does not exist"):
        SQLiteStore(missing, read_only=True)
    assert not missing.exists()

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x)")
    with pytest.raises(RuntimeError, match="not a spanmeter store"):
        SQLiteStore(other, read_only=True)

    behind = tmp_path / "behind.db"
    SQLiteStore(behind).close()
    with sqlite3.connect(behind) as conn:  # as if written by an older version
        (last,) = conn.execute("SELECT max(id) FROM _sqlite_migrations").fetchone()
        (name,) = conn.execute("SELECT name FROM _sqlite_migrations WHERE id = ?", (last,)).fetchone()
        conn.execute("DELETE FROM _sqlite_migrations WHERE id = ?", (last,))
    with pytest.raises(RuntimeError, match=f"needs migrating \\({name}\\)"):
        SQLiteStore(behind, read_only=True)
    with sqlite3.connect(behind) as conn:  # and it was left as it was
        assert conn.execute("SELECT count(*) FROM _sqlite_migrations WHERE name = ?", (name,)).fetchone() == (
            0,
        )
