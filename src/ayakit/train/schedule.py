"""Learning-rate schedules whose horizon can shrink to fit a time budget (train.max_minutes).

A run stopped by its time budget halfway through a decay ends at a high learning rate; on a slow or busy
machine that is most of the run. With max_minutes set, the loop measures its step time and moves the
schedule's horizon to the step it will reach before the deadline, so warm-up and decay complete in time.
The schedule is a callable object, so LambdaLR checkpoints its horizon with the scheduler state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class Schedule:
    """lr multiplier per step: linear warm-up, then constant, linear or cosine decay to 0 at `total`."""

    kind: str  # constant | linear | cosine
    warmup: int
    total: int

    def __call__(self, step: int) -> float:
        warmup = min(self.warmup, max(self.total - 1, 0))
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if self.kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, self.total - warmup))
        if self.kind == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_lambda_scheduler(optimizer: torch.optim.Optimizer, kind: str, warmup: int, total: int) -> tuple[
        torch.optim.lr_scheduler.LambdaLR, Schedule]:
    """A LambdaLR driven by one Schedule for every parameter group; both are returned."""
    schedule = Schedule(kind, warmup, total)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), schedule


def steps_that_fit(step: int, seconds_per_step: float, seconds_left: float, ceiling: int, margin: float = 0.95) -> int:
    """The last step reachable before the deadline at the measured pace (at least step + 1, at most `ceiling`)."""
    if seconds_per_step <= 0:
        return ceiling
    more = int(margin * seconds_left / seconds_per_step)
    return max(step + 1, min(ceiling, step + more))
