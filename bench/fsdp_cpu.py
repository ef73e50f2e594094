"""FSDP2 vs DDP on CPU processes: ayakit's own fully_shard path against accelerate's DDP, same run, same steps.

Both train the demo's tiny seq2seq model on the same mixture and token shards, with 2 processes over gloo and one
thread each, alternating DDP and FSDP2 runs (repeats interleaved, so a change in the machine's load hits both).
Prints training tokens per second of each (the manifest's, from the training steps only, not the start-up), the
FSDP/DDP ratio per pair with its median and range, the final losses, the parameters the main process holds, and
the load average beside every run.

    python bench/fsdp_cpu.py [--examples 2000] [--steps 20] [--repeats 2] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from train_throughput import demo_mixture  # noqa: E402


def launch(run: Path, processes: int, steps: int, fsdp: bool) -> dict:
    """One `ayakit train` under torchrun; its model manifest."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
           "-m", "ayakit.cli", "train", str(run), "--recipe", str(REPO / "recipes" / "demo.yaml"),
           f"train.steps={steps}", "train.max_minutes=null", "train.eval_every=100000",
           "train.checkpoint_every=100000", "train.threads=1", f"train.fsdp={str(fsdp).lower()}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads((run / "model" / "manifest.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--processes", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = demo_mixture(Path(tmp), args.examples)
        prep = [sys.executable, "-m", "ayakit.cli", "tokenize", str(base), "--recipe",
                str(REPO / "recipes" / "demo.yaml")]
        subprocess.run(prep, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        tps: dict[str, list[float]] = {"DDP": [], "FSDP2": []}
        for r in range(args.repeats):
            order = [False, True] if r % 2 == 0 else [True, False]
            for fsdp in order:
                run = Path(tmp) / f"r{r}-{'fsdp' if fsdp else 'ddp'}"
                shutil.copytree(base, run)
                m = launch(run, args.processes, args.steps, fsdp)
                name = "FSDP2" if fsdp else "DDP"
                assert m["sharding"]["path"] == ("fsdp2" if fsdp else "DDP"), m["sharding"]
                tps[name].append(m["tokens_per_s"])
                held = m["sharding"].get("main_process_parameters")
                print(f"repeat {r} {name:5s}: {m['tokens_per_s']:8,.0f} tokens/s  loss {m['final_train_loss']:.4f}"
                      + (f"  main process holds {held:,} of {m['sharding']['parameters']:,} parameters" if held
                         else "") + f"  load {os.getloadavg()[0]:.1f}")
                shutil.rmtree(run)
        ratios = [f / d for f, d in zip(tps["FSDP2"], tps["DDP"])]
        print(f"FSDP2 / DDP tokens/s: median {statistics.median(ratios):.2f} (range {min(ratios):.2f}-"
              f"{max(ratios):.2f}, {len(ratios)} pairs, {args.processes} processes x 1 thread)  "
              f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
