"""The data build on datatrove: read + filter -> exact dedup -> plan -> scatter -> gather -> stats.

Each stage is a thin datatrove step around the plain functions in filters.py and mixture.py, run by datatrove's
local, Slurm or Ray executor with a fixed task count and deterministic file names, so a killed build reruns
only its unfinished tasks (datatrove's completion markers) and every executor writes the same bytes.

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
import math
import os
import re
import shutil
import signal
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from datatrove.executor import base as _dt_base
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.word_tokenizers import WordTokenizer
from loguru import logger

from ayakit import languages as L
from ayakit.data import filters as F
from ayakit.data import mixture as M
from ayakit.data.summary import REASONS, build_summary, heavily_repeated
from ayakit.errors import DataError
from ayakit.io import (atomic_path, fingerprint, manifest_matches, read_json, remove_stale_temporaries,
                       write_json_atomic, write_manifest)
from ayakit.recipe import Recipe
from ayakit.records import EXAMPLE_FIELDS, EXAMPLE_SCHEMA

WORK = ".work"
STAGES = ("filter", "dedup", "plan", "scatter", "gather", "finalize")
# Set to "stage:rank" to kill the build process right after that task wrote its outputs and before datatrove
# marks it complete: the fault-injection hook the resume tests use (a real crash at the worst moment).
CRASH_ENV = "AYAKIT_DATA_CRASH_AT"
INTERNAL = ("_src", "_dkey", "_rkey")

Progress = Callable[[str, int, int], None]  # (stage, index, number of stages)


def _quiet_task_logger(logging_dir, rank: int, local_rank: int = 0, node_rank: int = -1):
    """datatrove's per-task logger, writing to the task's log file only: the CLI shows progress bars instead."""
    logger.remove()
    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    fmt = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"
    # the console gets nothing: a failing task's error reaches the caller as the exception itself (the CLI
    # prints user errors as one line); the full log stays in the task's log file
    logger.add(sys.stderr, level="CRITICAL", format=fmt, colorize=False)
    logger.add(logfile, level="DEBUG", format=fmt, colorize=False)
    return logfile


def _quiet_close_task_logger(logfile) -> None:
    """Close a task's log file; the console stays at WARNING (datatrove would reset it to INFO)."""
    logger.complete()
    logger.remove()
    logger.add(sys.stderr, level="WARNING", colorize=False)
    logfile.close()


# Patched at import so that pool workers (which import this module to unpickle the steps) are quiet too.
_dt_base.add_task_logger = _quiet_task_logger
_dt_base.close_task_logger = _quiet_close_task_logger


# ---- layout and context ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Context:
    """What every step needs; plain and picklable (it travels to pool, Slurm and Ray workers)."""

    recipe: dict
    run_dir: str
    tasks: int  # read/filter tasks
    buckets: int  # dedup and scatter tasks
    shards: int  # output shards = gather tasks
    inputs: dict

    @property
    def data_dir(self) -> Path:
        return Path(self.run_dir) / "data"

    @property
    def work(self) -> Path:
        return self.data_dir / WORK

    def get_recipe(self) -> Recipe:
        return Recipe.model_validate(self.recipe)

    def shard_name(self, s: int) -> str:
        return f"shards-{s:05d}-of-{self.shards:05d}.parquet"


def num_shards(recipe: Recipe) -> int:
    """Output shards: the budget over data.shard_size, rounded up."""
    return max(1, math.ceil(recipe.data.budget / recipe.data.shard_size))


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


def _maybe_crash(stage: str, rank: int) -> None:
    if os.environ.get(CRASH_ENV) == f"{stage}:{rank}":
        os.kill(os.getpid(), signal.SIGKILL)


def _attempt(ctx: Context, stage: str, rank: int) -> None:
    """Record that a task started (the resume tests count attempts per task)."""
    d = ctx.work / "attempts"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"{stage}-{rank:05d}", "a", encoding="utf-8") as fh:
        fh.write("x")


class _BucketWriters:
    """Parquet writers for one task's outputs, one per bucket, renamed into place only on close()."""

    def __init__(self, directory: Path, name: Callable[[int], str], schema: pa.Schema) -> None:
        self.directory, self.name, self.schema = directory, name, schema
        self.writers: dict[int, tuple[pq.ParquetWriter, Path]] = {}
        directory.mkdir(parents=True, exist_ok=True)

    def write(self, bucket: int, table: pa.Table) -> None:
        if bucket not in self.writers:
            final = self.directory / self.name(bucket)
            tmp = final.with_name(f".{final.name}.tmp")
            self.writers[bucket] = (pq.ParquetWriter(tmp, self.schema), final)
        self.writers[bucket][0].write_table(table.cast(self.schema))

    def close(self) -> None:
        for writer, final in self.writers.values():
            writer.close()
            os.replace(final.with_name(f".{final.name}.tmp"), final)
        self.writers = {}


class _Step(PipelineStep):
    """A datatrove step that runs one ayakit stage for its rank (it reads and writes files, not Documents)."""

    type = "ayakit"
    stage = ""

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        _attempt(self.ctx, self.stage, rank)
        with self.track_time(unit="task"):
            self.work(rank)
        _maybe_crash(self.stage, rank)
        yield from ()

    def work(self, rank: int) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


# ---- stage 1: read + filter ------------------------------------------------------------------------------

FILTERED_SCHEMA = pa.schema([*EXAMPLE_SCHEMA, pa.field("_src", pa.int32()), pa.field("_dkey", pa.uint64())])


class FilterStep(_Step):
    """Read every source (this task's batches), run the row filters, bucket the rows by their dedup key."""

    stage = name = "filter"

    def work(self, rank: int) -> None:
        ctx, recipe = self.ctx, self.ctx.get_recipe()
        cfg = recipe.data.filters
        out_dir = ctx.work / "filtered" / f"task-{rank:05d}"
        writers = _BucketWriters(out_dir, lambda b: f"bucket-{b:05d}.parquet", FILTERED_SCHEMA)
        counts: dict[str, F.FilterCounts] = {}
        report: dict[str, Any] = {"skipped_sources": {}, "errors": {}, "dropped_languages": {}, "unselected": {},
                                  "read": {}, "skipped_rows": {}}
        for si, spec in enumerate(recipe.data.sources):
            if spec.weight == 0:
                continue
            read = errors = 0
            for source, sharded in _task_sources(spec, recipe, rank, ctx.tasks):
                if source.skipped_reason:
                    report["skipped_sources"][spec.name] = source.skipped_reason
                    continue
                for table in _task_batches(source, sharded, rank, ctx.tasks, recipe.data.batch_size):
                    read += table.num_rows
                    self._filter(table, si, cfg, counts, writers)
                # a shared stream is read by every task: only task 0 reports its malformed lines
                errors += source.errors if sharded or rank == 0 else 0
                if sharded or rank == 0:
                    why = report["skipped_rows"].setdefault(spec.name, {})
                    for reason, n in source.skipped.items():
                        why[reason] = why.get(reason, 0) + n
                for key, per_lang in (("dropped_languages", source.dropped_languages),
                                      ("unselected", source.unselected)):
                    for lang, n in per_lang.items():
                        if sharded or rank == 0:
                            dropped = report[key].setdefault(spec.name, {})
                            dropped[lang] = dropped.get(lang, 0) + n
            report["read"][spec.name] = read
            report["errors"][spec.name] = errors
        writers.close()
        report["filters"] = {k: v.to_dict() for k, v in counts.items()}
        write_json_atomic(ctx.work / "reports" / f"filter-{rank:05d}.json", report)

    def _filter(self, table: pa.Table, si: int, cfg, counts: dict[str, F.FilterCounts],
                writers: _BucketWriters) -> None:
        """Row filters, then the dedup key decides the row's bucket."""
        ctx = self.ctx
        table = F.row_filters(table, cfg, counts)
        if not table.num_rows:
            return
        keys = M.record_keys(0, table.column("id").to_pylist()) if cfg.dedup == "none" else F.dedup_keys(table)
        table = table.append_column("_src", pa.array(np.full(table.num_rows, si, np.int32)))
        table = table.append_column("_dkey", pa.array(keys, pa.uint64()))
        bucket = keys % np.uint64(ctx.buckets)
        for b in np.unique(bucket):
            writers.write(int(b), table.filter(pa.array(bucket == b)))


def _task_sources(spec, recipe: Recipe, rank: int, tasks: int) -> list[tuple[Any, bool]]:
    """The Sources one filter task reads, each with whether it is this task's own shard: a `files` source of
    several files is split by file (task r reads files r, r + tasks, ...); a shardable reader (hub, embedded,
    parallel) reads only its units k with k % tasks == r; any other source is one stream that every task reads,
    keeping every tasks-th batch. Either way the tasks together read each input once."""
    from ayakit.data.sources import open_source

    if spec.type == "files" and spec.path and tasks > 1:
        from ayakit.data.sources.files import discover

        files = discover(spec.path, f"source {spec.name!r}")
        if len(files) > 1:
            return [(open_source(spec.model_copy(update={"path": str(f)}), recipe), True) for f in files[rank::tasks]]
    source = open_source(spec, recipe)
    if source.shardable and tasks > 1:
        source.shard = (rank, tasks)
        return [(source, True)]
    return [(source, False)]


def _task_batches(source, sharded: bool, rank: int, tasks: int, batch_size: int):
    """This task's batches of a source as EXAMPLE_SCHEMA tables."""
    try:
        for bi, batch in enumerate(source.iter_batches(batch_size)):
            if sharded or bi % tasks == rank:
                yield pa.Table.from_batches([batch]).select(list(EXAMPLE_FIELDS))
    except DataError:
        # one empty file of a split source is not an empty source: the plan stage checks the source as a whole
        if not (sharded and source.rows_read == 0):
            raise


# ---- stage 2: exact dedup (and MinHash near-dedup) -------------------------------------------------------

DEDUP_SCHEMA = pa.schema([*EXAMPLE_SCHEMA, pa.field("_rkey", pa.uint64())])


def _bucket_inputs(ctx: Context, b: int) -> list[Path]:
    return sorted((ctx.work / "filtered").glob(f"task-*/bucket-{b:05d}.parquet"))


class DedupStep(_Step):
    """One dedup bucket: keep the first of each exact duplicate (by source order, then id), add record keys."""

    stage = name = "dedup"

    def work(self, rank: int) -> None:
        ctx, recipe = self.ctx, self.ctx.get_recipe()
        files = _bucket_inputs(ctx, rank)
        dedup = recipe.data.filters.dedup != "none"
        keep = None
        if dedup and files:
            # 20 bytes per row of the bucket: dedup key, source index, id key (rows in the order written below)
            dkeys, srcs, id_keys = [], [], []
            for f in files:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=recipe.data.batch_size,
                                                            columns=["_dkey", "_src", "id"]):
                    dkeys.append(batch.column(0).to_numpy())
                    srcs.append(batch.column(1).to_numpy())
                    id_keys.append(M.record_keys(0, batch.column(2).to_pylist()))
            keep = F.first_of_duplicates(np.concatenate(dkeys), np.concatenate(srcs), np.concatenate(id_keys))
            del dkeys, srcs, id_keys
        removed: Counter = Counter()
        out = ctx.work / "dedup" / f"bucket-{rank:05d}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        offset = 0
        with atomic_path(out) as tmp:
            writer = pq.ParquetWriter(tmp, DEDUP_SCHEMA)
            for f in files:
                pf = pq.ParquetFile(f)
                for batch in pf.iter_batches(batch_size=recipe.data.batch_size):
                    table = pa.Table.from_batches([batch])
                    n = table.num_rows
                    if keep is not None:
                        table, r = F.keep_rows(table, keep[offset:offset + n])
                        removed.update(r)
                    offset += n
                    rkeys = M.record_keys(recipe.seed, table.column("id").to_pylist())
                    table = table.select(list(EXAMPLE_FIELDS)).append_column("_rkey", pa.array(rkeys, pa.uint64()))
                    writer.write_table(table)
            writer.close()
        report = {"exact_dedup": F.FilterCounts(sum(removed.values()), removed).to_dict()}
        write_json_atomic(ctx.work / "reports" / f"dedup-{rank:05d}.json", report)


# ---- MinHash near-dedup (optional): datatrove's stages over the dedup buckets ------------------------------

class MultilingualWordTokenizer(WordTokenizer):
    """datatrove word tokenizer for every language: characters of scripts written without spaces (the table in
    resources/scripts.yaml) are single tokens (datatrove's default English tokenizer needs spaCy, splits on spaces)."""

    def __init__(self) -> None:
        super().__init__("multilingual")

    def word_tokenize(self, text: str) -> list[str]:
        return F.words(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [p for p in re.split(r"(?<=[.!?。！？])\s*", text) if p]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in F.word_pattern().finditer(text)]


class BucketDocuments(PipelineStep):
    """Reads one dedup bucket as datatrove Documents (inputs + targets), ids = row numbers in the bucket."""

    type = "ayakit"
    name = "bucket reader"

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        path = self.ctx.work / "dedup" / f"bucket-{rank:05d}.parquet"
        row = 0
        for batch in pq.ParquetFile(path).iter_batches(columns=["inputs", "targets"]):
            for x, y in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
                yield Document(text=f"{x}\n{y}", id=str(row))
                row += 1


def minhash_config(recipe: Recipe):
    """datatrove's MinHash settings from the recipe (14 bands x 8 hashes: ~0.7 Jaccard)."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig

    return MinhashConfig(n_grams=recipe.data.filters.minhash_ngrams, num_buckets=14, hashes_per_bucket=8,
                         seed=recipe.seed)


def minhash_pipelines(ctx: Context) -> list[tuple[str, list, int]]:
    """(stage, pipeline, tasks) of datatrove's three MinHash stages: signatures, buckets, clusters."""
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupSignature

    cfg = minhash_config(ctx.get_recipe())
    root = ctx.work / "minhash"
    return [
        ("minhash-signatures", [BucketDocuments(ctx), MinhashDedupSignature(
            output_folder=str(root / "signatures"), config=cfg, language=MultilingualWordTokenizer())], ctx.buckets),
        ("minhash-buckets", [MinhashDedupBuckets(input_folder=str(root / "signatures"),
                                                 output_folder=str(root / "buckets"), config=cfg)], cfg.num_buckets),
        ("minhash-clusters", [MinhashDedupCluster(input_folder=str(root / "buckets"),
                                                  output_folder=str(root / "remove"), config=cfg)], 1),
    ]


def near_duplicates(ctx: Context, bucket: int, rows: int) -> np.ndarray:
    """Mask of the bucket's rows that MinHash marked as near-duplicates (all False without MinHash)."""
    mask = np.zeros(rows, dtype=bool)
    path = ctx.work / "minhash" / "remove" / f"{bucket:06d}.remove"
    if path.is_file():
        mask[np.fromfile(path, dtype="<u4")] = True
    return mask


# ---- stage 3: plan ---------------------------------------------------------------------------------------

def _group_codes(*cols: pa.ChunkedArray) -> tuple[np.ndarray, list[tuple]]:
    """Integer group ids for the combinations of several string columns, and the combination of each id."""
    joined = pc.binary_join_element_wise(*cols, M.SEP) if len(cols) > 1 else cols[0]
    enc = pc.dictionary_encode(joined).combine_chunks()
    names = [tuple(v.split(M.SEP)) for v in enc.dictionary.to_pylist()]
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), names


class _Survivors:
    """Streams the dedup buckets' group codes and record keys batch by batch, as often as the plan needs:
    the plan stage never holds one value per record."""

    def __init__(self, ctx: Context, batch_size: int) -> None:
        self.ctx, self.batch_size = ctx, batch_size
        self.dl_index: dict[tuple, int] = {}  # (source, dataset, language) -> code, filled by the first pass

    def batches(self):
        """(group codes, record keys, not-a-near-duplicate mask) per batch, in a fixed order."""
        cols = ["source", "dataset", "language", "_rkey"]
        for b in range(self.ctx.buckets):
            pf = pq.ParquetFile(self.ctx.work / "dedup" / f"bucket-{b:05d}.parquet")
            near = near_duplicates(self.ctx, b, pf.metadata.num_rows)
            offset = 0
            for batch in pf.iter_batches(batch_size=self.batch_size, columns=cols):
                t = pa.Table.from_batches([batch])
                local, names = _group_codes(t.column("source"), t.column("dataset"), t.column("language"))
                remap = np.array([self.dl_index.setdefault(n, len(self.dl_index)) for n in names], dtype=np.int64)
                codes = remap[local] if len(names) else np.zeros(0, np.int64)
                yield codes, t.column("_rkey").to_numpy(), ~near[offset:offset + t.num_rows]
                offset += t.num_rows


def _window(n: int, k: int) -> tuple[int, int]:
    """Key range that holds the k-th smallest of n uniform 64-bit keys with overwhelming probability."""
    p = k / n
    width = 10 * math.sqrt(p * (1 - p) / n) + 2 / n
    lo = int(max(0.0, p - width) * 2.0 ** 64)
    hi = int(min(1.0, p + width) * 2.0 ** 64)
    return min(lo, M.KEY_MAX), min(hi, M.KEY_MAX + 1)


def select_thresholds(passes: Callable[[], Any], counts: np.ndarray, wants: dict[int, int]) -> dict[int, int]:
    """Exact threshold per group g (its wants[g] smallest keys are below it), streaming.

    passes() yields (codes, keys, mask) per batch. One pass counts the keys below a window around each
    group's expected quantile and keeps only the keys inside it (about 20 * sqrt(k) per group); a group
    whose k-th key falls outside its window (probability ~1e-20) gets an exact second pass of its own."""
    out: dict[int, int] = {g: 0 for g, k in wants.items() if k <= 0}  # keep none
    wants = {g: k for g, k in wants.items() if 0 < k < counts[g]}
    if not wants:
        return out
    size = len(counts)
    lo = np.zeros(size, np.uint64)
    hi = np.zeros(size, np.uint64)
    to_end = np.zeros(size, bool)
    wanted = np.zeros(size, bool)
    for g, k in wants.items():
        a, b = _window(int(counts[g]), k)
        lo[g], hi[g], to_end[g], wanted[g] = a, min(b, M.KEY_MAX), b > M.KEY_MAX, True
    below = np.zeros(size, np.int64)
    inside_codes, inside_keys = [], []
    for codes, keys, mask in passes():
        sel = mask & wanted[codes]
        c, k = codes[sel], keys[sel]
        below += np.bincount(c[k < lo[c]], minlength=size)
        win = (k >= lo[c]) & ((k < hi[c]) | to_end[c])
        inside_codes.append(c[win])
        inside_keys.append(k[win])
    codes = np.concatenate(inside_codes) if inside_codes else np.zeros(0, np.int64)
    keys = np.concatenate(inside_keys) if inside_keys else np.zeros(0, np.uint64)
    order = np.lexsort((keys, codes))
    codes, keys = codes[order], keys[order]
    bounds = np.searchsorted(codes, np.arange(size + 1))
    missed = {}
    for g, k in wants.items():
        window = keys[bounds[g]:bounds[g + 1]]
        rank = k - int(below[g])
        if 0 < rank <= len(window):
            out[g] = int(window[rank - 1]) + 1
        else:
            missed[g] = k
    for g, k in missed.items():  # exact fallback: every key of the group
        keys_g = np.concatenate([keys_b[mask_b & (codes_b == g)] for codes_b, keys_b, mask_b in passes()])
        out[g] = M.threshold(keys_g, k)
    return out


def _thresholds_array(size: int, thresholds: dict[int, int]) -> list[int]:
    return [thresholds.get(g, M.KEY_MAX + 1) for g in range(size)]


class PlanStep(_Step):
    """Count what survived, apply caps, allocate the budget and pick each group's extra copies (streaming)."""

    stage = name = "plan"

    def work(self, rank: int) -> None:
        ctx, recipe = self.ctx, self.ctx.get_recipe()
        data, caps = recipe.data, recipe.data.caps
        src = _Survivors(ctx, data.batch_size)
        # pass 1: what survived dedup, per (source, dataset, language)
        n0: Counter = Counter()
        near_codes: Counter = Counter()
        for codes, _, alive in src.batches():
            n0.update(dict(zip(*np.unique(codes[alive], return_counts=True), strict=True)))
            near_codes.update(dict(zip(*np.unique(codes[~alive], return_counts=True), strict=True)))
        dl_names = list(src.dl_index)
        size_dl = len(dl_names)
        d_index: dict[tuple, int] = {}
        d_of_dl = np.array([d_index.setdefault(n[:2], len(d_index)) for n in dl_names], dtype=np.int64)
        d_names = list(d_index)
        counts_dl = np.array([n0.get(g, 0) for g in range(size_dl)], dtype=np.int64)

        # caps per (dataset, language), then per dataset among what is left: the smallest cap keys stay
        def pass_dl():
            for codes, keys, alive in src.batches():
                yield codes, M.derived_keys(keys, M.CAP_LANGUAGE), alive

        wants = {g: F.cap_limits(n[0], n[1], caps)[1] for g, n in enumerate(dl_names)}
        thr_dl = select_thresholds(pass_dl, counts_dl, {g: k for g, k in wants.items() if k is not None})
        thr_dl_list = _thresholds_array(size_dl, thr_dl)

        def after_dl():
            for codes, keys, alive in src.batches():
                alive = alive & _below_each(M.derived_keys(keys, M.CAP_LANGUAGE), codes, thr_dl_list)
                yield codes, keys, alive

        counts_d = np.zeros(len(d_names), dtype=np.int64)
        for codes, _, alive in after_dl():
            counts_d += np.bincount(d_of_dl[codes[alive]], minlength=len(d_names)) if size_dl else 0
        wants = {g: F.cap_limits(n[0], n[1], caps)[0] for g, n in enumerate(d_names)}

        def pass_d():
            for codes, keys, alive in after_dl():
                yield d_of_dl[codes], M.derived_keys(keys, M.CAP_DATASET), alive

        thr_d = select_thresholds(pass_d, counts_d, {g: k for g, k in wants.items() if k is not None})
        thr_d_list = _thresholds_array(len(d_names), thr_d)

        def after_caps():
            for codes, keys, alive in after_dl():
                d = d_of_dl[codes]
                yield codes, keys, alive & _below_each(M.derived_keys(keys, M.CAP_DATASET), d, thr_d_list)

        counts_final = np.zeros(size_dl, dtype=np.int64)
        for codes, _, alive in after_caps():
            counts_final += np.bincount(codes[alive], minlength=size_dl)
        near_removed: Counter = Counter()
        cap_removed: Counter = Counter()
        for g, (_, _, lang) in enumerate(dl_names):
            near_removed[lang] += int(near_codes.get(g, 0))
            cap_removed[lang] += int(counts_dl[g] - counts_final[g])
        # what is available per (source, dataset) and per language, and the plan
        reports = [read_json(p) for p in sorted((ctx.work / "reports").glob("filter-*.json"))]
        skipped = {k: v for r in reports for k, v in r["skipped_sources"].items()}
        sizes: dict[str, dict[str, int]] = {s.name: {} for s in data.sources if s.weight > 0 and s.name not in skipped}
        lang_sizes: dict[str, dict[str, dict[str, int]]] = {}
        for g, (source, ds, lang) in enumerate(dl_names):
            if counts_final[g]:
                sizes.setdefault(source, {})
                sizes[source][ds] = sizes[source].get(ds, 0) + int(counts_final[g])
                lang_sizes.setdefault(source, {}).setdefault(ds, {})[lang] = int(counts_final[g])
        plan = M.plan(recipe, sizes, lang_sizes, skipped)
        # each sampling group's whole passes, and which records get one copy more (the smallest mix keys)
        by_lang = data.temperature is not None
        names = dl_names if by_lang else d_names
        index = {name: g for g, name in enumerate(names)}
        counts_g = counts_final if by_lang else np.bincount(d_of_dl, weights=counts_final,
                                                             minlength=len(d_names)).astype(np.int64)

        def pass_mix():
            for codes, keys, alive in after_caps():
                yield (codes if by_lang else d_of_dl[codes]), M.derived_keys(keys, M.MIX), alive

        remainders = {}
        for gp in plan.groups:
            name = (gp.source, gp.dataset, gp.language) if by_lang else (gp.source, gp.dataset)
            remainders[index[name]] = gp.remainder
        thr_mix = select_thresholds(pass_mix, counts_g, remainders)
        groups: dict[str, list[int]] = {}
        for gp in plan.groups:
            g = index[(gp.source, gp.dataset, gp.language) if by_lang else (gp.source, gp.dataset)]
            groups[gp.key] = [gp.copies, thr_mix.get(g, 0 if gp.remainder == 0 else M.KEY_MAX + 1)]
        write_json_atomic(ctx.work / "plan.json", {
            "plan": plan.to_dict(), "by_language": by_lang, "groups": groups,
            "caps": {"dataset_language": {M.SEP.join(dl_names[g]): t for g, t in thr_dl.items()},
                     "dataset": {M.SEP.join(d_names[g]): t for g, t in thr_d.items()}},
            "caps_removed": F.FilterCounts(sum(cap_removed.values()), +cap_removed).to_dict(),
            "minhash_removed": F.FilterCounts(sum(near_removed.values()), +near_removed).to_dict(),
        })


# ---- stage 4: scatter ------------------------------------------------------------------------------------

SCATTER_SCHEMA = pa.schema([*EXAMPLE_SCHEMA, pa.field("_order", pa.uint64())])


def _lookup(names: list[str], table: dict[str, Any], default: Any) -> list[Any]:
    return [table.get(n, default) for n in names]


class ScatterStep(_Step):
    """One dedup bucket: apply caps, emit each record's copies keyed by hash(seed, id, copy) into its shard."""

    stage = name = "scatter"

    def work(self, rank: int) -> None:
        ctx = self.ctx
        plan = read_json(ctx.work / "plan.json")
        groups, by_lang = plan["groups"], plan["by_language"]
        cap_dl, cap_d = plan["caps"]["dataset_language"], plan["caps"]["dataset"]
        src = ctx.work / "dedup" / f"bucket-{rank:05d}.parquet"
        writers = _BucketWriters(ctx.work / "scatter" / f"bucket-{rank:05d}",
                                 lambda s: f"shard-{s:05d}.parquet", SCATTER_SCHEMA)
        pf = pq.ParquetFile(src)
        near = near_duplicates(ctx, rank, pf.metadata.num_rows)
        offset = 0
        for batch in pf.iter_batches(batch_size=self.ctx.get_recipe().data.batch_size):
            table = pa.Table.from_batches([batch])
            not_near = ~near[offset:offset + table.num_rows]
            offset += table.num_rows
            rkeys = table.column("_rkey").to_numpy()
            dl_codes, dl_names = _group_codes(table.column("source"), table.column("dataset"),
                                              table.column("language"))
            d_codes, d_names = _group_codes(table.column("source"), table.column("dataset"))
            alive = _under(M.derived_keys(rkeys, M.CAP_LANGUAGE), dl_codes, [M.SEP.join(n) for n in dl_names], cap_dl)
            alive &= _under(M.derived_keys(rkeys, M.CAP_DATASET), d_codes, [M.SEP.join(n) for n in d_names], cap_d)
            alive &= not_near
            codes, names = (dl_codes, dl_names) if by_lang else (d_codes, d_names)
            info = _lookup([M.SEP.join(n) for n in names], groups, [0, 0])
            base = np.array([c for c, _ in info], dtype=np.int64)[codes]
            extra = _below_each(M.derived_keys(rkeys, M.MIX), codes, [t for _, t in info])
            copies = np.where(alive, base + extra, 0)
            if not copies.any():
                continue
            idx = np.repeat(np.arange(len(copies)), copies)
            starts = np.repeat(np.cumsum(copies) - copies, copies)
            copy_no = np.arange(len(idx)) - starts
            order = M.derived_keys(rkeys[idx], M.ORDER, copy_no)
            out = table.select(list(EXAMPLE_FIELDS)).take(pa.array(idx))
            out = out.append_column("_order", pa.array(order, pa.uint64()))
            shard = order % np.uint64(ctx.shards)
            for s in np.unique(shard):
                writers.write(int(s), out.filter(pa.array(shard == s)))
        writers.close()


def _below_each(keys: np.ndarray, codes: np.ndarray, thresholds: list[int]) -> np.ndarray:
    """keys < thresholds[code] row by row, for thresholds up to 2**64 (which keeps every key)."""
    thr = np.array([min(t, M.KEY_MAX) for t in thresholds], dtype=np.uint64)
    keep_all = np.array([t > M.KEY_MAX for t in thresholds], dtype=bool)
    if not len(thresholds):
        return np.zeros(len(keys), dtype=bool)
    return (keys < thr[codes]) | keep_all[codes]


def _under(keys: np.ndarray, codes: np.ndarray, names: list[str], thresholds: dict[str, int]) -> np.ndarray:
    return _below_each(keys, codes, [thresholds.get(n, M.KEY_MAX + 1) for n in names])


# ---- stage 5: gather -------------------------------------------------------------------------------------

class GatherStep(_Step):
    """One output shard: every bucket's copies for it, sorted by their key, written atomically."""

    stage = name = "gather"

    def work(self, rank: int) -> None:
        ctx = self.ctx
        files = sorted((ctx.work / "scatter").glob(f"bucket-*/shard-{rank:05d}.parquet"))
        table = pa.concat_tables([pq.read_table(f) for f in files]) if files else SCATTER_SCHEMA.empty_table()
        table = table.sort_by([("_order", "ascending"), ("id", "ascending")]).select(list(EXAMPLE_FIELDS))
        with atomic_path(ctx.data_dir / ctx.shard_name(rank)) as tmp:
            pq.write_table(table.cast(EXAMPLE_SCHEMA), tmp)
        counts = {key: dict(Counter(table.column(key).to_pylist())) for key in ("source", "dataset", "kind", "language")}
        by_source: dict[str, dict[str, dict[str, int]]] = {}
        for key in ("language", "license"):  # a source that is all one language or licence shows in the report
            pairs = table.group_by(["source", key]).aggregate([([], "count_all")]).to_pylist()
            for row in pairs:
                by_source.setdefault(row["source"], {}).setdefault(key, {})[row[key]] = row["count_all"]
        write_json_atomic(ctx.work / "gathered" / f"shard-{rank:05d}.json",
                          {"rows": table.num_rows, "counts": counts, "by_source": by_source})


# ---- stage 6: finalize -----------------------------------------------------------------------------------

class FinalizeStep(_Step):
    """Merge the tasks' reports into stats.json, write the manifest, remove the work files."""

    stage = name = "finalize"

    def work(self, rank: int) -> None:
        ctx = self.ctx
        stats = merge_stats(ctx)
        stats["summary"] = build_summary(stats, ctx.get_recipe().data.languages)
        write_json_atomic(ctx.data_dir / "stats.json", stats)
        keep = {ctx.shard_name(s) for s in range(ctx.shards)}
        for old in ctx.data_dir.glob("shards-*.parquet"):
            if old.name not in keep:
                old.unlink()
        outputs = {"shards": sorted(keep), "stats": "stats.json"}
        write_manifest(ctx.data_dir, "data", ctx.inputs, outputs, counts={"total": stats["total"]},
                       recipe=ctx.get_recipe().name, warnings=stats["summary"]["warnings"])
        for sub in ("filtered", "dedup", "scatter", "minhash"):
            shutil.rmtree(ctx.work / sub, ignore_errors=True)


def merge_stats(ctx: Context) -> dict[str, Any]:
    """stats.json from the task reports: requested vs realised shares, counts, repetition, filters."""
    plan_doc = read_json(ctx.work / "plan.json")
    plan = plan_doc["plan"]
    filters: dict[str, F.FilterCounts] = {}
    reports = [read_json(p) for p in sorted((ctx.work / "reports").glob("filter-*.json"))]
    errors: dict[str, int] = {}
    skipped_rows: dict[str, Counter] = {}
    dropped: Counter = Counter()
    unselected: Counter = Counter()
    dropped_by_source: dict[str, dict[str, dict[str, int]]] = {REASONS["language"]: {},
                                                                REASONS["language_selection"]: {}}
    for r in reports:
        for name, why in r.get("skipped_rows", {}).items():
            skipped_rows.setdefault(name, Counter()).update(why)
        for name, d in r["filters"].items():
            filters.setdefault(name, F.FilterCounts()).merge(F.FilterCounts.from_dict(d))
        for k, v in r["errors"].items():  # each file (or shared stream) is reported by one task only
            errors[k] = errors.get(k, 0) + v
        for reason, key, total in ((REASONS["language"], "dropped_languages", dropped),
                                   (REASONS["language_selection"], "unselected", unselected)):
            for name, langs in r.get(key, {}).items():
                total.update(langs)
                per = dropped_by_source[reason].setdefault(name, {})
                for lang, n in langs.items():
                    per[lang] = per.get(lang, 0) + n
    language_filter = F.FilterCounts(sum(dropped.values()), dropped)
    selection_filter = F.FilterCounts(sum(unselected.values()), unselected)
    for p in sorted((ctx.work / "reports").glob("dedup-*.json")):
        for name, d in read_json(p).items():
            filters.setdefault(name, F.FilterCounts()).merge(F.FilterCounts.from_dict(d))
    if ctx.get_recipe().data.filters.dedup == "minhash":
        filters["minhash_dedup"] = F.FilterCounts.from_dict(plan_doc["minhash_removed"])
    filters["caps"] = F.FilterCounts.from_dict(plan_doc["caps_removed"])
    counts: dict[str, Counter] = {k: Counter() for k in ("source", "dataset", "kind", "language")}
    total = 0
    by_source: dict[str, dict[str, Counter]] = {}
    for p in sorted((ctx.work / "gathered").glob("shard-*.json")):
        g = read_json(p)
        total += g["rows"]
        for key, c in g["counts"].items():
            counts[key].update(c)
        for name, per in g.get("by_source", {}).items():
            for key, c in per.items():
                by_source.setdefault(name, {}).setdefault(key, Counter()).update(c)
    tiers: Counter = Counter()
    for lang, n in counts["language"].items():
        tiers[L.tier(lang)] += n
    counts["tier"] = tiers
    ordered = {k: dict(sorted(v.items(), key=lambda kv: (-kv[1], kv[0]))) for k, v in counts.items()}
    realised = {k: {name: n / total if total else 0.0 for name, n in v.items()} for k, v in ordered.items()}
    return {
        "budget": plan["budget"],
        "total": total,
        "seed": plan["seed"],
        "requested": {"source": plan["requested"],
                      "dataset": {ds: n / plan["budget"] for per in plan["datasets"].values() for ds, n in per.items()}},
        "realised": realised,
        "counts": ordered,
        "by_source": {name: {key: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for key, c in per.items()}
                      for name, per in sorted(by_source.items())},
        "repetition": plan["repetition"],
        "filters": {"language": language_filter.to_dict(), "language_selection": selection_filter.to_dict(),
                    **{k: v.to_dict() for k, v in filters.items()}},
        "dropped_by_source": dropped_by_source,
        "available": plan["available"],
        "skipped_sources": plan["skipped"],
        "errors": errors,
        "skipped_rows": {k: dict(sorted(v.items())) for k, v in sorted(skipped_rows.items()) if v},
        "heavily_repeated": heavily_repeated(plan),
        "allocated": {"source": plan["sources"], "dataset": plan["datasets"]},
        "shards": ctx.shards,
    }


# ---- executors and the build -----------------------------------------------------------------------------

def _stage_tasks(ctx: Context) -> dict[str, int]:
    return {"filter": ctx.tasks, "dedup": ctx.buckets, "plan": 1, "scatter": ctx.buckets, "gather": ctx.shards,
            "finalize": 1}


STEP_TYPES: dict[str, type[_Step]] = {"filter": FilterStep, "dedup": DedupStep, "plan": PlanStep,
                                      "scatter": ScatterStep, "gather": GatherStep, "finalize": FinalizeStep}


def _make_executor(kind: str, stage: str, pipeline: list, tasks: int, workers: int, logging_dir: str, prev: Any,
                   options: dict[str, Any]) -> Any:
    """A datatrove executor of the chosen kind for one stage."""
    if kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        if sys.platform == "linux":
            # forkserver (datatrove's default) re-imports ayakit and datatrove in every worker of every stage:
            # measured 23 s instead of 6 s for 1e5 examples on 2 cores; `executor_options: {start_method: ...}`
            options = {"start_method": "fork", **options}
        return LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=max(1, min(workers, tasks)),
                                     logging_dir=logging_dir, **options)
    if kind == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        # data.workers is a local setting: on Slurm every array task may run at once unless options say so
        opts = {"time": "24:00:00", "partition": "cpu", "job_name": f"ayakit-data-{stage}", **options}
        return SlurmPipelineExecutor(pipeline=pipeline, tasks=tasks, logging_dir=logging_dir, depends=prev, **opts)
    if kind == "ray":
        try:
            import ray
        except ImportError:
            raise DataError("the ray executor needs ray: pip install 'ayakit[ray]'") from None
        from datatrove.executor.ray import RayPipelineExecutor

        if not ray.is_initialized():
            ray.init(num_cpus=workers, include_dashboard=False, ignore_reinit_error=True)
        return RayPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir,
                                   **options)
    raise DataError(f"unknown executor {kind!r}: choose local, slurm or ray")


make_executor = _make_executor  # public: the tokenize stage runs its tasks on the same executors


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
            prev = _make_executor(kind, stage, pipeline, n, workers, str(ctx.work / "logs" / stage), prev, options)
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
