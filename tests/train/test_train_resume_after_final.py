"""A run killed after its final checkpoint resumes to a clean finish: losses recorded, no leftovers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ayakit.train import checkpoint as ckpt


@pytest.mark.parametrize("old_checkpoint", [False, True])
def test_resume_after_the_final_checkpoint(run_dir: Path, th, old_checkpoint: bool) -> None:
    from ayakit.train.loop import train

    recipe = th.micro_recipe(steps=6, checkpoint_every=3)
    out = train(recipe, run_dir)
    done = json.loads((out / "manifest.json").read_text())
    assert done["final_train_loss"] is not None
    # what SIGKILL while the final model was being saved leaves: no manifest, a half-written .final.* folder
    (out / "manifest.json").unlink()
    half = out / ".final.k1ll3d"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"half")
    (out / ".metrics.abc.tmp").write_text("{")
    if old_checkpoint:  # a checkpoint from before the losses were kept in it: they come from metrics.jsonl
        state_file = out / "checkpoints" / "step-6" / ckpt.STATE
        state = json.loads(state_file.read_text())
        state.pop("last_loss"), state.pop("last_val")
        state_file.write_text(json.dumps(state))
    out = train(recipe, run_dir, resume=True)
    again = json.loads((out / "manifest.json").read_text())
    assert again["steps"] == 6
    assert again["final_train_loss"] == pytest.approx(done["final_train_loss"])
    assert again["final_val_loss"] == pytest.approx(done["final_val_loss"])
    assert not list(out.glob(".final.*")) and not list(out.glob(".*.tmp"))
