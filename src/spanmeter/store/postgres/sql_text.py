"""Statements built from the store's own names, as psycopg's typed API accepts them.

psycopg types a query as ``LiteralString`` so that data cannot be spliced into SQL by
mistake. The statements here are put together from table and column names that are
constants of this package and :mod:`spanmeter.store.rollups` (never from input: values are
always bound parameters), which the type checker cannot see through an f-string; this one
function says so in one place instead of a cast at every call."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from typing_extensions import LiteralString

__all__ = ["sql"]


def sql(text: str) -> LiteralString:
    """``text``, a statement built from the store's own names only, typed as a literal."""
    return cast("LiteralString", text)
