"""The effect split: exact, order-free, and right on the textbook cases."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from spanmeter.analysis.decompose import Effects, Side, apportion, exact_effects, split_delta, split_scaled
from support.analysis_oracle import Acc, integer_effects, shapley_effects, to_integers


def test_pure_cases() -> None:
    # tokens per call double, nothing else changes: all efficiency
    assert split_delta(Side(100, 110, 55_000, 9_000_000), Side(100, 110, 110_000, 18_000_000)) == Effects(
        0, 0, 9_000_000, 0
    )
    # twice the requests at the same per-call figures: all volume (retries double with them)
    assert split_delta(Side(100, 100, 1000, 5000), Side(200, 200, 2000, 10_000)) == Effects(5000, 0, 0, 0)
    # same requests, three attempts each instead of one: all retry
    assert split_delta(Side(100, 100, 1000, 5000), Side(100, 300, 3000, 15_000)) == Effects(0, 10_000, 0, 0)
    # same tokens, pricier model: all price
    assert split_delta(Side(100, 100, 1000, 5000), Side(100, 100, 1000, 80_000)) == Effects(0, 0, 0, 75_000)


def test_groups_that_appear_or_vanish_are_volume_and_retries() -> None:
    assert split_delta(Side(0, 0, 0, 0), Side(10, 12, 1200, 600)) == Effects(500, 100, 0, 0)
    assert split_delta(Side(10, 12, 1200, 600), Side(0, 0, 0, 0)) == Effects(-500, -100, 0, 0)
    # a group holding only retries (a fallback model the retries went to)
    assert split_delta(Side(0, 3, 300, 300), Side(0, 9, 900, 900)) == Effects(0, 600, 0, 0)


def test_cost_without_tokens_is_split_per_attempt() -> None:
    effects = split_delta(Side(5, 5, 0, 500), Side(5, 10, 0, 1500))
    assert effects.efficiency == 0 and effects.total == 1000


@pytest.mark.parametrize("seed", range(30))
def test_matches_enumerated_shapley_and_adds_up(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        sides = []
        for _ in range(2):
            logical = rng.choice([0, rng.randrange(1, 500)])
            attempts = logical + rng.choice([0, rng.randrange(0, 200)])
            tokens = rng.randrange(1, 10**6) * attempts if attempts and rng.random() < 0.9 else 0
            cost = rng.randrange(0, 10**9) if tokens else 0
            sides.append((logical, attempts, tokens, cost))
        (l0, a0, t0, c0), (l1, a1, t1, c1) = sides
        exact = exact_effects(Side(l0, a0, t0, c0), Side(l1, a1, t1, c1))
        oracle = shapley_effects(Acc(a0, l0, c0, t0, 0), Acc(a1, l1, c1, t1, 0))
        assert list(exact) == oracle
        assert sum(exact) == c1 - c0
        effects = split_delta(Side(l0, a0, t0, c0), Side(l1, a1, t1, c1))
        assert effects.total == c1 - c0
        assert list(effects.as_dict().values()) == to_integers(oracle, c1 - c0)


def test_apportion() -> None:
    assert apportion([Fraction(1, 3)] * 3, 1) == [1, 0, 0]
    assert apportion([Fraction(5, 2), Fraction(-3, 2)], 1) == [3, -2]
    with pytest.raises(ValueError):
        apportion([Fraction(1, 2)], 7)


@pytest.mark.parametrize("seed", range(30))
def test_scaled_baseline_matches_enumerated_shapley(seed: int) -> None:
    """A baseline of another length, scaled by window/baseline length, splits as the
    enumerated Shapley value of the scaled counts, rounded once to the scaled delta."""
    rng = random.Random(seed)

    def acc() -> Acc:
        if rng.random() < 0.15:
            return Acc()
        logical = rng.randint(1, 400)
        tokens = rng.choice([0, rng.randint(1, 10**6)])
        return Acc(
            attempts=logical + rng.randint(0, 60),
            logical=logical,
            cost=rng.randint(0, 10**9) if tokens or rng.random() < 0.5 else 0,
            input=tokens,
        )

    base, current = acc(), acc()
    scale = Fraction(rng.choice([1, 2, 5, 7, 24]), rng.choice([1, 3, 12, 24, 168]))
    effects = split_scaled(
        Side(base.logical, base.attempts, base.tokens, base.cost),
        Side(current.logical, current.attempts, current.tokens, current.cost),
        scale,
    )
    if (base.tokens == 0 and base.cost) or (current.tokens == 0 and current.cost):
        # cost without tokens is split per attempt (no oracle for that branch): it adds up
        assert effects.efficiency == 0
    else:
        assert list(effects.as_dict().values()) == integer_effects(base, current, scale)
    assert effects.total == round(current.cost - scale * base.cost)


def test_scaled_by_one_is_the_plain_split() -> None:
    base, current = Side(100, 110, 55_000, 9_000_000), Side(300, 330, 110_000, 18_000_000)
    assert split_scaled(base, current, Fraction(1)) == split_delta(base, current)
    # a 24-hour baseline against a 2-hour window: 12 times the traffic at the same per-call
    # figures is no change at all per hour
    assert split_scaled(
        Side(1200, 1320, 660_000, 108_000_000), Side(100, 110, 55_000, 9_000_000), Fraction(1, 12)
    ) == Effects(0, 0, 0, 0)
    # the same per hour, four times the requests in the window: all volume
    effects = split_scaled(Side(1200, 1200, 12_000, 60_000), Side(400, 400, 4000, 20_000), Fraction(1, 12))
    assert effects == Effects(15_000, 0, 0, 0)
