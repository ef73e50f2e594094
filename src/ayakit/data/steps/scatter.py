"""Stage 4, scatter: one task per dedup bucket applies the caps and emits each record's copies, keyed by
hash(seed, id, copy), into the output shard that key selects."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ayakit.data import mixture as M
from ayakit.data.steps.base import BucketWriters, Step
from ayakit.data.steps.minhash import near_duplicates
from ayakit.data.steps.plan import below_each, group_codes
from ayakit.io import read_json
from ayakit.records import EXAMPLE_FIELDS, EXAMPLE_SCHEMA

SCATTER_SCHEMA = pa.schema([*EXAMPLE_SCHEMA, pa.field("_order", pa.uint64())])


def _lookup(names: list[str], table: dict[str, Any], default: Any) -> list[Any]:
    return [table.get(n, default) for n in names]


class ScatterStep(Step):
    """One dedup bucket: apply caps, emit each record's copies keyed by hash(seed, id, copy) into its shard."""

    stage = name = "scatter"

    def work(self, rank: int) -> None:
        ctx = self.ctx
        plan = read_json(ctx.work / "plan.json")
        groups, by_lang = plan["groups"], plan["by_language"]
        cap_dl, cap_d = plan["caps"]["dataset_language"], plan["caps"]["dataset"]
        src = ctx.work / "dedup" / f"bucket-{rank:05d}.parquet"
        writers = BucketWriters(ctx.work / "scatter" / f"bucket-{rank:05d}",
                                 lambda s: f"shard-{s:05d}.parquet", SCATTER_SCHEMA)
        pf = pq.ParquetFile(src)
        near = near_duplicates(ctx, rank, pf.metadata.num_rows)
        offset = 0
        for batch in pf.iter_batches(batch_size=self.ctx.get_recipe().data.batch_size):
            table = pa.Table.from_batches([batch])
            not_near = ~near[offset:offset + table.num_rows]
            offset += table.num_rows
            rkeys = table.column("_rkey").to_numpy()
            dl_codes, dl_names = group_codes(table.column("source"), table.column("dataset"),
                                              table.column("language"))
            d_codes, d_names = group_codes(table.column("source"), table.column("dataset"))
            alive = _under(M.derived_keys(rkeys, M.CAP_LANGUAGE), dl_codes, [M.SEP.join(n) for n in dl_names], cap_dl)
            alive &= _under(M.derived_keys(rkeys, M.CAP_DATASET), d_codes, [M.SEP.join(n) for n in d_names], cap_d)
            alive &= not_near
            codes, names = (dl_codes, dl_names) if by_lang else (d_codes, d_names)
            info = _lookup([M.SEP.join(n) for n in names], groups, [0, 0])
            base = np.array([c for c, _ in info], dtype=np.int64)[codes]
            extra = below_each(M.derived_keys(rkeys, M.MIX), codes, [t for _, t in info])
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


def _under(keys: np.ndarray, codes: np.ndarray, names: list[str], thresholds: dict[str, int]) -> np.ndarray:
    return below_each(keys, codes, [thresholds.get(n, M.KEY_MAX + 1) for n in names])
