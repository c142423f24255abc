"""Adding and removing budgets in the budgets file, the way a careful person would.

``spanmeter budgets add|remove`` edit a file that people also edit by hand and review like
code, so an edit must keep everything else as it was (comments, order, quoting) and must
never leave a broken or half-written file behind:

* the file is edited with ruamel.yaml's round-trip mode, which keeps comments and layout
  (PyYAML, used to *read* budgets, drops them);
* the whole resulting document is validated with :func:`~spanmeter.budgets.config.load.parse_config`,
  the loader the receiver uses, before anything is written;
* it is written to a temporary file next to the target and renamed over it, so readers (a
  receiver polling the file) see the old version or the new one, never a partial one.

Example::

    add_budget("budgets.yaml", {"name": "tenant-daily", "scope": {"tenant_id": "*"},
                                "window": "day", "limit_usd": "25"})
    remove_budget("budgets.yaml", "tenant-daily")
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping, MutableMapping, MutableSequence, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, Format

from ..config.load import parse_config
from ..definitions.model import BudgetsConfig
from ..definitions.values import BudgetConfigError

__all__ = ["add_budget", "remove_budget"]


# ruamel imports its own typing names under ``if False:``, so checkers read its signatures as
# unknown: the few parts used here are given their types once, by these protocols.


class _RoundTrip(Protocol):
    def load(self, stream: str) -> object: ...
    def dump(self, data: object, stream: io.StringIO) -> None: ...


class _Styled(Protocol):
    @property
    def fa(self) -> Format: ...


_StyledT = TypeVar("_StyledT", bound=_Styled)


def _round_trip() -> _RoundTrip:
    editor = YAML(typ="rt")
    editor.preserve_quotes = True
    editor.indent(mapping=2, sequence=4, offset=2)
    return editor


def _read(path: Path, *, missing_ok: bool) -> CommentedMap:
    try:
        text = path.read_text()
    except FileNotFoundError:
        if missing_ok:
            return CommentedMap()
        raise BudgetConfigError(str(path), [f"{path}: no such file"]) from None
    try:
        document = _round_trip().load(text)
    except Exception as error:  # ruamel's errors have no common public base worth naming
        raise BudgetConfigError(str(path), [f"{path}: not YAML: {error}"]) from None
    if document is None:
        return CommentedMap()
    if not isinstance(document, CommentedMap):
        raise BudgetConfigError(str(path), [f"{path}: expected a mapping at the top"])
    return document


def _budgets(document: MutableMapping[str, object], path: Path) -> MutableSequence[object]:
    budgets = document.get("budgets")
    if budgets is None:
        budgets = document["budgets"] = CommentedSeq()
    if not isinstance(budgets, CommentedSeq):
        raise BudgetConfigError(str(path), [f"{path}: budgets: expected a list"])
    return budgets


def _names(budgets: Sequence[object]) -> list[str]:
    return [str(cast(Mapping[str, Any], b).get("name")) for b in budgets if isinstance(b, Mapping)]


def _positions(budgets: Sequence[object], name: str) -> list[int]:
    return [
        i
        for i, b in enumerate(budgets)
        if isinstance(b, Mapping) and cast(Mapping[str, Any], b).get("name") == name
    ]


def _flow_style(node: _StyledT) -> _StyledT:
    """``node`` in flow style (``{tenant_id: "*"}``, ``[a, b]``): the file's usual look."""
    node.fa.set_flow_style()
    return node


def _write_validated(path: Path, document: CommentedMap) -> BudgetsConfig:
    """Validate the whole ``document`` as the receiver would, then replace ``path`` atomically."""
    buffer = io.StringIO()
    _round_trip().dump(document, buffer)
    text = buffer.getvalue()
    config = parse_config(yaml.safe_load(text), str(path))  # raises, listing every problem
    target = path.resolve()  # a symlink (a ConfigMap, say) keeps pointing at the file
    mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return config


def add_budget(path: str | Path, entry: Mapping[str, Any]) -> BudgetsConfig:
    """Append the budget ``entry`` (keys as in the file) to ``path`` (created if missing).

    Returns:
        The file's new, validated config.

    Raises:
        BudgetConfigError: the name is taken, or the file would not validate (nothing is
            written then), or the file is unreadable.
    """
    path = Path(path)
    document = _read(path, missing_ok=True)
    budgets = _budgets(document, path)
    name = str(entry.get("name"))
    if name in _names(budgets):
        raise BudgetConfigError(str(path), [f"{path}: a budget named {name!r} exists; remove it first"])
    item = CommentedMap()
    for key, value in entry.items():
        if isinstance(value, Mapping):
            item[key] = _flow_style(CommentedMap(cast(Mapping[str, Any], value)))
        elif isinstance(value, list):
            item[key] = _flow_style(CommentedSeq(cast(list[Any], value)))
        else:
            item[key] = value
    budgets.append(item)
    return _write_validated(path, document)


def remove_budget(path: str | Path, name: str) -> BudgetsConfig:
    """Remove the budget ``name`` from ``path``.

    Returns:
        The file's new, validated config.

    Raises:
        BudgetConfigError: no such budget, or the file is missing, unreadable or would not
            validate (nothing is written then).
    """
    path = Path(path)
    document = _read(path, missing_ok=False)
    budgets = _budgets(document, path)
    positions = _positions(budgets, name)
    if not positions:
        known = ", ".join(_names(budgets)) or "none"
        raise BudgetConfigError(str(path), [f"{path}: no budget named {name!r}; known: {known}"])
    del budgets[positions[0]]
    return _write_validated(path, document)
