"""`ayakit eval` with the hf engine vs `--engine ctranslate2`, in one run: wall time, ratio, identical outputs.

Runs ayakit.eval.harness.evaluate (what `ayakit eval` and the runner's eval stages call) on one model, alternating
the engines (hf, ctranslate2, then reversed) for --repeats rounds, each into a fresh output folder (no cached
result is reused). Each timed run includes loading the model, as a command does; the CTranslate2 conversion is
done once before timing (it is cached beside the model). Prints seconds per run, the hf/ctranslate2 ratio within
each round (median and range), the share of item predictions identical between the engines per task, and the load
average beside every timed run.

    python bench/eval_engines.py runs/demo/model                       # the demo's generation tasks
    python bench/eval_engines.py runs/demo/model --tasks all --prompts 2 --max-items 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def rows(out: Path) -> dict[str, list]:
    return {p.stem: [json.loads(line)["prediction"] for line in p.read_text(encoding="utf-8").splitlines()]
            for p in sorted(out.glob("*.jsonl"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a model dir (e.g. runs/demo/model)")
    parser.add_argument("--tasks", default="gen",
                        help="gen: the suite's generation tasks (default); all: the whole suite; or comma-separated "
                             "task names")
    parser.add_argument("--suite", default="aya-mini")
    parser.add_argument("--languages", default=None, help="comma-separated (default: the suite's, ~100 for aya-mini)")
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--max-items", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--compute-type", default="float32")
    parser.add_argument("--repeats", type=int, default=2, help="rounds; each runs both engines (order alternates)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from ayakit.eval.harness import evaluate
    from ayakit.models.ct2 import CT2Backend

    CT2Backend(args.model, compute_type=args.compute_type, threads=args.threads)  # convert once, outside timing
    tasks = None
    if args.tasks not in ("all", "gen"):
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    languages = args.languages.split(",") if args.languages else None
    common = {"suite": args.suite, "tasks": tasks, "languages": languages, "prompts": args.prompts,
              "max_items": args.max_items, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory(prefix="ayakit-eval-engines-") as tmp:
        tmp = Path(tmp)
        if args.tasks == "gen":  # one untimed pass of the suite's task list to find its generation tasks
            probe = evaluate(str(args.model), tmp / "probe", **{**common, "max_items": 1, "prompts": 1,
                                                                 "languages": ["eng"]})
            common["tasks"] = [n for n, t in probe["tasks"].items() if t["kind"] == "generation"]
            common["suite"] = None
        print(f"model {args.model}; tasks {common['tasks'] or args.suite}; prompts {args.prompts}, max items "
              f"{args.max_items} per (task, language); batch {args.batch_size}; {args.threads} thread(s); "
              f"ctranslate2 {args.compute_type}")
        seconds: dict[str, list[float]] = {"hf": [], "ctranslate2": []}
        ratios, outs = [], {}
        for r in range(args.repeats):
            order = ["hf", "ctranslate2"] if r % 2 == 0 else ["ctranslate2", "hf"]
            took = {}
            for engine in order:
                out = tmp / f"{engine}-{r}"
                before = load()
                start = time.perf_counter()
                summary = evaluate(str(args.model), out, engine=engine,
                                   compute_type=args.compute_type if engine != "hf" else None, **common)
                took[engine] = time.perf_counter() - start
                seconds[engine].append(took[engine])
                outs[engine] = out
                n = sum(len(v) for v in rows(out).values())
                print(f"  round {r + 1} {engine:11s} {took[engine]:7.1f} s  {n} item predictions  "
                      f"({summary['engine']}; load average before {before}, after {load()})")
            ratios.append(took["hf"] / took["ctranslate2"])
        a, b = rows(outs["hf"]), rows(outs["ctranslate2"])
        print("identical predictions (last round):")
        for task in a:
            same = sum(x == y for x, y in zip(a[task], b.get(task, [])))
            print(f"  {task}: {same}/{len(a[task])}")
        print(f"hf {statistics.median(seconds['hf']):.1f} s, ctranslate2 "
              f"{statistics.median(seconds['ctranslate2']):.1f} s (medians); hf/ctranslate2 {statistics.median(ratios):.2f}x (range {min(ratios):.2f}-"
              f"{max(ratios):.2f} over {len(ratios)} rounds); load average now {load()}")


if __name__ == "__main__":
    main()
