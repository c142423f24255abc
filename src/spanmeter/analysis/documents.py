"""The shapes shared by the analysis answers, and the one function that serialises them.

Each answer is a JSON document, declared as a :class:`~typing.TypedDict`: the document is
the point, since the CLI renders the same document whether it computed it from a store or
fetched it as JSON from a receiver's API (``--url``), so a renderer reads plain JSON
either way and a class instance would have to be rebuilt from it. Money is formatted once,
where a document is built (integer nano-USD plus :func:`spanmeter.money.usd` strings), and
key order is the order a document is built in, which :func:`dump` keeps.
"""

from __future__ import annotations

import json
from typing import TypedDict

__all__ = ["Link", "Scope", "Span", "Summary", "dump", "span"]

Span = TypedDict("Span", {"from": str, "to": str})
"""A window as ISO 8601 UTC instants, ``to`` exclusive."""


class Link(TypedDict):
    """A focused view: the CLI command and the API URL asking the same question."""

    cli: str
    api: str


class Scope(TypedDict):
    """The filters a view applies (the keyword arguments of the store's queries)."""

    where: dict[str, str]
    environment: str | None
    data_mode: str | None


class Summary(TypedDict):
    """The figures a person reads about a window (:func:`.common.measures_summary`)."""

    cost_nano_usd: int
    cost_usd: str
    logical_requests: int
    attempts: int
    retries: int
    input_tokens: int
    output_tokens: int
    errors: int
    unpriced_attempts: int
    requests_per_hour: float | None
    input_tokens_per_call: float | None
    output_tokens_per_call: float | None
    cost_per_request_usd: str | None
    attempts_per_request: float | None


def span(start: str, end: str) -> Span:
    """``{"from": start, "to": end}``."""
    return {"from": start, "to": end}


def dump(document: object, *, indent: int | None = None) -> str:
    """A document as JSON text: what the API answers (compact) and the CLI prints
    (``--format json``, indented); both are the same document."""
    return json.dumps(document, indent=indent)
