"""Stage 5, gather: one task per output shard sorts every bucket's copies for it by their key."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq

from ayakit.data.steps.base import Step
from ayakit.data.steps.scatter import SCATTER_SCHEMA
from ayakit.io import atomic_path, write_json_atomic
from ayakit.records import EXAMPLE_FIELDS, EXAMPLE_SCHEMA


class GatherStep(Step):
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
