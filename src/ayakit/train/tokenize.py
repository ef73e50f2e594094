"""The tokenize stage: the mixture tokenised once, one datatrove task per mixture shard, into token shards.

Each task streams its Parquet shard in record batches, splits off the held-out slice by id hash (as training
always did), encodes both sides with the run's tokenizer (batched: one call per batch and side) and writes
`tokens/train-NNNNN` and `tokens/validation-NNNNN` (see tokens.py). The executor is the data build's (local, Slurm
or Ray, from data.executor): a killed run reruns only unfinished tasks (datatrove's completion markers), and
tokens/manifest.json, written last, fingerprints the mixture, tokenizer and lengths it was made from.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from datatrove.pipeline.base import PipelineStep

from ayakit.errors import DataError
from ayakit.io import file_sha256, fingerprint, read_json, write_json_atomic, write_manifest
from ayakit.models import arch_impl, detect_arch
from ayakit.recipe import Recipe, RecipeError
from ayakit.train.dataset import NEEDED, check_columns, is_validation, mixture_files, mixture_fingerprint
from ayakit.train.tokens import TOKENS_DIR, ShardWriter, TokenShards, shard_name, token_dtype

WORK = ".work"
BATCH = 1000  # examples per tokenizer call: measured flat memory and the same throughput as 5000


@dataclass(frozen=True)
class TokenizeContext:
    """What a tokenize task needs; plain and picklable (it travels to pool, Slurm and Ray workers)."""

    run_dir: str
    files: tuple[str, ...]
    arch: str
    max_source: int
    max_target: int
    validation_fraction: float
    dtype: str
    batch_size: int = BATCH

    @property
    def out(self) -> Path:
        return Path(self.run_dir) / TOKENS_DIR


def tokens_dir(run_dir: Path) -> Path:
    """Where a run's token shards live."""
    return Path(run_dir) / TOKENS_DIR


def resolve_arch(recipe: Recipe) -> str:
    """The model's architecture: the recipe's, or a pretrained model's config (without loading its weights)."""
    if not recipe.model.name_or_path:
        return recipe.model.arch
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(recipe.model.name_or_path, **recipe.model.overrides)
    except (OSError, ValueError) as exc:
        raise RecipeError(f"model.name_or_path={recipe.model.name_or_path!r} cannot be loaded: "
                          f"{str(exc).splitlines()[0]}") from None
    return detect_arch(recipe.model.name_or_path, config)


def _tokenizer_fingerprint(path: Path) -> str:
    return fingerprint({p.name: file_sha256(p) for p in sorted(Path(path).iterdir()) if p.is_file()})


def tokenize_inputs(recipe: Recipe, run_dir: Path) -> dict[str, Any]:
    """What decides the token shards: the mixture, the tokenizer files, the architecture, lengths, held-out share."""
    t = recipe.train
    return {"mixture": mixture_fingerprint(run_dir), "tokenizer": _tokenizer_fingerprint(Path(run_dir) / "tokenizer"),
            "arch": resolve_arch(recipe), "max_source_length": t.max_source_length,
            "max_target_length": t.max_target_length, "validation_fraction": t.validation_fraction,
            "format": 1}


def encode_batch(tokenizer: Any, inputs: list[str], targets: list[str], arch: str, max_source: int,
                 max_target: int) -> tuple[list[list[int]], list[list[int]]]:
    """ayakit.models.encoding.encode for a batch, in one tokenizer call (the round-trip test pins the equality)."""
    # one call for both sides, ids only; a fast tokenizer's Rust backend directly (what __call__ runs, without
    # building attention masks and BatchEncodings: 6% of the stage's time in a profile)
    texts = inputs + targets
    if getattr(tokenizer, "is_fast", False):
        ids = [e.ids for e in tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)]
    else:
        ids = tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    src_ids, tgt_ids = ids[: len(inputs)], ids[len(inputs):]
    eos = tokenizer.eos_token_id
    frame = arch_impl(arch).frame_source
    return [frame(tokenizer, ids, max_source) for ids in src_ids], [ids[: max_target - 1] + [eos] for ids in tgt_ids]


def tokenize_file(ctx: TokenizeContext, rank: int, tokenizer: Any) -> dict[str, Any]:
    """Tokenise mixture shard `rank` into its train and validation token shards; their counts."""
    path = Path(ctx.files[rank])
    writers = {split: ShardWriter(ctx.out, shard_name(split, rank), ctx.dtype) for split in ("train", "validation")}
    tested = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=ctx.batch_size, columns=list(NEEDED)):
        cols = batch.to_pydict()
        for col in NEEDED:
            if batch.column(col).null_count:
                raise DataError(f"{path}: column {col!r} has {batch.column(col).null_count} null value(s)")
        splits = cols["split"]
        held = np.array([s == "validation" or (s != "test" and is_validation(i, ctx.validation_fraction))
                         for i, s in zip(cols["id"], splits)], bool)
        test = np.array([s == "test" for s in splits], bool)
        tested += int(test.sum())
        sources, targets = encode_batch(tokenizer, cols["inputs"], cols["targets"], ctx.arch, ctx.max_source,
                                        ctx.max_target)
        for split, pick in (("train", ~held & ~test), ("validation", held & ~test)):
            idx = np.flatnonzero(pick)
            writers[split].add([sources[i] for i in idx], [targets[i] for i in idx])
    counts = {split: w.close() for split, w in writers.items()}
    counts["test_rows_skipped"] = tested
    write_json_atomic(ctx.out / WORK / "reports" / f"{rank:05d}.json", counts)
    return counts


class TokenizeStep(PipelineStep):
    """A datatrove step: tokenise the mixture shard of its rank."""

    type = "ayakit"
    name = "tokenize"

    def __init__(self, ctx: TokenizeContext, tokenizer_path: str) -> None:
        super().__init__()
        self.ctx, self.tokenizer_path = ctx, tokenizer_path

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from ayakit.train.tokenizer import load_tokenizer

        with self.track_time(unit="task"):
            tokenize_file(self.ctx, rank, load_tokenizer(Path(self.tokenizer_path)))
        yield from ()


def tokenize(recipe: Recipe, run_dir: Path, executor: str | None = None, force: bool = False,
             progress: Any = None) -> Path:
    """Token shards for run_dir's mixture in run_dir/tokens (skipped when its manifest matches); the directory.

    executor: local, slurm or ray; None uses recipe.data.executor (tasks = mixture shards, data.workers at once).
    """
    from ayakit.data.pipeline import make_executor
    from ayakit.train.tokenizer import load_tokenizer

    run_dir = Path(run_dir).resolve()  # absolute: Slurm and Ray tasks may start elsewhere
    files = mixture_files(run_dir)
    check_columns(files)
    out = tokens_dir(run_dir)
    inputs = tokenize_inputs(recipe, run_dir)
    manifest = out / "manifest.json"
    if not force and manifest.is_file() and read_json(manifest).get("inputs_fingerprint") == fingerprint(inputs):
        return out
    layout = {"inputs": fingerprint(inputs), "files": [f.name for f in files]}
    marker = out / WORK / "layout.json"
    if force or not (marker.is_file() and read_json(marker) == layout):
        shutil.rmtree(out, ignore_errors=True)
    manifest.unlink(missing_ok=True)
    write_json_atomic(marker, layout)
    tokenizer = load_tokenizer(run_dir / "tokenizer")
    ctx = TokenizeContext(str(run_dir), tuple(str(f) for f in files), inputs["arch"], recipe.train.max_source_length,
                          recipe.train.max_target_length, recipe.train.validation_fraction,
                          token_dtype(len(tokenizer)))
    kind = executor or recipe.data.executor
    from loguru import logger

    logger.remove()  # datatrove logs per task under tokens/.work/logs; the console shows warnings only
    logger.add(sys.stderr, level="WARNING", colorize=False)
    ex = make_executor(kind, "tokenize", [TokenizeStep(ctx, str(run_dir / "tokenizer"))], len(files),
                       recipe.data.workers, str(out / WORK / "logs"), None, dict(recipe.data.executor_options))
    if progress:
        progress("tokenize", 0, len(files))
    ex.run()
    if kind == "slurm":
        wait_for_slurm(ex)
    incomplete = ex.get_incomplete_ranks()
    if incomplete:
        raise DataError(f"tokenize: tasks {incomplete} did not finish; see {out / WORK / 'logs' / 'logs'}")
    if progress:
        progress("tokenize", len(files), len(files))
    return finish(out, files, inputs, ctx)


def wait_for_slurm(ex: Any, poll_s: float = 2.0) -> None:
    """Block until a submitted Slurm executor's array tasks have all finished or its job has left the queue."""
    import subprocess
    import time

    while ex.get_incomplete_ranks():
        job = getattr(ex, "job_id", None)
        if job in (None, -1):
            return
        queued = subprocess.run(["squeue", "-h", "-j", str(job)], capture_output=True, text=True).stdout.strip()
        if not queued:  # the job ended; what is still incomplete failed (reported by the caller)
            return
        time.sleep(poll_s)


def finish(out: Path, files: list[Path], inputs: dict[str, Any], ctx: TokenizeContext) -> Path:
    """Merge the tasks' counts into tokens/manifest.json (written last: it marks the shards as complete)."""
    reports = [read_json(out / WORK / "reports" / f"{r:05d}.json") for r in range(len(files))]
    totals = {split: {k: sum(r[split][k] for r in reports) for k in reports[0][split]}
              for split in ("train", "validation")}
    if not totals["train"]["examples"]:
        raise DataError("the mixture has no training examples left after holding out the validation slice")
    shards = [{"mixture_shard": f.name, "train": r["train"], "validation": r["validation"]}
              for f, r in zip(files, reports)]
    write_manifest(out, "tokenize", inputs, {"shards": [shard_name("train", r) for r in range(len(files))],
                                             "dtype": ctx.dtype},
                   totals=totals, per_shard=shards, test_rows_skipped=sum(r["test_rows_skipped"] for r in reports))
    return out


def open_split(run_dir: Path, split: str) -> TokenShards:
    """A split's token shards, memory-mapped (needs tokens/manifest.json)."""
    out = tokens_dir(run_dir)
    manifest = out / "manifest.json"
    if not manifest.is_file():
        raise DataError(f"{out}: no finished token shards (run `ayakit tokenize {run_dir}` first)")
    meta = read_json(manifest)
    n = len(meta["outputs"]["shards"])
    return TokenShards(out, [shard_name(split, r) for r in range(n)], meta["outputs"]["dtype"])


def token_totals(run_dir: Path) -> dict[str, dict[str, int]]:
    """Examples and source / target tokens per split, from tokens/manifest.json."""
    return read_json(tokens_dir(run_dir) / "manifest.json")["totals"]
