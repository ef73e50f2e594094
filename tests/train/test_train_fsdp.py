"""FSDP2 with 2 CPU processes over gloo: train, SIGKILL mid-run, resume; the weights equal one uninterrupted run,
and agree with one unsharded process after the same steps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from ayakit.errors import DataError
from ayakit.recipe import RecipeError

WORKER = Path(__file__).with_name("_train_worker.py")
# what `accelerate launch` with an FSDP config (recipes/accelerate/fsdp.yaml) puts in each process's environment
FSDP_ENV = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
            "FSDP_TRANSFORMER_CLS_TO_WRAP": "T5Block", "FSDP_STATE_DICT_TYPE": "SHARDED_STATE_DICT",
            "FSDP_RESHARD_AFTER_FORWARD": "true"}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **FSDP_ENV}


def _launch(run: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
           str(run), str(run / "recipe.yaml"), *extra]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)


def _losses(run: Path, split: str = "train") -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "model" / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss" if split == "train" else "val_loss"] for r in rows if r["split"] == split}


def test_fsdp_two_cpu_processes_kill_and_resume_match_an_uninterrupted_run(tmp_path: Path, examples, th,
                                                                           tokenizer_dir: Path) -> None:
    """Bit-exact: the resumed run repeats the same reduce-scatters on the same shards, restored from DCP exactly.

    Against one unsharded process with the same global batch: per-step losses within 1e-6 relative, weights within
    1e-5 (measured after 6 steps: 1.5e-7 and 2.4e-7 with Adafactor, 1.3e-7 and 2.7e-6 with AdamW); not bit-exact,
    because the reduce-scatter and the one process's backward add the two halves' gradients in another order.
    """
    from ayakit.models import load
    from ayakit.train.loop import train

    # 1 row x 2 micro-batches (the first without gradient sync) x 2 processes = the single process's 4 rows;
    # validation at steps 3 and 6: its rows do not split evenly over the processes, and every forward must pair up;
    # Adafactor (the paper's): its statistics are sharded too (train/adafactor.py)
    recipe = th.micro_recipe(batch_size=1, grad_accum=2, steps=6, checkpoint_every=2, eval_every=3,
                             optimizer="adafactor")
    runs = {}
    for name in ("straight", "crashed", "single"):
        runs[name] = th.write_mixture(tmp_path / name, examples)
        shutil.copytree(tokenizer_dir, runs[name] / "tokenizer")
    for name in ("straight", "crashed"):
        th.save_recipe(recipe, runs[name])
    done = _launch(runs["straight"])
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((runs["straight"] / "model" / "manifest.json").read_text())
    assert manifest["sharding"]["path"] == "fsdp2" and manifest["sharding"]["by"] == "ayakit"
    assert manifest["sharding"]["units"] == ["T5Block"] and manifest["sharding"]["unit_count"] == 2
    # really sharded: the main process holds about half of the parameters (shards of dim 0 round up)
    assert 0.45 < manifest["sharding"]["main_process_parameters"] / manifest["sharding"]["parameters"] < 0.55
    assert "sharding: FSDP2 by ayakit" in done.stdout
    ckpt = runs["straight"] / "model" / "checkpoints" / "step-6"
    assert {".metadata", "__0_0.distcp", "__1_0.distcp", "rank-0.pt", "rank-1.pt"} <= {p.name for p in ckpt.iterdir()}

    killed = _launch(runs["crashed"], "--kill-after-step", "3")
    assert killed.returncode != 0
    assert sorted(p.name for p in (runs["crashed"] / "model" / "checkpoints").iterdir()) == ["step-2"]
    resumed = _launch(runs["crashed"], "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout
    wa = load_file(str(runs["straight"] / "model" / "model.safetensors"))
    wb = load_file(str(runs["crashed"] / "model" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    assert _losses(runs["straight"]) == _losses(runs["crashed"])
    assert _losses(runs["straight"], "validation") == _losses(runs["crashed"], "validation")

    # one unsharded process, here, with the same global batch
    train(th.micro_recipe(batch_size=4, steps=6, checkpoint_every=2, eval_every=3, optimizer="adafactor"),
          runs["single"])
    ws = load_file(str(runs["single"] / "model" / "model.safetensors"))
    assert ws.keys() == wa.keys()
    for key in wa:
        assert torch.allclose(wa[key], ws[key], atol=1e-5, rtol=0), key
    la, ls = _losses(runs["straight"]), _losses(runs["single"])
    assert la.keys() == ls.keys() == set(range(1, 7))
    for step in la:
        assert la[step] == pytest.approx(ls[step], rel=1e-6)
    va, vs = _losses(runs["straight"], "validation"), _losses(runs["single"], "validation")
    assert va.keys() == vs.keys() == {3, 6}
    for step in va:
        assert va[step] == pytest.approx(vs[step], rel=1e-6)
    assert la[6] < la[1]  # it trained

    # resuming the sharded checkpoints in one unsharded process is refused, and they are not taken for corrupt
    with pytest.raises(DataError, match="torch.distributed.checkpoint shards"):
        train(th.micro_recipe(batch_size=4, steps=8, checkpoint_every=2, eval_every=3, optimizer="adafactor"),
              runs["straight"], resume=True)
    assert not list((runs["straight"] / "model" / "checkpoints").glob("*.corrupt*"))

    # the gathered model is a normal ayakit model directory (what `ayakit eval` loads)
    loaded = load(runs["straight"] / "model")
    assert loaded.arch == "seq2seq"
    for key, value in loaded.model.state_dict().items():
        if key in wa:
            assert torch.equal(value, wa[key]), key


def test_fsdp_refuses_what_it_cannot_run_and_one_process_says_it_is_unsharded(th, monkeypatch) -> None:
    from ayakit.train import sharding

    two = SimpleNamespace(distributed_type="DistributedType.MULTI_CPU", num_processes=2)
    one = SimpleNamespace(distributed_type="DistributedType.NO", num_processes=1)
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    assert sharding.choose(th.micro_recipe(), two).path == "DDP"
    assert sharding.choose(th.micro_recipe(fsdp=True), two).path == "fsdp2"
    with pytest.raises(RecipeError, match="compile"):
        sharding.choose(th.micro_recipe(fsdp=True, compile=True), two)
    said = []
    assert sharding.choose(th.micro_recipe(fsdp=True), one, warn=said.append).path == "none"
    assert "one process" in said[0]
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # an accelerate FSDP config asks for it as well
    assert sharding.choose(th.micro_recipe(), two).path == "fsdp2"
