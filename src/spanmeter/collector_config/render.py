"""Dump a Collector configuration to YAML with PyYAML, keeping the explanatory comments.

PyYAML cannot write comments, and the comments are the documentation of every number in
these files (why this queue size, why this timeout). So each component is dumped on its
own by PyYAML and indented under its section, with its comment block above it: every
value is still serialised by PyYAML (no text templating of values), and :func:`render`
parses its own output back and refuses to return text that does not load to exactly the
data it was given. Multi-line strings (the long OTTL conditions, one clause per line) are
written as literal blocks, which OTTL reads as plain whitespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

import yaml

__all__ = ["Component", "Document", "render"]

_SECTION_ORDER: Final = ("extensions", "receivers", "processors", "connectors", "exporters")


@dataclass(frozen=True)
class Component:
    """One component definition and the comment written above it."""

    id: str
    """Component id, ``type`` or ``type/name``."""
    config: dict[str, Any] | None
    """Its configuration (None for "all defaults")."""
    comment: str = ""
    """Why it is configured this way; one or more lines, written as ``#`` comments."""


@dataclass(frozen=True)
class Document:
    """A whole Collector configuration, in the order it is written."""

    header: str
    """Comment block at the top of the file."""
    sections: dict[str, list[Component]]
    """Section name (``receivers``...) -> its components, in order."""
    service: dict[str, Any]
    """The ``service`` section (extensions and pipelines)."""
    service_comment: str = ""
    """Comment block above the ``service`` section."""

    def as_dict(self) -> dict[str, Any]:
        """The configuration as the Collector will parse it."""
        data: dict[str, Any] = {}
        for section in _SECTION_ORDER:
            if self.sections.get(section):
                data[section] = {c.id: c.config for c in self.sections[section]}
        data["service"] = self.service
        return data


class _Dumper(yaml.SafeDumper):
    """Block style, sequences indented under their key, literal blocks for multi-line text."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # PyYAML writes "key:\n- item" by default; "key:\n  - item" is what people read.
        super().increase_indent(flow, False)


class _ScalarRepresenter(Protocol):
    """The dumper as :func:`_str` uses it (PyYAML's stubs leave ``value`` untyped)."""

    def represent_scalar(self, tag: str, value: str, style: str | None = None) -> yaml.ScalarNode: ...


def _str(dumper: _ScalarRepresenter, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(data: object) -> str:
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100, allow_unicode=True
    )


def _comment(text: str, indent: str) -> str:
    return "".join(f"{indent}# {line}".rstrip() + "\n" for line in text.strip("\n").splitlines())


def _indented(text: str, indent: str) -> str:
    return "".join(f"{indent}{line}\n" if line else "\n" for line in text.splitlines())


def render(document: Document) -> str:
    """The YAML text of ``document``, comments included.

    Raises:
        ValueError: the text would not load back to ``document.as_dict()`` (a bug here).
    """
    parts = [_comment(document.header, "")]
    for section in _SECTION_ORDER:
        components = document.sections.get(section)
        if not components:
            continue
        parts.append(f"\n{section}:\n")
        for index, component in enumerate(components):
            if index:
                parts.append("\n")
            if component.comment:
                parts.append(_comment(component.comment, "  "))
            parts.append(_indented(_dump({component.id: component.config}), "  "))
    parts.append("\n")
    if document.service_comment:
        parts.append(_comment(document.service_comment, ""))
    parts.append(_dump({"service": document.service}))
    text = "".join(parts)
    if yaml.safe_load(text) != document.as_dict():
        raise ValueError("rendered YAML does not load back to the configuration it was made from")
    return text
