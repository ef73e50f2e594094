"""What every data-build step shares: the picklable Context, the step base class, per-bucket Parquet writers,
the fault-injection hook of the resume tests, and datatrove's per-task logging kept off the console."""

from __future__ import annotations

import math
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.executor import base as _dt_base
from datatrove.pipeline.base import PipelineStep
from loguru import logger

from ayakit.recipe import Recipe

WORK = ".work"
# Set to "stage:rank" to kill the build process right after that task wrote its outputs and before datatrove
# marks it complete: the fault-injection hook the resume tests use (a real crash at the worst moment).
CRASH_ENV = "AYAKIT_DATA_CRASH_AT"


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


# Patched at import so that pool workers (which import this module to unpickle any step) are quiet too.
_dt_base.add_task_logger = _quiet_task_logger
_dt_base.close_task_logger = _quiet_close_task_logger


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


def _maybe_crash(stage: str, rank: int) -> None:
    if os.environ.get(CRASH_ENV) == f"{stage}:{rank}":
        os.kill(os.getpid(), signal.SIGKILL)


def _attempt(ctx: Context, stage: str, rank: int) -> None:
    """Record that a task started (the resume tests count attempts per task)."""
    d = ctx.work / "attempts"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"{stage}-{rank:05d}", "a", encoding="utf-8") as fh:
        fh.write("x")


class BucketWriters:
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


class Step(PipelineStep):
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
