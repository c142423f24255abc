"""The pacing of maintenance steps beside ingest: back to back while idle, at most a share
of the writer's time while batches arrive, a recheck after a step that found nothing."""

from __future__ import annotations

import pytest

from spanmeter.store.maintenance_pacer import MaintenancePacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def step(pacer: MaintenancePacer, clock: Clock, seconds: float, *, more: bool = True) -> None:
    def work() -> bool:
        clock.now += seconds
        return more

    pacer.run_step(work)


def test_the_first_step_waits_for_the_recheck_then_idle_steps_run_back_to_back() -> None:
    clock = Clock()
    pacer = MaintenancePacer(recheck_s=1.0, clock=clock)
    assert pacer.delay() == 1.0
    clock.now += 1.0
    assert pacer.delay() == 0.0
    step(pacer, clock, 0.3)
    assert pacer.delay() == 0.0  # no batch since: the next step at once


def test_a_batch_makes_the_next_step_wait_for_the_share() -> None:
    clock = Clock()
    pacer = MaintenancePacer(share=0.2, recheck_s=1.0, clock=clock)
    clock.now += 1.0
    step(pacer, clock, 0.5)
    pacer.batch_arrived()
    assert pacer.delay() == pytest.approx(2.0)  # 0.5 s of steps, then 2 s of ingest
    clock.now += 1.5
    assert pacer.delay() == pytest.approx(0.5)
    clock.now += 0.5
    assert pacer.delay() == 0.0  # never starved: the step runs once its turn comes


def test_a_step_that_found_nothing_rechecks_later_busy_or_not() -> None:
    clock = Clock()
    pacer = MaintenancePacer(recheck_s=2.0, clock=clock)
    clock.now += 2.0
    step(pacer, clock, 0.01, more=False)
    assert pacer.delay() == pytest.approx(2.0)
    pacer.batch_arrived()
    assert pacer.delay() == pytest.approx(2.0)


def test_a_share_of_one_never_waits_after_work() -> None:
    clock = Clock()
    pacer = MaintenancePacer(share=1.0, clock=clock)
    clock.now += 1.0
    step(pacer, clock, 0.5)
    pacer.batch_arrived()
    assert pacer.delay() == 0.0


@pytest.mark.parametrize(("share", "recheck_s"), [(0.0, 1.0), (1.5, 1.0), (0.2, 0.0)])
def test_invalid_arguments(share: float, recheck_s: float) -> None:
    with pytest.raises(ValueError):
        MaintenancePacer(share=share, recheck_s=recheck_s)
