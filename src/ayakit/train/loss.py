"""The loss and its denominators, exact under packing, gradient accumulation and data parallelism.

Every label token carries a weight: 1/len(target) for the paper's per-sequence normalisation (an example's
tokens sum to 1, so every example counts equally), 1 for the token mean. The loss of an optimiser step is
sum(weight * CE) / sum(weight) over *all* micro-batches on *all* processes, so the denominator is the number
of examples (sequence mode) or target tokens (token mode) in the global batch. Each process backpropagates
its local sum scaled by world_size / global denominator: DDP averages gradients over processes, which turns
the scaled sum back into the global mean. Dividing by a per-micro-batch count instead would weight examples
in small micro-batches more.
"""

from __future__ import annotations

import torch


def local_weight(batches: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    """This process's share of the denominator: the sum of loss weights over its micro-batches."""
    return sum((b["weight"].sum() for b in batches), torch.zeros((), dtype=torch.float64)).double()


def backward_scale(global_weight: torch.Tensor | float, world_size: int) -> float:
    """Factor that turns a local weighted loss sum into this process's part of the global mean (DDP averages)."""
    total = float(global_weight)
    if total <= 0:
        raise ValueError("a training step without any target token")
    return world_size / total


def mean_loss(loss_sum: torch.Tensor | float, weight: torch.Tensor | float) -> float:
    """The step's loss as reported: global weighted sum over global weight."""
    return float(loss_sum) / max(float(weight), 1e-12)
