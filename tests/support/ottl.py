"""A tiny evaluator for the OTTL subset spanmeter's Collector configurations use.

Why not the real thing: OTTL lives only inside the Go Collector, and no ``otelcol-contrib``
binary is packaged for pip, apt or npm, so a test cannot run it here. The configurations
use a deliberately small, generated subset, which this evaluator implements exactly (and
rejects anything else, so a new construct in the generator fails loudly here instead of
being evaluated wrongly):

* span-context paths ``attributes["key"]``;
* ``==`` / ``!=`` against ``nil`` or a double-quoted string (OTTL: a missing attribute is
  ``nil``, and ``nil == "x"`` is false);
* ``and`` binding tighter than ``or``, and parentheses;
* ``set(attributes["t"], attributes["s"] | "literal")`` with an optional ``where`` clause
  (OTTL's ``set`` does nothing when the value is nil).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["OTTLError", "apply_statement", "evaluate"]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<path>attributes\[(?P<key>"(?:[^"\\]|\\.)*")\])
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>==|!=)
      | (?P<punct>[(),])
      | (?P<word>nil|and|or|set|where)\b
    )""",
    re.VERBOSE,
)

_NIL = object()


class OTTLError(ValueError):
    """Text outside the supported subset."""


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise OTTLError(f"unsupported OTTL at {text[position : position + 40]!r}")
        position = match.end()
        if match["path"]:
            tokens.append(("path", json.loads(match["key"])))
        elif match["string"]:
            tokens.append(("value", json.loads(match["string"])))
        elif match["word"] == "nil":
            tokens.append(("value", _NIL))
        else:
            tokens.append(("sym", match["op"] or match["punct"] or match["word"]))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]], attributes: Mapping[str, Any]) -> None:
        self.tokens, self.index, self.attributes = tokens, 0, attributes

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, kind: str, value: Any = None) -> Any:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            raise OTTLError(f"expected {value or kind}, got {token!r}")
        self.index += 1
        return token[1]

    def done(self) -> None:
        if self.peek() is not None:
            raise OTTLError(f"unexpected {self.peek()!r}")

    def lookup(self, key: str) -> Any:
        value = self.attributes.get(key)
        return _NIL if value is None else value

    def operand(self) -> Any:
        token = self.peek()
        if token is not None and token[0] == "path":
            return self.lookup(self.take("path"))
        return self.take("value")

    def condition(self) -> bool:  # or-expression
        result = self.conjunction()
        while self.peek() == ("sym", "or"):
            self.index += 1
            right = self.conjunction()  # no short-circuit: every clause must parse
            result = result or right
        return result

    def conjunction(self) -> bool:
        result = self.primary()
        while self.peek() == ("sym", "and"):
            self.index += 1
            right = self.primary()
            result = result and right
        return result

    def primary(self) -> bool:
        if self.peek() == ("sym", "("):
            self.index += 1
            result = self.condition()
            self.take("sym", ")")
            return result
        left = self.operand()
        op = self.take("sym")
        if op not in ("==", "!="):
            raise OTTLError(f"unsupported operator {op!r}")
        right = self.operand()
        equal = left is right if _NIL in (left, right) else left == right
        return equal if op == "==" else not equal


def evaluate(condition: str, attributes: Mapping[str, Any]) -> bool:
    """Value of an OTTL condition for a span with these attributes."""
    parser = _Parser(_tokens(condition), attributes)
    result = parser.condition()
    parser.done()
    return result


def apply_statement(statement: str, attributes: dict[str, Any]) -> None:
    """Run one ``set(...) [where ...]`` statement on ``attributes``, in place."""
    parser = _Parser(_tokens(statement), attributes)
    parser.take("sym", "set")
    parser.take("sym", "(")
    target = parser.take("path")
    parser.take("sym", ",")
    value = parser.operand()
    parser.take("sym", ")")
    applies = True
    if parser.peek() == ("sym", "where"):
        parser.index += 1
        applies = parser.condition()
    parser.done()
    if applies and value is not _NIL:
        attributes[target] = value
