"""DDP over gloo matches one process; a run killed with SIGKILL and resumed ends with identical weights."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ayakit.errors import DataError

WORKER = Path(__file__).with_name("_train_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _run(cmd: list[str], expect_kill: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    if expect_kill:
        assert proc.returncode == -9, (proc.returncode, proc.stderr[-2000:])
    else:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "model" / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r["split"] == "train"}


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


def _with_tokenizer(run: Path, tokenizer_dir: Path) -> Path:
    shutil.copytree(tokenizer_dir, run / "tokenizer")
    return run


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path: Path, examples, th,
                                                                          tokenizer_dir: Path) -> None:
    """Tolerance: per-step losses within 1e-5 relative, final weights within 1e-4 (float summation order)."""
    from ayakit.train.loop import train

    single = _with_tokenizer(th.write_mixture(tmp_path / "single", examples), tokenizer_dir)
    double = _with_tokenizer(th.write_mixture(tmp_path / "ddp", examples), tokenizer_dir)
    train(th.micro_recipe(batch_size=4, steps=4, eval_every=100), single)  # one process, 1 thread, here
    th.save_recipe(th.micro_recipe(batch_size=2, steps=4, eval_every=100), double)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
          str(double), str(double / "recipe.yaml")])

    manifest = json.loads((double / "model" / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["rows_per_step"] == 4
    a, b = _losses(single), _losses(double)
    assert a.keys() == b.keys() == {1, 2, 3, 4}
    for step in a:
        assert a[step] == pytest.approx(b[step], rel=1e-5)
    wa, wb = _weights(single), _weights(double)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.allclose(wa[name], wb[name], atol=1e-4, rtol=0), name
    # and they really trained: weights moved away from the initialisation
    assert a[4] < a[1]


def test_sigkill_mid_training_then_resume_gives_identical_weights(tmp_path: Path, examples, th,
                                                                  tokenizer_dir: Path) -> None:
    from ayakit.train.loop import train

    recipe = th.micro_recipe(steps=8, checkpoint_every=2, eval_every=4)
    straight = _with_tokenizer(th.write_mixture(tmp_path / "straight", examples), tokenizer_dir)
    crashed = _with_tokenizer(th.write_mixture(tmp_path / "crashed", examples), tokenizer_dir)
    th.save_recipe(recipe, crashed)
    train(recipe, straight)  # the uninterrupted run, here (1 thread, as the workers)
    # killed right after optimiser step 5: checkpoints step-2 and step-4 exist, step 5 is lost
    _run([sys.executable, str(WORKER), str(crashed), str(crashed / "recipe.yaml"), "--kill-after-step", "5"],
         expect_kill=True)
    ckpts = sorted(p.name for p in (crashed / "model" / "checkpoints").iterdir())
    assert ckpts == ["step-2", "step-4"], ckpts
    assert not (crashed / "model" / "manifest.json").exists()
    train(recipe, crashed, resume=True)  # resumed here, in a fresh Accelerator

    wa, wb = _weights(straight), _weights(crashed)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    steps = [json.loads(x)["step"] for x in (crashed / "model" / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["split"] == "train"]
    assert steps == list(range(1, 9))  # no duplicated or missing steps after the resume
    assert _losses(straight) == pytest.approx(_losses(crashed), rel=1e-6)


def test_corrupt_checkpoint_falls_back_to_older_one_and_is_kept(run_dir: Path, capsys, th) -> None:
    from ayakit.train.loop import train

    train(th.micro_recipe(steps=6, checkpoint_every=2, keep_checkpoints=2), run_dir)
    ckpt_root = run_dir / "model" / "checkpoints"
    assert sorted(p.name for p in ckpt_root.iterdir()) == ["step-4", "step-6"]
    weights = ckpt_root / "step-6" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))

    train(th.micro_recipe(steps=8, checkpoint_every=2, keep_checkpoints=2), run_dir, resume=True)
    out = capsys.readouterr().out
    assert "corrupt" in out and "step-4" in out
    corrupt = ckpt_root / "step-6.corrupt" / "model.safetensors"
    assert corrupt.read_bytes() == bytes(data)  # the damaged checkpoint is kept as it was, not overwritten
    assert json.loads((run_dir / "model" / "manifest.json").read_text())["steps"] == 8

    for path in ckpt_root.glob("step-*/model.safetensors"):
        if ".corrupt" not in str(path.parent.name):
            path.write_bytes(b"garbage")
    with pytest.raises(DataError, match="no usable checkpoint"):
        train(th.micro_recipe(steps=10, checkpoint_every=2), run_dir, resume=True)
