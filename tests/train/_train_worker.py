"""Subprocess entry for the DDP and kill-and-resume tests: train a micro model with 1 thread.

Usage: python _train_worker.py RUN_DIR RECIPE_YAML [--resume] [--kill-after-step N]
With --kill-after-step the process sends itself SIGKILL right after optimiser step N (a crash mid-training).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

torch.set_num_threads(1)


def main() -> None:
    from ayakit.recipe import load_recipe
    from ayakit.train.loop import train

    args = sys.argv[1:]
    run_dir, recipe_path = Path(args[0]), Path(args[1])
    resume = "--resume" in args
    if "--kill-after-step" in args:
        kill_at = int(args[args.index("--kill-after-step") + 1])
        seen = {"n": 0}

        def hook(optimizer, a, kw):  # noqa: ARG001
            seen["n"] += 1
            if seen["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        register_optimizer_step_post_hook(hook)
    train(load_recipe(recipe_path), run_dir, resume=resume)


if __name__ == "__main__":
    main()
