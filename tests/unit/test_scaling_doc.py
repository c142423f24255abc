"""docs/scaling.md quotes measured figures: they must be the ones bench/README.md records, its
arithmetic must add up, and its links must lead somewhere.

The doc mixes what was measured with what is on paper; these tests keep the measured part
tied to its source, so that a new bench run that changes bench/README.md fails here until
the doc follows.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "scaling.md"
BENCH = ROOT / "bench" / "README.md"

_NUMBER = r"\d{1,3}(?:,\d{3})*(?:\.\d+)?"


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` (a line starting with it) up to the next heading of the
    same or a higher level."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(heading)]
    assert len(starts) == 1, f"{heading!r}: {len(starts)} headings"
    level = len(heading) - len(heading.lstrip("#"))
    body: list[str] = []
    for line in lines[starts[0] + 1 :]:
        hashes = len(line) - len(line.lstrip("#"))
        if 0 < hashes <= level and line[hashes : hashes + 1] == " ":
            break
        body.append(line)
    return "\n".join(body)


def _table_rows(text: str) -> list[str]:
    """The data rows of every Markdown table in ``text`` (header and rule lines left out)."""
    rows: list[str] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if following.startswith("|") and set(following) <= set("|-: "):
            continue  # a header row
        rows.append(" ".join(line.split()))
    return rows


def _number(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def test_the_sizing_tables_are_those_of_the_bench() -> None:
    doc_rows = _table_rows(_section(DOC.read_text(), "## PostgreSQL sizing"))
    bench_rows = set(_table_rows(_section(BENCH.read_text(), "## Storage size")))
    assert len(doc_rows) >= 8, "the doc's sizing tables are gone"
    missing = [row for row in doc_rows if row not in bench_rows]
    assert not missing, (
        "rows of docs/scaling.md not in bench/README.md's Storage size section:\n" + "\n".join(missing)
    )


def test_quoted_rates_and_latencies_are_recorded_in_the_bench() -> None:
    quoted = _section(DOC.read_text(), "## When to leave SQLite")
    bench = BENCH.read_text()
    figures = re.findall(rf"\b({_NUMBER}(?:k| spans/s| ms))", quoted)
    assert len(figures) >= 6, figures
    for figure in figures:
        value = figure.removesuffix(" spans/s")
        assert value in bench, f"docs/scaling.md quotes {figure!r}, which bench/README.md does not record"


def test_the_daily_arithmetic_adds_up() -> None:
    """Lines such as ``1,000 spans/s x 86,400 s x 646 bytes = 55.8 GB``: the product,
    rounded to the digits shown."""
    text = DOC.read_text()
    sums = re.findall(
        rf"({_NUMBER}) spans/s × 86,400 s(?: × ({_NUMBER}) days)? × ({_NUMBER}) bytes = ({_NUMBER}) (GB|TB)",
        text,
    )
    assert len(sums) >= 4, sums
    for rate, days, size, total, unit in sums:
        product = _number(rate) * 86_400 * (_number(days) if days else 1) * _number(size)
        shown = _number(total)
        scale = Decimal(10) ** (9 if unit == "GB" else 12)
        step = Decimal(1).scaleb(shown.as_tuple().exponent)  # type: ignore[arg-type]
        assert abs(product / scale - shown) <= step / 2, (rate, days, size, total, unit, product / scale)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in path.read_text().splitlines() if re.match(r"#{1,6} ", line)}


LINKED = [ROOT / "README.md", ROOT / "docs" / "postgresql.md"]


@pytest.mark.parametrize("doc", [DOC, *LINKED], ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path) -> None:
    targets = re.findall(r"\]\(([^)\s]+)\)", doc.read_text())
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert local
    for target in local:
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.exists(), f"{doc.name} links to {target}: no such file"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file), f"{doc.name} links to {target}: no such heading"


@pytest.mark.parametrize("doc", LINKED, ids=lambda p: p.name)
def test_the_scaling_doc_is_linked(doc: Path) -> None:
    assert "scaling.md" in doc.read_text(), f"{doc.name} does not link docs/scaling.md"
