"""The data build on datatrove: read + filter -> exact dedup -> plan -> scatter -> gather -> stats.

Each stage is a thin datatrove step (ayakit.data.steps, one module per stage) around the plain functions in
filters.py and mixture.py, run by datatrove's local, Slurm or Ray executor (ayakit.data.executors) with a fixed
task count and deterministic file names, so a killed build reruns only its unfinished tasks (datatrove's
completion markers) and every executor writes the same bytes.

Mixing is global, so it is a hash-keyed scatter/gather: the plan stage counts what survived the filters and
caps and decides, per sampling group, how many whole passes and which records (the smallest mix keys) get
one more copy; the scatter stage emits each copy keyed by hash(seed, id, copy) into the output shard that
key selects; the gather stage sorts each shard by that key. Memory per task is bounded by a batch, a bucket's
dedup keys (20 bytes per record of the bucket: raise data.tasks for more buckets) or one output shard; the plan
stage streams the buckets several times and holds about 20 * sqrt(k) keys per sampling group.

The read+filter tasks split a `files` source of several files by file, and the hub, embedded and parallel readers
by their units (files, (family, language) pairs, languages) through their `shard` option, so the inputs are read
once whatever the task count; any other source is one stream every task reads, each keeping every tasks-th batch.

Work files live in <run>/data/.work/ (data removed when the build finishes; logs and reports kept); the mixture is
<run>/data/shards-NNNNN-of-NNNNN.parquet, stats.json and manifest.json, each written atomically.
"""

from __future__ import annotations

import glob
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.dataset as pads
from loguru import logger

from ayakit.data.executors import make_executor
from ayakit.data.steps.base import Context, Step, num_shards
from ayakit.data.steps.dedup import DedupStep
from ayakit.data.steps.filter import FilterStep
from ayakit.data.steps.finalize import FinalizeStep
from ayakit.data.steps.gather import GatherStep
from ayakit.data.steps.minhash import minhash_pipelines
from ayakit.data.steps.plan import PlanStep
from ayakit.data.steps.scatter import ScatterStep
from ayakit.errors import DataError
from ayakit.io import fingerprint, manifest_matches, read_json, remove_stale_temporaries, write_json_atomic
from ayakit.recipe import Recipe
from ayakit.records import EXAMPLE_SCHEMA

STAGES = ("filter", "dedup", "plan", "scatter", "gather", "finalize")

Progress = Callable[[str, int, int], None]  # (stage, index, number of stages)


def _source_files_fingerprint(path: str | None) -> list:
    """Names, sizes and mtimes of a source's local files: a changed file invalidates the build."""
    if not path:
        return []
    p = Path(path).expanduser()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else \
        sorted(Path(f) for f in glob.glob(str(p), recursive=True))
    out = []
    for f in files[:10000]:
        st = f.stat()
        out.append([str(f), st.st_size, st.st_mtime_ns])
    return out


def build_inputs(recipe: Recipe) -> dict[str, Any]:
    """What decides the mixture's content: the data section (without how it is executed), the seed, the data
    dir, the local source files and the reader code version."""
    from importlib.metadata import PackageNotFoundError, version

    data = recipe.data.model_dump(mode="json")
    for key in ("executor", "executor_options", "tasks", "workers", "batch_size"):
        data.pop(key, None)
    try:
        ayakit_version = version("ayakit")
    except PackageNotFoundError:
        ayakit_version = "unknown"
    return {
        "data": data,
        "seed": recipe.seed,
        "data_dir": str(recipe.resolved_data_dir() or ""),
        "files": {s.name: fingerprint(_source_files_fingerprint(s.path)) for s in recipe.data.sources},
        "readers": {"ayakit": ayakit_version, "langid": fingerprint(_langid_tables())},
    }


def _langid_tables() -> dict:
    from ayakit.data.langid import tables

    return tables()


# ---- executors and the build -----------------------------------------------------------------------------

def _stage_tasks(ctx: Context) -> dict[str, int]:
    return {"filter": ctx.tasks, "dedup": ctx.buckets, "plan": 1, "scatter": ctx.buckets, "gather": ctx.shards,
            "finalize": 1}


STEP_TYPES: dict[str, type[Step]] = {"filter": FilterStep, "dedup": DedupStep, "plan": PlanStep,
                                      "scatter": ScatterStep, "gather": GatherStep, "finalize": FinalizeStep}


def _executors(ctx: Context, kind: str, workers: int, options: dict[str, Any]) -> list[tuple[str, Any]]:
    """One datatrove executor per stage, in order (Slurm stages depend on the previous one)."""
    tasks = _stage_tasks(ctx)
    plan: list[tuple[str, list, int]] = []
    for stage in STAGES:
        plan.append((stage, [STEP_TYPES[stage](ctx)], tasks[stage]))
        if stage == "dedup" and ctx.get_recipe().data.filters.dedup == "minhash":
            plan.extend(minhash_pipelines(ctx))
    out: list[tuple[str, Any]] = []
    prev = None
    for stage, pipeline, n in plan:
        try:
            prev = make_executor(kind, stage, pipeline, n, workers, str(ctx.work / "logs" / stage), prev, options)
        except TypeError as exc:
            raise DataError(f"data.executor_options {sorted(options)} do not fit the {kind} executor: {exc}") from None
        out.append((stage, prev))
    return out


def _prepare_work(ctx: Context, force: bool) -> None:
    """Start a fresh work dir unless the one there was made for the same inputs and task counts."""
    layout = {"inputs": fingerprint(ctx.inputs), "tasks": ctx.tasks, "buckets": ctx.buckets, "shards": ctx.shards}
    marker = ctx.work / "layout.json"
    same = marker.is_file() and read_json(marker) == layout
    remove_stale_temporaries(ctx.data_dir)  # a killed build's half-written shards (their writer is gone)
    if force or not same:
        shutil.rmtree(ctx.work, ignore_errors=True)
        for name in ("manifest.json", "stats.json"):
            (ctx.data_dir / name).unlink(missing_ok=True)
        for old in ctx.data_dir.glob("shards-*.parquet"):
            old.unlink()
    ctx.work.mkdir(parents=True, exist_ok=True)
    write_json_atomic(marker, layout)


def build(recipe: Recipe, run_dir: Path, force: bool = False, executor: str | None = None,
          progress: Progress | None = None) -> Path:
    """Build the mixture into run_dir/data (shards, stats.json, manifest.json); skip when the manifest matches.

    executor: local (default), slurm or ray; None uses recipe.data.executor. A Slurm build submits the stages
    as dependent jobs and returns at once; the manifest appears when the last job finishes.
    """
    run_dir = Path(run_dir).resolve()  # absolute: Slurm and Ray tasks may start elsewhere
    data_dir = run_dir / "data"
    inputs = build_inputs(recipe)
    if not force and manifest_matches(data_dir, inputs):
        remove_stale_temporaries(data_dir)  # left by a killed build of other inputs before this one finished
        return data_dir
    kind = executor or recipe.data.executor
    tasks = recipe.data.tasks
    ctx = Context(recipe=recipe.model_dump(mode="json"), run_dir=str(run_dir), tasks=tasks, buckets=tasks,
                  shards=num_shards(recipe), inputs=inputs)
    _prepare_work(ctx, force)
    logger.remove()  # datatrove logs per task under .work/logs; the console shows warnings and progress only
    logger.add(sys.stderr, level="WARNING", colorize=False)
    stages = _executors(ctx, kind, recipe.data.workers, dict(recipe.data.executor_options))
    if kind == "slurm":
        stages[-1][1].run()  # submits the whole chain through depends=
        return data_dir
    for i, (name, ex) in enumerate(stages):
        if progress:
            progress(name, i, len(stages))
        ex.run()
        incomplete = ex.get_incomplete_ranks()
        if incomplete:
            raise DataError(f"data build stage {name!r}: tasks {incomplete} did not finish; "
                            f"see {ctx.work / 'logs' / name / 'logs'}")
    if progress:
        progress("done", len(stages), len(stages))
    return data_dir


# ---- reading a built mixture -----------------------------------------------------------------------------

def shard_paths(run_dir: Path) -> list[Path]:
    """The mixture's parquet shards, in order."""
    return sorted((Path(run_dir) / "data").glob("shards-*-of-*.parquet"))


def read_mixture(run_dir: Path) -> pads.Dataset:
    """The built mixture as a pyarrow dataset (EXAMPLE_SCHEMA)."""
    paths = shard_paths(run_dir)
    if not paths or not (Path(run_dir) / "data" / "manifest.json").is_file():
        raise DataError(f"{Path(run_dir) / 'data'}: no finished mixture (run `ayakit data build` first)")
    return pads.dataset([str(p) for p in paths], format="parquet", schema=EXAMPLE_SCHEMA)


def load_stats(run_dir: Path) -> dict:
    """The mixture's stats.json."""
    path = Path(run_dir) / "data" / "stats.json"
    if not path.is_file():
        raise DataError(f"{path}: not found (run `ayakit data build` first)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
