"""Learning-rate schedules and fitting their horizon to a time budget."""

from __future__ import annotations

import pytest
import torch

from ayakit.train.schedule import Schedule, make_lambda_scheduler, steps_that_fit


@pytest.mark.parametrize("kind", ["constant", "linear", "cosine"])
def test_warmup_then_decay_to_zero_at_the_horizon(kind: str) -> None:
    s = Schedule(kind, warmup=4, total=20)
    values = [s(i) for i in range(20)]
    assert values[:4] == sorted(values[:4]) and values[0] > 0 and values[3] < 1
    assert max(values) == pytest.approx(1.0)
    if kind == "constant":
        assert values[-1] == 1.0
    else:
        assert values[4:] == sorted(values[4:], reverse=True) and s(20) == pytest.approx(0.0)


def test_moving_the_horizon_is_saved_with_the_scheduler_state() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    scheduler, schedule = make_lambda_scheduler(opt, "linear", 2, 100)
    for _ in range(5):
        opt.step()
        scheduler.step()
    schedule.total = 10  # fitted to a time budget
    state = scheduler.state_dict()

    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler2, schedule2 = make_lambda_scheduler(opt2, "linear", 2, 100)
    scheduler2.load_state_dict(state)
    assert schedule2.total == 10
    for _ in range(5):
        opt2.step()
        scheduler2.step()
    assert scheduler2.get_last_lr()[0] == pytest.approx(0.0)


def test_steps_that_fit_the_remaining_time() -> None:
    assert steps_that_fit(step=10, seconds_per_step=2.0, seconds_left=100.0, ceiling=1000) == 10 + 47
    assert steps_that_fit(step=10, seconds_per_step=0.01, seconds_left=100.0, ceiling=200) == 200
    assert steps_that_fit(step=10, seconds_per_step=50.0, seconds_left=1.0, ceiling=200) == 11
