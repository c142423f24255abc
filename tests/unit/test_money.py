"""USD for people: cents from a dollar up, 4 decimals from a cent, 4 significant digits
below that, never past the nano-USD, and exact half-even rounding of the integer amount."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from spanmeter.money import dollars, money_column, money_text, nano_usd, usd, usd_fraction, usd_to_nano


@pytest.mark.parametrize(
    ("nano", "text"),
    [
        (1_930_745_731, "1.93"),
        (-12_384_407_250, "-12.38"),
        (1_000_000_000, "1.00"),
        (-26_157_486, "-0.0262"),
        (10_000_000, "0.0100"),
        (190_000, "0.0001900"),
        (123_456, "0.0001235"),
        (12, "0.000000012"),
        (0, "0.00"),
        (None, "-"),
        (1_005_000_000, "1.00"),  # half-even, on the exact integer
        (1_015_000_000, "1.02"),
    ],
)
def test_money_text(nano: int | None, text: str) -> None:
    assert money_text(nano) == text


def test_signed_and_exact_stays_exact() -> None:
    assert money_text(26_157_486, signed=True) == "+0.0262"
    assert money_text(-26_157_486, signed=True) == "-0.0262"
    assert money_text(0, signed=True) == "+0.00"
    assert usd(1_930_745_731) == "1.930745731"  # machine formats keep the nano-USD


def test_a_column_shares_the_finest_precision_and_lines_up() -> None:
    # a total, a per-request cost and a sub-cent one: each alone would get 2, 4 and 7 decimals
    column = money_column([14_286_900_000, 19_870_500, 190_000, None])
    assert column == ["14.2869000", " 0.0198705", " 0.0001900", "-".rjust(10)]
    assert len({len(text) for text in column}) == 1  # right-aligned to the widest
    assert money_column([1_930_745_731, -26_157_486], signed=True) == ["+1.9307", "-0.0262"]
    assert money_column([]) == [] and money_column([None]) == ["-"]


def test_a_column_rounds_each_figure_exactly() -> None:
    rng = random.Random(7)
    values = [rng.randrange(-(10**12), 10**12) // 10 ** rng.randrange(0, 12) for _ in range(200)]
    column = money_column(values)
    decimals = {-int(Decimal(text).as_tuple().exponent) for text in column}
    assert len(decimals) == 1
    (places,) = decimals
    assert places == max(-int(Decimal(money_text(v)).as_tuple().exponent) for v in values)
    for text, value in zip(column, values, strict=True):
        assert abs(Decimal(text) * 10**9 - value) <= Decimal(5).scaleb(8 - places)


def test_nano_usd_reads_back_what_usd_wrote() -> None:
    rng = random.Random(11)
    for value in [0, 1, -1, 10**9, *(rng.randrange(-(10**15), 10**15) for _ in range(500))]:
        assert nano_usd(usd(value)) == value
    assert nano_usd(None) is None


@pytest.mark.parametrize(
    ("nano", "text"),
    [(0, "0.000000000"), (7, "0.000000007"), (-7, "-0.000000007"), (12_500_000_000, "12.500000000")],
)
def test_machine_format_is_fixed_point_with_every_nano(nano: int, text: str) -> None:
    """JSON and CSV print every nano-USD, never an exponent (``0E-9``, ``7E-9``)."""
    assert usd(nano) == text
    assert nano_usd(text) == nano


def test_usd_to_nano_rounds_toward_zero_and_fractions_half_even() -> None:
    assert usd_to_nano(Decimal("1.0000000019")) == 1_000_000_001
    assert usd_to_nano(Decimal("-0.0000000019")) == -1
    from fractions import Fraction

    assert usd_fraction(Fraction(5, 2)) == "0.000000002"  # 2.5 nano -> 2, half-even
    assert usd_fraction(Fraction(7, 2)) == "0.000000004"


def test_dollars_in_sentences() -> None:
    assert dollars(1_234_500_000_000) == "$1,234.50"
    assert dollars(1_050_000) == "$0.00105"
    assert dollars(0) == "$0.00"


def test_nano_usd_rejects_text_that_is_not_an_amount() -> None:
    with pytest.raises(ValueError, match="not an amount"):
        nano_usd("twelve")
