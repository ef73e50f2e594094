"""Adafactor (transformers' implementation) that also steps FSDP2's sharded (DTensor) parameters.

transformers' Adafactor creates its statistics with `torch.zeros(shape).to(grad)`: plain tensors, into which a
DTensor gradient's row and column means cannot be added ("got mixed torch.Tensor and DTensor"). Created here as
DTensors on the gradient's mesh instead (row statistics sharded like the rows, column statistics replicated), the
same step code runs unchanged: DTensor reduces the column and whole-tensor means over the processes, so the update
is the unsharded one (2 CPU processes vs one, tests/train/test_train_fsdp.py: weights within 2.4e-7 after 6
steps). torch.distributed.checkpoint
saves and restores these statistics with the parameters' shards.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.optimization import Adafactor


class ShardableAdafactor(Adafactor):
    """transformers' Adafactor; the state of a DTensor parameter is created as DTensors, so FSDP2 can shard it."""

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """Create the missing state of sharded parameters, then transformers' step."""
        from torch.distributed.tensor import DTensor

        for group in self.param_groups:
            for p in group["params"]:
                if isinstance(p.grad, DTensor) and not self.state[p]:
                    self._init_sharded_state(group, p.grad, self.state[p])
        return super().step(closure)

    def _init_sharded_state(self, group: dict[str, Any], grad: Any, state: dict[str, Any]) -> None:
        from torch.distributed.tensor import Replicate, Shard
        from torch.distributed.tensor import zeros as dtensor_zeros

        if tuple(grad.placements) != (Shard(0),):
            raise RuntimeError(f"Adafactor steps parameters sharded on their first dimension (FSDP2); this one is "
                               f"placed {grad.placements}")
        factored, first_moment = self._get_options(group, grad.shape)
        dtype = torch.float32 if grad.dtype in (torch.float16, torch.bfloat16) else grad.dtype
        mesh, shape = grad.device_mesh, grad.shape
        state["step"] = 0
        if first_moment:
            state["exp_avg"] = torch.zeros_like(grad, dtype=dtype)
        if factored:  # rows keep dimension 0 (sharded); columns drop it unless the tensor has more than 2 dims
            state["exp_avg_sq_row"] = dtensor_zeros(shape[:-1], dtype=dtype, device_mesh=mesh, placements=[Shard(0)])
            state["exp_avg_sq_col"] = dtensor_zeros(shape[:-2] + shape[-1:], dtype=dtype, device_mesh=mesh,
                                                    placements=[Shard(0) if len(shape) > 2 else Replicate()])
        else:
            state["exp_avg_sq"] = torch.zeros_like(grad, dtype=dtype)
        state["RMS"] = 0
