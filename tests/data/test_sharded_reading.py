"""Sharded source reading: each datatrove task reads only its own units, so every input is read once in total."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ayakit.data import pipeline as P
from ayakit.data.sources import embedded, hub, open_source
from ayakit.errors import DataError
from ayakit.recipe import recipe_from_dict


def _hub_copy(root: Path, files: int = 4, rows: int = 50) -> Path:
    """A local copy of aya_dataset in the hub layout: data/train-0000k-of-0000n.parquet."""
    langs = ["eng", "fra", "swh", "hin"]
    for k in range(files):
        table = pa.table({"inputs": [f"q {k} {i}" for i in range(rows)], "targets": [f"a {k} {i}" for i in range(rows)],
                          "language": ["x"] * rows, "language_code": [langs[i % 4] for i in range(rows)],
                          "annotation_type": ["original-annotations"] * rows, "user_id": ["u"] * rows})
        (root / "data").mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / "data" / f"train-{k:05d}-of-{files:05d}.parquet")
    return root


def _recipe(sources: list[dict], tasks: int, budget: int = 300):
    return recipe_from_dict({"name": "shard", "seed": 3, "data": {
        "budget": budget, "shard_size": 1000, "tasks": tasks, "workers": 1, "filters": {"langid": False},
        "languages": ["eng", "fra", "swh", "hin", "yor"], "sources": sources}})


def _ids(source) -> list[str]:
    return [i for b in source.iter_batches(64) for i in b.column("id").to_pylist()]


@pytest.mark.parametrize("kind", ["embedded", "hub"])
def test_shards_of_a_source_are_disjoint_and_cover_it(kind: str, tmp_path: Path) -> None:
    if kind == "hub":
        spec = {"name": "aya", "type": "aya_dataset", "path": str(_hub_copy(tmp_path / "aya"))}
    else:
        spec = {"name": "cal", "type": "embedded", "families": ["month_name", "weekday_name"]}
    recipe = _recipe([spec], tasks=3)
    whole = open_source(recipe.data.sources[0], recipe)
    assert whole.shardable
    everything = _ids(whole)
    parts, units = [], 0
    for index in range(3):
        src = open_source(recipe.data.sources[0], recipe)
        src.shard = (index, 3)
        try:
            parts.append(_ids(src))
        except DataError:  # a shard with no units of its own yields nothing (the pipeline allows that)
            parts.append([])
        units += src.units_read
    assert sorted(i for p in parts for i in p) == sorted(everything)
    assert all(parts)
    assert units == whole.units_read  # each unit (file, (family, language)) opened by exactly one shard


def test_pipeline_reads_each_input_once_whatever_the_task_count(tmp_path: Path, monkeypatch) -> None:
    reads: Counter = Counter()
    real_generate, real_rows = embedded.generate, hub.iter_file_rows

    def counting_generate(family, language, *args, **kwargs):
        reads[("embedded", family, language)] += 1
        return real_generate(family, language, *args, **kwargs)

    def counting_rows(path, *args, **kwargs):
        reads[("file", Path(path).name)] += 1
        return real_rows(path, *args, **kwargs)

    monkeypatch.setattr(embedded, "generate", counting_generate)
    monkeypatch.setattr(hub, "iter_file_rows", counting_rows)
    sources = [{"name": "cal", "type": "embedded", "families": ["month_name"], "weight": 1},
               {"name": "aya", "type": "aya_dataset", "path": str(_hub_copy(tmp_path / "aya")), "weight": 1}]
    built = {}
    for tasks in (1, 3):
        reads.clear()
        run = tmp_path / f"run-{tasks}"
        P.build(_recipe(sources, tasks), run)
        assert reads and set(reads.values()) == {1}, reads  # one pass over every input, whatever the task count
        built[tasks] = (set(reads), [pq.read_table(p) for p in P.shard_paths(run)])
    assert built[1][0] == built[3][0]
    for a, b in zip(built[1][1], built[3][1], strict=True):
        assert a.equals(b)  # and the same mixture
