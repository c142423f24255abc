"""How the CLI's ``list`` commands print what they list: JSON for a program, a table for a person.

Every such command answers the same way (``--format json``: one object holding the list
under one name, the very document the API serves; otherwise a header and a line per
entry, or one line saying there is nothing), so it is written once here and the commands
differ only in their columns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TypeVar

import click

__all__ = ["echo_listing"]

_D = TypeVar("_D")


def echo_listing(
    fmt: str,
    name: str,
    documents: Sequence[_D],
    *,
    empty: str,
    header: str,
    line: Callable[[_D], str],
) -> None:
    """Print ``documents`` as ``{name: [...]}`` JSON when ``fmt`` is ``json``; else ``empty``
    when there are none, or ``header`` and one ``line(document)`` each."""
    if fmt == "json":
        click.echo(json.dumps({name: documents}, indent=2))
        return
    if not documents:
        click.echo(empty)
        return
    click.echo(header)
    for document in documents:
        click.echo(line(document))
