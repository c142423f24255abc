"""The API's one query parser.

Every route reads its query through :func:`parse_query`; the views then hand it to their
:class:`~spanmeter.analysis.parameters.ViewSpec` (the CLI's parser), the other routes read
their declared :class:`~spanmeter.analysis.parameters.Param` with :func:`value`, so a
parameter means the same, and fails with the same message, on every route.

A parameter (or a ``where`` filter) whose value is ``.*`` is dropped on the routes that ask
for it (the views): that is the "All" value of the shipped Grafana dashboards' variables,
which feed PromQL regex matchers and these URLs alike, and here it means "no filter".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from ..analysis.parameters import Param

__all__ = ["ALL", "Query", "one", "parse_query", "value"]

Query = Mapping[str, list[str]]
ALL: Final = ".*"
"""The "All" value of the Grafana dashboards' variables (see the module docstring)."""


def _is_all(name: str, text: str) -> bool:
    return text == ALL or (name == "where" and text.partition("=")[2] == ALL)


def parse_query(query_string: str, *, drop_all: bool = False) -> dict[str, list[str]]:
    """Name -> values in order, blank values kept; ``drop_all``: without ``.*`` values."""
    query: dict[str, list[str]] = {}
    for name, text in parse_qsl(query_string, keep_blank_values=True):
        if not (drop_all and _is_all(name, text)):
            query.setdefault(name, []).append(text)
    return query


def one(query: Query, name: str) -> str | None:
    """The last value of a query parameter (None: absent)."""
    values = query.get(name)
    return values[-1] if values else None


def value(query: Query, param: Param) -> Any:
    """``param``'s parsed value in ``query`` (its default when absent or blank).

    Raises:
        ValueError: Not a valid value (the message names the parameter).
    """
    return param.parse(one(query, param.name))
