"""Scale: data build, tokenize and 20 training steps at growing mixture sizes, each stage in its own process.

A synthetic `files` source (Parquet files of 100k rows) with a realistic length distribution: inputs and targets
drawn log-normally from tens to ~1,000 tokens (median ~60 / ~30 words, capped at 1,000). Per size and stage it
prints peak RSS (the stage process, from wait4), wall time, throughput and, for training, the time from train()
to the first finished step (manifest `seconds_to_first_step`). Beside the tokenize stage it runs
`datasets.Dataset.map` with the same tokenizer and batch size (1,000) on the same mixture in its own process,
repeats alternating (ayakit, datasets, ayakit, ...), and prints the ratio of tokens/s with its spread.

Goals (issue 12): training peak RSS within +10% and time to first step within 1.5x from the smallest to the
largest size; tokenize tokens/s per worker >= datasets.map's with flat memory.

    python bench/scale.py [--sizes 1e4 1e5 1e6] [--steps 20] [--repeats 2] [--repeat-up-to 1e5] [--work DIR]

The tokenizer is trained once (on the smallest mixture) and copied into every run, so the stages measured are the
ones that stream; the model is the demo's tiny seq2seq preset with 1024/1024 lengths and packed 1024-token rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROWS_PER_FILE = 100_000
WORDS = [a + b for a in ("ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "gu", "ba", "fe", "zo", "xi")
         for b in ("", "n", "ra", "li", "to", "ma", "sek", "dur")]


def synth(directory: Path, n: int, seed: int = 0) -> None:
    """n synthetic instruction pairs as Parquet files of ROWS_PER_FILE rows (languages eng/fra/swh/hin)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab = np.array(WORDS)
    langs = np.array(["eng", "fra", "swh", "hin"])
    for start in range(0, n, ROWS_PER_FILE):
        k = min(ROWS_PER_FILE, n - start)
        cols = {}
        for side, median in (("inputs", 60), ("targets", 30)):
            lengths = np.clip(rng.lognormal(np.log(median), 0.9, k).astype(int), 5, 1000)
            words = vocab[rng.integers(0, len(vocab), int(lengths.sum()))]
            ends = np.cumsum(lengths)
            cols[side] = [f"{start + i} " + " ".join(words[e - m:e]) for i, (e, m) in enumerate(zip(ends, lengths))]
        cols["language"] = langs[rng.integers(0, 4, k)].tolist()
        pq.write_table(pa.table(cols), directory / f"part-{start // ROWS_PER_FILE:05d}.parquet")


RECIPE = """name: scale
seed: 1
data:
  budget: {n}
  shard_size: {shard}
  tasks: {tasks}
  workers: 1
  filters: {{langid: false, max_input_chars: 100000, max_target_chars: 100000}}
  sources:
    - {{name: synth, type: files, path: {path}, license: CC0-1.0}}
tokenizer: {{vocab_size: 8000, max_sentences: 20000}}
model: {{arch: seq2seq, preset: tiny}}
train:
  max_source_length: 1024
  max_target_length: 1024
  pack_source_length: 1024
  pack_target_length: 1024
  batch_size: 1
  steps: {steps}
  optimizer: adamw
  lr: 0.001
  log_every: 1
  eval_every: 1000000
  checkpoint_every: 1000000
  validation_max_examples: 16
  threads: 1
eval: {{baseline: false}}
"""

DATASETS_MAP = r"""
import json, sys, time
import datasets
from transformers import AutoTokenizer
run, batch = sys.argv[1], int(sys.argv[2])
datasets.disable_progress_bars()
tok = AutoTokenizer.from_pretrained(run + "/tokenizer")
files = sorted(__import__("glob").glob(run + "/data/shards-*.parquet"))
t0 = time.perf_counter()
ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=run + "/hf-cache")
def enc(b):
    return {"src": tok(b["inputs"], add_special_tokens=False)["input_ids"],
            "tgt": tok(b["targets"], add_special_tokens=False)["input_ids"]}
out = ds.map(enc, batched=True, batch_size=batch, remove_columns=ds.column_names, num_proc=None)
n = sum(len(x) for col in ("src", "tgt") for b in out.iter(10000) for x in b[col])
print(json.dumps({"tokens": n, "seconds": time.perf_counter() - t0}))
"""


def measured(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Like run(), with the child's own peak RSS through a wrapper that reports it."""
    wrapper = [sys.executable, "-c", "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "print('__RSS__', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
               "sys.exit(r.returncode)", *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(wrapper, capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    rss = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("__RSS__")) / 1024
    return wall, rss, proc.stdout


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e4, 1e5, 1e6], help="mixture sizes (examples)")
    ap.add_argument("--steps", type=int, default=20, help="training steps per size")
    ap.add_argument("--repeats", type=int, default=2, help="alternating tokenize repeats (ayakit, datasets.map)")
    ap.add_argument("--train-repeats", type=int, default=2,
                    help="training runs per size, alternating over the sizes after every build (same load for all)")
    ap.add_argument("--repeat-up-to", type=float, default=1e5,
                    help="sizes above this get one tokenize round (each round of a large size takes long)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ayakit-scale"), help="scratch directory")
    ap.add_argument("--tokenize-workers", type=int, default=1,
                    help="data.workers for the tokenize stage (throughput is then per stage, not per worker)")
    ap.add_argument("--no-compare", action="store_true", help="skip datasets.map (a large size: time)")
    ap.add_argument("--skip-train", action="store_true", help="only data build and tokenize (a tokenize rerun)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--train-only", action="store_true",
                    help="only the training rows, on the run directories an earlier --keep run left in --work")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes)
    py = [sys.executable, "-m", "ayakit.cli"]
    env = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO / "src")}
    args.work.mkdir(parents=True, exist_ok=True)
    tokenizer = None
    table = []
    print(f"load average at start: {load()}", flush=True)
    for n in [] if args.train_only else sizes:
        run_dir = args.work / f"run-{n}"
        shutil.rmtree(run_dir, ignore_errors=True)
        src = args.work / f"synth-{n}"
        if not src.is_dir():
            synth(src, n)
        recipe = args.work / f"scale-{n}.yaml"
        recipe.write_text(RECIPE.format(n=n, shard=max(10_000, n // 10), tasks=max(1, min(8, n // ROWS_PER_FILE)),
                                        path=src, steps=args.steps))
        wall, rss, _ = measured([*py, "data", "build", str(recipe), "--run-dir", str(run_dir)], env)
        table.append((n, "data build", rss, wall, f"{n / wall:,.0f} examples/s", "", load()))
        print(table[-1], flush=True)
        if tokenizer is None:
            subprocess.run([*py, "tokenizer", "train", str(run_dir)], check=True, cwd=REPO, env={**os.environ, **env},
                           capture_output=True)
            tokenizer = args.work / "tokenizer"
            shutil.rmtree(tokenizer, ignore_errors=True)
            shutil.copytree(run_dir / "tokenizer", tokenizer)
        else:
            shutil.copytree(tokenizer, run_dir / "tokenizer")
        ours, theirs = [], []
        for _ in range(args.repeats if n <= args.repeat_up_to else 1):
            wall, rss, _ = measured([*py, "tokenize", str(run_dir), "--force",
                                     f"data.workers={args.tokenize_workers}"], env)
            totals = json.loads((run_dir / "tokens" / "manifest.json").read_text())["totals"]
            tokens = sum(t["source_tokens"] + t["target_tokens"] for t in totals.values())
            ours.append((tokens / wall, rss, wall))
            if args.no_compare:
                continue
            shutil.rmtree(run_dir / "hf-cache", ignore_errors=True)
            wall_d, rss_d, out = measured([sys.executable, "-c", DATASETS_MAP, str(run_dir), "1000"], env)
            d_tokens = json.loads(out.strip().splitlines()[-1])["tokens"]
            theirs.append((d_tokens / wall_d, rss_d, wall_d))
        shutil.rmtree(run_dir / "hf-cache", ignore_errors=True)
        best = min(ours, key=lambda x: x[2])
        workers = f"{args.tokenize_workers} worker{'s' if args.tokenize_workers > 1 else ''}"
        spread = ""
        if theirs:
            ratios = [a[0] / b[0] for a, b in zip(ours, theirs)]
            spread = f"ratio {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
        table.append((n, f"tokenize (ayakit, {workers})", best[1], best[2], f"{best[0]:,.0f} tokens/s", spread,
                      load()))
        print(table[-1], flush=True)
        if theirs:
            best_d = min(theirs, key=lambda x: x[2])
            table.append((n, "datasets.map (1 proc)", best_d[1], best_d[2], f"{best_d[0]:,.0f} tokens/s", "",
                          load()))
            print(table[-1], flush=True)
    trains: dict[int, list] = {n: [] for n in sizes}
    for _ in range(0 if args.skip_train else args.train_repeats):
        for n in sizes:
            run_dir = args.work / f"run-{n}"
            shutil.rmtree(run_dir / "model", ignore_errors=True)
            wall, rss, _ = measured([*py, "train", str(run_dir)], env)
            m = json.loads((run_dir / "model" / "manifest.json").read_text())
            trains[n].append((rss, wall, m["tokens_per_s"], m["seconds_to_first_step"], load()))
            print(n, "train", trains[n][-1], flush=True)
    for n in sizes if not args.skip_train else []:
        runs = trains[n]
        firsts = [r[3] for r in runs]
        table.append((n, f"train ({args.steps} steps, {len(runs)} runs)", max(r[0] for r in runs),
                      statistics.median(r[1] for r in runs), f"{statistics.median(r[2] for r in runs):,.0f} tokens/s",
                      f"first step {statistics.median(firsts):.1f} s ({min(firsts):.1f}-{max(firsts):.1f})",
                      runs[-1][4]))
    print("\n| examples | stage | peak RSS (MiB) | wall (s) | throughput | note | load avg |")
    print("|---|---|---|---|---|---|---|")
    for n, stage, rss, wall, thr, note, la in table:
        print(f"| {n:,} | {stage} | {rss:,.0f} | {wall:.1f} | {thr} | {note} | {la} |")
    train_rows = [r for r in table if r[1].startswith("train")]
    if len(train_rows) > 1:
        first, last = train_rows[0], train_rows[-1]
        print(f"\ntraining peak RSS {first[2]:.0f} -> {last[2]:.0f} MiB ({100 * (last[2] / first[2] - 1):+.1f}%); "
              f"time to first step: {first[5]} -> {last[5]}")
    if not (args.keep or args.train_only):
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
