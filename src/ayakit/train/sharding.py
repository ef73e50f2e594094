"""Which sharding path a training run takes, and ayakit's own FSDP2 path for processes accelerate will not shard.

accelerate 1.x turns its FSDP plugin on only for GPU-class distributed types: several CPU processes launched with
an FSDP config (or `train.fsdp=true`) would silently run as DDP. torch's FSDP2 (`fully_shard`) itself works on CPU
over gloo, so there ayakit shards the model itself: one FSDP unit per transformer block (the model's
`_no_split_modules`, or accelerate's `FSDP_TRANSFORMER_CLS_TO_WRAP`) and the packed-loss wrapper as the root
unit, which holds the (tied) embedding. accelerate still starts the process group, reduces and autocasts.
Checkpoints are torch.distributed.checkpoint (DCP) sharded state dicts of the model and the optimiser, one file
per process, plus each process's scheduler and RNG states; the final model is gathered into a full state dict on
the main process and saved as a normal HF directory.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ayakit.recipe import Recipe, RecipeError

OWN = "fsdp2"  # ayakit's fully_shard path
RANK_STATE = "rank-{rank}.pt"  # per-process scheduler and RNG states beside the DCP files
LAYOUT = "dcp"  # checkpoint.LAYOUTS' name for what save_state writes


@dataclass
class Sharding:
    """The sharding path of a run: its name, who shards, and (ayakit's FSDP2) the shard units."""

    path: str  # fsdp2 | FSDP (accelerate's plugin) | DEEPSPEED | DDP | none
    by: str  # ayakit | accelerate | -
    units: list[str] = field(default_factory=list)  # class names of the FSDP units below the root
    unit_count: int = 0
    reshard_after_forward: bool = True
    parameters: int = 0  # the model's
    local_parameters: int = 0  # what this process holds of them

    @property
    def own(self) -> bool:
        """Whether ayakit shards the model itself (torch fully_shard) rather than accelerate."""
        return self.path == OWN

    @property
    def sharded(self) -> bool:
        """Whether parameters are split over the processes, so every forward is a collective all must join."""
        return self.path in (OWN, "FSDP", "DEEPSPEED")

    def describe(self, world: int) -> str:
        """One line for the terminal."""
        if self.own:
            return (f"sharding: FSDP2 by ayakit (torch fully_shard), {world} processes over "
                    f"{torch.distributed.get_backend()}: {self.unit_count} x {'/'.join(self.units)} units + root, "
                    f"this process holds {self.local_parameters:,} of {self.parameters:,} parameters; "
                    "checkpoints: torch.distributed.checkpoint, sharded")
        if self.path == "none":
            return "sharding: none (one process)"
        return f"sharding: {self.path} by {self.by}, {world} processes"

    def manifest(self) -> dict[str, Any]:
        """What the run manifest records."""
        out: dict[str, Any] = {"path": self.path, "by": self.by}
        if self.own:
            out |= {"units": self.units, "unit_count": self.unit_count,
                    "reshard_after_forward": self.reshard_after_forward, "parameters": self.parameters,
                    "main_process_parameters": self.local_parameters,
                    "checkpoint_format": "torch.distributed.checkpoint (sharded)"}
        return out


def fsdp_requested(recipe: Recipe) -> bool:
    """train.fsdp, or an accelerate FSDP config (accelerate launch sets ACCELERATE_USE_FSDP)."""
    return recipe.train.fsdp or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def check(recipe: Recipe) -> None:
    """Settings ayakit's FSDP2 path cannot run, as RecipeErrors."""
    t = recipe.train
    if t.compile:
        raise RecipeError("train.compile=true with ayakit's FSDP2 path is not supported: set train.compile=false")


def choose(recipe: Recipe, accelerator: Any, warn: Any = print) -> Sharding:
    """The sharding path: accelerate's own (FSDP on GPUs, DeepSpeed, DDP), ayakit's FSDP2, or none."""
    kind = str(accelerator.distributed_type).split(".")[-1]
    if kind in ("FSDP", "DEEPSPEED"):
        return Sharding(kind, "accelerate")
    if fsdp_requested(recipe):
        if accelerator.num_processes > 1:
            check(recipe)
            return Sharding(OWN, "ayakit")
        warn("FSDP was asked for, but this is one process: nothing to shard, training unsharded")
    if accelerator.num_processes > 1:
        return Sharding("DDP", "accelerate")
    return Sharding("none", "-")


def unit_classes(model: torch.nn.Module) -> list[str]:
    """Class names of the FSDP units: accelerate's FSDP_TRANSFORMER_CLS_TO_WRAP, else the model's blocks."""
    named = os.environ.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "")
    names = [n.strip() for n in named.split(",") if n.strip()]
    return names or sorted(getattr(model, "_no_split_modules", None) or [])


def shard(wrapper: torch.nn.Module, model: torch.nn.Module, device: torch.device, plan: Sharding) -> None:
    """fully_shard every transformer block of `model`, then `wrapper` (the root, holding the rest)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    names = unit_classes(model)
    blocks = [m for m in model.modules() if type(m).__name__ in names]
    if not blocks:
        present = sorted({type(m).__name__ for m in model.modules()})
        raise RecipeError(f"FSDP: no module of class {names} in {type(model).__name__} (FSDP_TRANSFORMER_CLS_TO_WRAP "
                          f"or the model's _no_split_modules); its module classes: {present}")
    reshard = os.environ.get("FSDP_RESHARD_AFTER_FORWARD", "true").lower() != "false"
    # read before sharding: fully_shard swaps each unit's class for an FSDP subclass
    plan.units, plan.unit_count, plan.reshard_after_forward = sorted({type(b).__name__ for b in blocks}), \
        len(blocks), reshard
    mesh = init_device_mesh(device.type, (torch.distributed.get_world_size(),))
    for block in blocks:
        fully_shard(block, mesh=mesh, reshard_after_forward=reshard)
    fully_shard(wrapper, mesh=mesh, reshard_after_forward=reshard)
    plan.parameters = sum(p.numel() for p in wrapper.parameters())
    plan.local_parameters = sum(p.to_local().numel() for p in wrapper.parameters())


@contextlib.contextmanager
def no_gradient_sync(wrapper: Any) -> Iterator[None]:
    """Accumulate this micro-batch's gradients unreduced (FSDP2's no_sync); the last micro-batch reduces them."""
    wrapper.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        wrapper.set_requires_gradient_sync(True)


def _rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_state(path: Path, wrapper: Any, optimizer: Any, scheduler: Any) -> None:
    """Every process: its shards of the model and optimiser (DCP) and its scheduler and RNG states into path."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model_state, optim_state = get_state_dict(wrapper, optimizer)
    dcp.save({"model": model_state, "optimizer": optim_state}, checkpoint_id=str(path))
    rank = torch.distributed.get_rank()
    torch.save({"scheduler": scheduler.state_dict(), "rng": _rng_state()}, path / RANK_STATE.format(rank=rank))


def load_state(path: Path, wrapper: Any, optimizer: Any, scheduler: Any, warn: Any = print) -> None:
    """Restore what save_state wrote; a checkpoint from another number of processes keeps this one's RNG."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    path = Path(path)
    model_state, optim_state = get_state_dict(wrapper, optimizer)
    state = {"model": model_state, "optimizer": optim_state}
    dcp.load(state, checkpoint_id=str(path))
    set_state_dict(wrapper, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
    rank = torch.distributed.get_rank()
    mine = path / RANK_STATE.format(rank=rank)
    extra = torch.load(mine if mine.is_file() else path / RANK_STATE.format(rank=0), weights_only=False)
    scheduler.load_state_dict(extra["scheduler"])
    if mine.is_file():
        _set_rng_state(extra["rng"])
    else:
        warn(f"{path}: written by fewer processes than now; process {rank} keeps its own RNG state")


def full_state_dict(wrapper: Any) -> dict[str, torch.Tensor]:
    """The unsharded model state on the main process ({} elsewhere); every process must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(wrapper, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    # tied parameters (T5's shared embedding and lm_head) come back as separate copies; one tensor again, so
    # save_pretrained writes them once, as it does for an unsharded model
    first: dict[int, str] = {}
    for name, param in wrapper.named_parameters(remove_duplicate=False):
        owner = first.setdefault(id(param), name)
        if owner != name and owner in state and name in state:
            state[name] = state[owner]
    return state
