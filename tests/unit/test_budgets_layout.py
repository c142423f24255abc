"""The budgets package is layered: its import graph has no cycle, and each subpackage
imports only the subpackages below it (the order its ``__init__`` describes)."""

from __future__ import annotations

import ast
import importlib
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import spanmeter.budgets

_ROOT = Path(spanmeter.budgets.__file__).parent
_LAYERS = ("definitions", "rules", "config", "ledger", "delivery", "editing")
"""Bottom first; the wiring modules at the top of the package may import any of them."""


def _name(path: Path) -> str:
    parts = ["spanmeter", "budgets", *path.relative_to(_ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_name(path): path for path in sorted(_ROOT.rglob("*.py"))}


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(3, len(parts))]  # below spanmeter.budgets


def _graph() -> dict[str, set[str]]:
    """Each budgets module -> the budgets modules importing it runs (anywhere in the module,
    type-checking imports included), with the ``__init__`` of each package entered on the way."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join([*base, *(node.module or "").split(".")]).rstrip(".")
                else:
                    target = node.module or ""
                targets.add(target)
                targets.update(f"{target}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        edges = set()
        for target in targets:
            if target in modules:
                own = {name, *_ancestors(name)}
                edges.update(t for t in (*_ancestors(target), target) if t not in own and t != name)
        graph[name] = edges
    return graph


def test_the_graph_sees_every_budgets_module_and_its_imports() -> None:
    """The graph is built from the sources: a module it names is importable, and the known
    imports are found (so an empty graph cannot pass the tests below)."""
    graph = _graph()
    for name in graph:
        importlib.import_module(name)
    assert "spanmeter.budgets.delivery.outbox" in graph["spanmeter.budgets.runtime"]
    assert "spanmeter.budgets.definitions.model" in graph["spanmeter.budgets.rules.config"]
    assert "spanmeter.budgets.config" in graph["spanmeter.budgets.ledger.hook"]  # the package's __init__ too


def test_budgets_imports_have_no_cycle() -> None:
    try:
        TopologicalSorter(_graph()).prepare()
    except CycleError as error:
        pytest.fail(f"import cycle in spanmeter.budgets: {' -> '.join(error.args[1])}")


def test_a_cycle_is_found() -> None:
    """The check above fails on a cycle (as the runtime, api and scheduler once made one)."""
    graph = _graph()
    graph["spanmeter.budgets.scheduler"].add("spanmeter.budgets.runtime")
    with pytest.raises(CycleError):
        TopologicalSorter(graph).prepare()


@pytest.mark.parametrize("layer", _LAYERS)
def test_each_subpackage_imports_only_the_layers_below_it(layer: str) -> None:
    below = {f"spanmeter.budgets.{name}" for name in _LAYERS[: _LAYERS.index(layer)]}
    prefix = f"spanmeter.budgets.{layer}"
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module == prefix or module.startswith(prefix + ".")
        for target in targets
        if not (target == prefix or target.startswith(prefix + "."))
        and ".".join(target.split(".")[:3]) not in below
    )
    assert wrong == []


def test_every_subpackage_says_what_it_holds() -> None:
    for layer in _LAYERS:
        package = importlib.import_module(f"spanmeter.budgets.{layer}")
        assert (package.__doc__ or "").strip(), layer
        assert package.__all__ and all(hasattr(package, name) for name in package.__all__), layer


def test_the_readme_layout_names_the_layers_in_order() -> None:
    """README.md's layout paragraph lists the budgets layers bottom first, as they are."""
    readme = (_ROOT.parents[2] / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    paragraph = layout[layout.index("`budgets` (") : layout.index("`analysis`")]
    positions = [paragraph.index(f"`{layer}`") for layer in _LAYERS]
    assert positions == sorted(positions)
    assert {path.name for path in _ROOT.iterdir() if (path / "__init__.py").exists()} == set(_LAYERS)
