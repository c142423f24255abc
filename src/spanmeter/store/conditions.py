"""The ``WHERE`` clause of a query whose filters are each optional (any placeholder style)."""

from __future__ import annotations

__all__ = ["where_clause"]


def where_clause(*conditions: tuple[str, object]) -> tuple[str, list[object]]:
    """`` WHERE a AND b ...`` and its parameters, from ``(sql, value)`` pairs with one ``?``
    each, leaving out the pairs whose value is None (no filter); ``""`` when none is left.

    Example::

        where, params = where_clause(("state = ?", state), ("source = ?", source))
        conn.execute(f"SELECT id FROM alert_events{where}", params)
    """
    kept = [(sql, value) for sql, value in conditions if value is not None]
    if not kept:
        return "", []
    return " WHERE " + " AND ".join(sql for sql, _ in kept), [value for _, value in kept]
