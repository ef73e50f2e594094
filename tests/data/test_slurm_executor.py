"""A real single-node Slurm cluster (scripts/slurm_local.sh): the demo-smoke mixture and its token shards built with
`data.executor: slurm` are byte-identical to the local build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ayakit.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm_local.sh"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory):
    """Start the throwaway cluster; skip (saying why) where it cannot run."""
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster needs root (its daemons run as SlurmUser=root)")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        pytest.skip("no slurmctld and no apt-get to install Debian's slurm packages")
    work = tmp_path_factory.mktemp("slurm")
    up = subprocess.run(["bash", str(SCRIPT), "up", str(work)], capture_output=True, text=True, timeout=600)
    if up.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "down", str(work)], capture_output=True, timeout=60)
        pytest.skip(f"a local Slurm cluster could not start here: {up.stderr.strip()[-500:]}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(work / "slurm.conf")
    yield work
    subprocess.run(["bash", str(SCRIPT), "down", str(work)], capture_output=True, timeout=60)
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


def _wait_for(path: Path, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        queued = subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip()
        if not queued and not path.is_file():
            time.sleep(2)  # the last job may have just written it
            if not path.is_file():
                raise AssertionError(f"the Slurm jobs ended without writing {path}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {path}")
        time.sleep(2)


def _files(directory: Path, pattern: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob(pattern))}


def test_slurm_build_and_tokenize_are_byte_identical_to_local(slurm: Path, tmp_path: Path) -> None:
    from ayakit.data.pipeline import build
    from ayakit.train.tokenize import tokenize
    from ayakit.train.tokenizer import build_tokenizer

    recipe = load_recipe(REPO / "recipes" / "demo-smoke.yaml", ["data.tasks=2", "data.shard_size=400"])
    local, remote = tmp_path / "local", tmp_path / "slurm"
    build(recipe, local)
    build_tokenizer(recipe, local)
    tokenize(recipe, local)

    options = {"venv_path": f"{sys.prefix}/bin/activate", "partition": "cpu", "mem_per_cpu_gb": 1,
               "time": "00:30:00"}
    on_slurm = recipe.model_copy(update={"data": recipe.data.model_copy(
        update={"executor": "slurm", "executor_options": options})})
    build(on_slurm, remote)  # submits the dependent stage jobs and returns
    _wait_for(remote / "data" / "manifest.json")
    shutil.copytree(local / "tokenizer", remote / "tokenizer")
    tokenize(on_slurm, remote)  # waits for its array job

    data_local, data_remote = _files(local / "data", "shards-*.parquet"), _files(remote / "data", "shards-*.parquet")
    assert len(data_local) == 2 and data_local == data_remote
    tok_local, tok_remote = _files(local / "tokens", "*-0000*.*"), _files(remote / "tokens", "*-0000*.*")
    assert len(tok_local) == 8 and tok_local == tok_remote  # train + validation, .tok + .idx, two shards
    logs = list((remote / "tokens" / ".work" / "logs").rglob("slurm_logs/*.out"))
    assert logs, "the tokenize tasks ran as Slurm jobs"
