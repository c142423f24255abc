"""The facts said once stay said once: one money module and one nanosecond module, and no
module of ``src/`` spells the scale of nano-USD or of nanoseconds again."""

from __future__ import annotations

import re
from pathlib import Path

import spanmeter

_SRC = Path(spanmeter.__file__).parent
_OWNERS = {"money.py", "timeunits.py"}
_SCALE = re.compile(r"(?<![\w.])(1_000_000_000|1000000000|10\*\*9|1e9)(?![\w.])")


def test_no_module_restates_the_nano_scale() -> None:
    """``1e9`` is nano-USD per USD (:mod:`spanmeter.money`) or ns per second
    (:mod:`spanmeter.timeunits`); atto-per-nano in the pricing rates is a third unit, named there."""
    offenders: list[str] = []
    for path in sorted(_SRC.rglob("*.py")):
        if path.name in _OWNERS:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if _SCALE.search(code) and "ATTO_PER_NANO" not in code and "``" not in code:
                offenders.append(f"{path.relative_to(_SRC)}:{number}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)


def test_money_formatters_are_the_money_modules() -> None:
    """Views format money with :mod:`spanmeter.money` itself, not a copy."""
    from spanmeter import money
    from spanmeter.analysis import common, top

    assert common.usd is money.usd
    assert top.usd is money.usd
    # and nothing re-exports them: views import the money module itself
    assert not {"money_text", "money_column", "nano_usd", "usd_fraction"} & set(vars(common))


def test_every_rule_kind_is_judged_and_documented() -> None:
    """One registry of alert rule kinds: the config accepts exactly the kinds that have a
    judge, and both the config module's table and docs/budgets.md describe each of them."""
    from spanmeter.budgets.rules import config as rule_config
    from spanmeter.budgets.rules.kinds import RULE_KINDS

    docs = (_SRC.parents[1] / "docs" / "budgets.md").read_text()
    for name, kind in RULE_KINDS.items():
        assert callable(kind.judge), name
        assert name in (rule_config.__doc__ or ""), name
        assert name in docs, name
    from spanmeter.budgets.definitions.values import ConfigErrors

    errors = ConfigErrors("budgets.yaml")
    assert rule_config.parse_rules(errors, [{"kind": "no_such_kind"}]) == []
    assert any(all(name in error for name in RULE_KINDS) for error in errors.errors)


def _imports_of(package: str) -> set[str]:
    """Absolute names of the spanmeter modules that ``package``'s modules import."""
    import ast

    found: set[str] = set()
    base = _SRC / package
    for path in base.rglob("*.py") if base.is_dir() else [base.with_suffix(".py")]:
        here = ["spanmeter", *path.relative_to(_SRC).parent.parts]  # what ``.`` names here
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                parts = here[: len(here) - node.level + 1]
                if node.module:
                    found.add(".".join([*parts, *node.module.split(".")]))
                else:  # ``from .. import analysis``: the names are modules
                    found.update(".".join([*parts, alias.name]) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("spanmeter"):
                found.add(node.module)
    return found


def test_time_and_money_sit_below_every_layer() -> None:
    """Budgets and analysis read time from :mod:`spanmeter.timeunits`, not one from the
    other; the units modules import nothing from spanmeter; the store imports neither."""
    assert not {name for name in _imports_of("budgets") if name.startswith("spanmeter.analysis")}
    assert not {
        name for name in _imports_of("store") if name.startswith(("spanmeter.analysis", "spanmeter.budgets"))
    }
    for leaf in ("money", "timeunits"):
        assert not {name for name in _imports_of(leaf) if name.startswith("spanmeter")}, leaf


def test_no_name_means_two_values() -> None:
    """An environment variable constant never shares its name with an attribute key constant
    (``SPANMETER_DATA_MODE`` was both ``"spanmeter.data_mode"`` and the variable's name), and
    each is named after its variable (``_ENV`` added where the attribute holds the name)."""
    from spanmeter import environment_variables
    from spanmeter.semantic_conventions import attributes

    variables = {
        name: value
        for name, value in vars(environment_variables).items()
        if name.startswith("SPANMETER_") and isinstance(value, str)
    }
    assert variables, "no environment variable constants found"
    assert not set(variables) & set(attributes.__all__)
    for name, value in variables.items():
        assert name in (value, f"{value}_ENV"), name
        assert value.startswith("SPANMETER_"), name


def test_normalise_stays_light_and_the_contract_holds_no_logic() -> None:
    """The processor runs in the app and imports :mod:`spanmeter.normalise`: that package
    reads only the attribute contract and :mod:`spanmeter.money`, never the receiver's side
    (ingest, store, service, ...). The contract itself imports nothing of spanmeter and
    defines no public function: keys and alias tables only."""
    import ast

    allowed = ("spanmeter.normalise", "spanmeter.semantic_conventions", "spanmeter.money")
    imported = {name for name in _imports_of("normalise") if name.startswith("spanmeter")}
    assert {name for name in imported if not name.startswith(allowed)} == set()
    assert "spanmeter.semantic_conventions.alias_table" in imported  # the check sees imports
    contract = {name for name in _imports_of("semantic_conventions") if name.startswith("spanmeter")}
    assert {name for name in contract if not name.startswith("spanmeter.semantic_conventions")} == set()
    functions = [
        f"{path.name}:{node.name}"
        for path in sorted((_SRC / "semantic_conventions").glob("*.py"))
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_")
    ]
    assert functions == []


def test_the_api_sits_above_analysis_budgets_and_store() -> None:
    """:mod:`spanmeter.api` may import the analysis, the budgets and the store; none of them
    (nor the ingest path) imports it, and the budgets keep no HTTP layer of their own."""
    api = _imports_of("api")
    assert {
        "spanmeter.analysis.views",
        "spanmeter.budgets.ledger",
        "spanmeter.store",
    } <= api  # the check sees
    for below in ("analysis", "budgets", "store", "ingest", "receiver", "normalise", "pricing", "prometheus"):
        assert not {name for name in _imports_of(below) if name.startswith("spanmeter.api")}, below
    assert not (_SRC / "budgets" / "http").exists()
    assert not (_SRC / "analysis" / "api.py").exists()


def test_one_wsgi_app_type_and_one_json_helper() -> None:
    """The API's modules build JSON answers only through :func:`spanmeter.api.http.json_response`
    and spell the WSGI app type once (:data:`spanmeter.api.http.WSGIApp`)."""
    offenders: list[str] = []
    for path in sorted((_SRC / "api").glob("*.py")):
        text = path.read_text()
        if path.name != "http.py":
            if "WSGIApp = " in text or "WSGIApp: TypeAlias" in text:
                offenders.append(f"{path.name}: defines WSGIApp")
            if "json.dumps(" in text and path.name != "budgets.py":  # budgets: the ETag's digest only
                offenders.append(f"{path.name}: encodes JSON itself")
            if "start_response(" in text and path.name != "app.py":
                offenders.append(f"{path.name}: answers WSGI itself")
    assert offenders == []
