"""The tests tree keeps its shape: helpers shared between test modules live in ``tests/support``,
and unit tests start no processes.

A test module importing another one runs (and re-collects) that module's fixtures and
side effects wherever it is imported, and hides shared helpers where nobody looks for them;
a "unit" test that starts a process is slow and order-sensitive in the fast suite. Both
crept in before, so both are checked here by parsing every module under ``tests``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]

PROCESS_MODULES = ("subprocess", "multiprocessing", "spanmeter.service.store_process")
"""Modules a unit test would import to start a process; such tests belong in ``tests/integration``."""


def python_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.py") if "__pycache__" not in path.parts)


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every module an import statement anywhere in ``tree`` names, with its line: for
    ``from a.b import c`` both ``a.b`` and ``a.b.c`` (``c`` may be a module), for a relative
    ``from . import c`` just ``c``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if base:
                yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if base else alias.name


def imports_of_test_modules(source: str, test_modules: set[str]) -> list[str]:
    """``line: module`` for each import in ``source`` of a module named in ``test_modules``."""
    found = [
        (line, module)
        for line, module in imported_modules(ast.parse(source))
        if any(part in test_modules for part in module.split("."))
    ]
    return [f"{line}: {module}" for line, module in sorted(found)]


def test_no_test_module_imports_another_test_module() -> None:
    files = python_files(TESTS_DIR)
    test_modules = {path.stem for path in files if path.stem.startswith("test_")}
    assert len(test_modules) > 50  # the tree was found and read
    offenders = {
        str(path.relative_to(TESTS_DIR)): found
        for path in files
        if (found := imports_of_test_modules(path.read_text(encoding="utf-8"), test_modules))
    }
    assert offenders == {}, "move what they share into tests/support"


def test_the_check_finds_each_spelling_of_a_test_module_import() -> None:
    modules = {"test_store", "test_normalize"}
    source = (
        "from test_store import make_row\n"
        "import test_normalize as cases\n"
        "from . import test_store\n"
        "def later():\n"
        "    from unit.test_normalize import ALL_CASES\n"
        "from support.store_rows import make_row\n"  # a support module: allowed
        "from spanmeter.store import SQLiteStore\n"
    )
    assert imports_of_test_modules(source, modules) == [
        "1: test_store",
        "1: test_store.make_row",
        "2: test_normalize",
        "3: test_store",
        "5: unit.test_normalize",
        "5: unit.test_normalize.ALL_CASES",
    ]


def test_unit_tests_start_no_processes() -> None:
    unit = python_files(TESTS_DIR / "unit")
    assert unit
    offenders = {
        str(path.relative_to(TESTS_DIR)): starters
        for path in unit
        if (
            starters := [
                f"{line}: {module}"
                for line, module in imported_modules(ast.parse(path.read_text(encoding="utf-8")))
                if any(module == name or module.startswith(f"{name}.") for name in PROCESS_MODULES)
            ]
        )
    }
    assert offenders == {}, "tests that start processes belong in tests/integration"
