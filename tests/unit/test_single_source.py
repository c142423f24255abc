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
    offenders = []
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

    assert common.usd is money.usd and common.money_text is money.money_text
    assert top.usd is money.usd
