"""Stage 1, read + filter: each task reads its share of the sources, runs the row filters and buckets the rows by
their dedup key."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ayakit.data import filters as F
from ayakit.data import mixture as M
from ayakit.data.steps.base import BucketWriters, Step
from ayakit.errors import DataError
from ayakit.io import write_json_atomic
from ayakit.recipe import Recipe
from ayakit.records import EXAMPLE_FIELDS, EXAMPLE_SCHEMA

FILTERED_SCHEMA = pa.schema([*EXAMPLE_SCHEMA, pa.field("_src", pa.int32()), pa.field("_dkey", pa.uint64())])


class FilterStep(Step):
    """Read every source (this task's batches), run the row filters, bucket the rows by their dedup key."""

    stage = name = "filter"

    def work(self, rank: int) -> None:
        ctx, recipe = self.ctx, self.ctx.get_recipe()
        cfg = recipe.data.filters
        out_dir = ctx.work / "filtered" / f"task-{rank:05d}"
        writers = BucketWriters(out_dir, lambda b: f"bucket-{b:05d}.parquet", FILTERED_SCHEMA)
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
                writers: BucketWriters) -> None:
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
