"""Benchmark (not a test): ayakit's data build vs `datasets.interleave_datasets` on synthetic file sources.

For 1e5 and 1e6 input examples (three Parquet sources, weights 5 / 2 / 3, budget = the input size):
examples/s and peak RSS (of the process tree) for each method, the speed ratio, and each method's worst
error against the requested source shares. Each run is a fresh subprocess, so peak memory is its own.

    .venv/bin/python bench/data_build.py [--sizes 100000 1000000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WEIGHTS = {"web": 5.0, "human": 2.0, "translated": 3.0}
FRACTIONS = {"web": 0.6, "human": 0.1, "translated": 0.3}  # of the input examples
LANGS = ["eng", "swa", "fra", "yor", "hin", "zho", "ara", "ibo", "tel", "vie"]


def make_corpus(root: Path, n: int) -> None:
    """Write the three sources as Parquet files (synthetic, distinct rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, frac in FRACTIONS.items():
        rows = int(n * frac)
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        step = 200_000
        for part, start in enumerate(range(0, rows, step)):
            idx = range(start, min(rows, start + step))
            pq.write_table(pa.table({
                "inputs": [f"{name} question number {i}: what is {i} plus {i % 97}?" for i in idx],
                "targets": [f"The answer to {name} {i} is {i + i % 97}." for i in idx],
                "language": [LANGS[i % len(LANGS)] for i in idx],
                "dataset": [f"{name}_{i % 4}" for i in idx],
            }), d / f"part-{part:03d}.parquet")


def run_ayakit(root: Path, n: int, workers: int) -> dict:
    """Build the mixture with ayakit's datatrove pipeline; return wall time and realised shares."""
    from ayakit.data import pipeline
    from ayakit.recipe import recipe_from_dict

    recipe = recipe_from_dict({"name": "bench", "seed": 1, "data": {
        "budget": n, "shard_size": 50_000, "tasks": workers, "workers": workers,
        "filters": {"langid": False, "dedup": "exact"},
        "sources": [{"name": k, "type": "files", "path": str(root / k), "weight": w} for k, w in WEIGHTS.items()],
    }})
    t0 = time.perf_counter()
    pipeline.build(recipe, root / "run", force=True)
    wall = time.perf_counter() - t0
    stats = pipeline.load_stats(root / "run")
    return {"wall": wall, "total": stats["total"], "shares": stats["realised"]["source"]}


def run_interleave(root: Path, n: int) -> dict:
    """The same mixing with HF datasets: interleave_datasets(probabilities=...) and write Parquet."""
    import datasets

    datasets.disable_progress_bars()
    t0 = time.perf_counter()
    parts = []
    for name in WEIGHTS:
        files = sorted(str(p) for p in (root / name).glob("*.parquet"))
        ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(root / "hf-cache"))
        parts.append(ds.add_column("source", [name] * ds.num_rows))
    total_w = sum(WEIGHTS.values())
    mixed = datasets.interleave_datasets(parts, probabilities=[w / total_w for w in WEIGHTS.values()], seed=1,
                                         stopping_strategy="all_exhausted")
    mixed = mixed.select(range(min(n, mixed.num_rows)))
    mixed.to_parquet(str(root / "interleaved.parquet"))
    wall = time.perf_counter() - t0
    counts = {name: 0 for name in WEIGHTS}
    for s in mixed["source"]:
        counts[s] += 1
    total = sum(counts.values())
    return {"wall": wall, "total": total, "shares": {k: v / total for k, v in counts.items()}}


def one(method: str, n: int, workers: int, root: Path) -> None:
    """Child process: run one method on a corpus made by another process, print JSON with this process tree's
    peak RSS (ru_maxrss is a high-water mark inherited across fork: the corpus is not made here)."""
    out = run_ayakit(root, n, workers) if method == "ayakit" else run_interleave(root, n)
    out["rss_self_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["rss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(out))


def main() -> None:
    """Run both methods at each size and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--one", nargs=3, metavar=("METHOD", "N", "DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--make", nargs=2, metavar=("N", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one(args.one[0], int(args.one[1]), args.workers, Path(args.one[2]))
        return
    if args.make:
        make_corpus(Path(args.make[1]), int(args.make[0]))
        return
    total_w = sum(WEIGHTS.values())
    requested = {k: w / total_w for k, w in WEIGHTS.items()}
    print(f"requested shares: {requested}; corpus fractions {FRACTIONS}; budget = input size")
    print(f"{'n':>9} {'method':>10} {'examples/s':>11} {'peak RSS MiB':>13} {'max share err (pp)':>19} {'rows':>9}")
    for n in args.sizes:
        res = {}
        for method in ("ayakit", "interleave"):
            with tempfile.TemporaryDirectory(prefix="ayakit-bench-") as tmp:
                subprocess.run([sys.executable, __file__, "--make", str(n), tmp], check=True)
                proc = subprocess.run([sys.executable, __file__, "--one", method, str(n), tmp,
                                       "--workers", str(args.workers)], capture_output=True, text=True, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            res[method] = r
            err = max(abs(r["shares"].get(k, 0) - v) for k, v in requested.items()) * 100
            peak = max(r["rss_self_mb"], r["rss_children_mb"])
            print(f"{n:>9} {method:>10} {n / r['wall']:>11,.0f} {peak:>13,.0f} {err:>19.3f} {r['total']:>9,}")
        print(f"{n:>9} {'ratio':>10} ayakit is {res['interleave']['wall'] / res['ayakit']['wall']:.2f}x "
              f"the speed of interleave_datasets")


if __name__ == "__main__":
    main()
