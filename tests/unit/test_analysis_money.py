"""USD for people: cents from a dollar up, 4 decimals from a cent, 4 significant digits
below that, never past the nano-USD, and exact half-even rounding of the integer amount."""

from __future__ import annotations

import pytest

from spanmeter.analysis.common import money_text, usd


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
