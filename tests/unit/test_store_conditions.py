"""``where_clause``: the optional filters of a query, against a real SQLite table."""

from __future__ import annotations

import sqlite3

from spanmeter.store.conditions import where_clause


def test_none_means_no_filter_and_the_rest_are_anded_in_order() -> None:
    assert where_clause(("a = ?", None), ("b = ?", None)) == ("", [])
    assert where_clause(("a = ?", 1), ("b = ?", None), ("c < ?", "x")) == (" WHERE a = ? AND c < ?", [1, "x"])
    # an empty string or 0 is a value to filter on, not "no filter"
    assert where_clause(("a = ?", ""), ("b = ?", 0)) == (" WHERE a = ? AND b = ?", ["", 0])


def test_the_clause_runs() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (state TEXT, n INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [("open", 1), ("open", 5), ("resolved", 7)])
    for state, at_least, expected in (("open", None, 2), (None, 5, 2), ("open", 5, 1), (None, None, 3)):
        where, params = where_clause(("state = ?", state), ("n >= ?", at_least))
        assert conn.execute(f"SELECT count(*) FROM t{where}", params).fetchone()[0] == expected
