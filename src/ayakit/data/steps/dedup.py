"""Stage 2, exact dedup: one task per bucket keeps the first of each exact duplicate and adds the record keys."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ayakit.data import filters as F
from ayakit.data import mixture as M
from ayakit.data.steps.base import Context, Step
from ayakit.io import atomic_path, write_json_atomic
from ayakit.records import EXAMPLE_FIELDS, EXAMPLE_SCHEMA

DEDUP_SCHEMA = pa.schema([*EXAMPLE_SCHEMA, pa.field("_rkey", pa.uint64())])


def _bucket_inputs(ctx: Context, b: int) -> list[Path]:
    return sorted((ctx.work / "filtered").glob(f"task-*/bucket-{b:05d}.parquet"))


class DedupStep(Step):
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
