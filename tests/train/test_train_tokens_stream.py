"""Token shards round-trip exactly; the row stream is a deterministic, resumable, process-count-free partition."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ayakit.errors import DataError
from ayakit.models.encoding import encode
from ayakit.train.dataset import is_validation
from ayakit.train.stream import RowStream, permute, rank_rows
from ayakit.train.tokenize import open_split, tokenize
from ayakit.train.tokens import ShardWriter, TokenShards


@pytest.fixture
def tokenized(run_dir: Path, tokenizer_dir: Path, th) -> Path:
    shutil.copytree(tokenizer_dir, run_dir / "tokenizer")
    tokenize(th.micro_recipe(validation_fraction=0.1), run_dir)
    return run_dir


@pytest.mark.parametrize("arch", ["seq2seq", "causal"])
def test_token_shards_equal_tokenising_in_memory(arch: str, run_dir: Path, tokenizer_dir: Path, th) -> None:
    from ayakit.train.tokenizer import load_tokenizer

    shutil.copytree(tokenizer_dir, run_dir / "tokenizer")
    recipe = th.micro_recipe(arch, validation_fraction=0.1)
    tokenize(recipe, run_dir)
    tok = load_tokenizer(run_dir / "tokenizer")
    expected = {"train": [], "validation": []}
    for path in sorted((run_dir / "data").glob("shards-*.parquet")):  # mixture order: shard by shard
        for row in pq.read_table(path).to_pylist():
            enc = encode(tok, row["inputs"], row["targets"], arch, 24, 8)
            split = "validation" if is_validation(row["id"], 0.1) else "train"
            expected[split].append((enc.source, enc.target))
    for split, pairs in expected.items():
        shards = open_split(run_dir, split)
        assert len(shards) == len(pairs) > 0
        assert [shards.example(i) for i in range(len(shards))] == pairs
        src, tgt = shards.lengths(np.arange(len(shards)))
        assert src.tolist() == [len(p[0]) for p in pairs] and tgt.tolist() == [len(p[1]) for p in pairs]
    manifest = json.loads((run_dir / "tokens" / "manifest.json").read_text())
    assert manifest["totals"]["train"]["examples"] == len(expected["train"])
    assert manifest["inputs"]["arch"] == arch


def test_tokenize_is_skipped_when_unchanged_and_redone_when_lengths_change(tokenized: Path, th) -> None:
    idx = tokenized / "tokens" / "train-00000.idx"
    before = idx.stat().st_mtime_ns
    tokenize(th.micro_recipe(validation_fraction=0.1), tokenized)
    assert idx.stat().st_mtime_ns == before
    tokenize(th.micro_recipe(validation_fraction=0.1, max_source_length=6), tokenized)
    shards = open_split(tokenized, "train")
    assert max(shards.lengths(np.arange(len(shards)))[0]) <= 6


def test_a_truncated_shard_is_a_data_error(tokenized: Path) -> None:
    tok = tokenized / "tokens" / "train-00001.tok"
    tok.write_bytes(tok.read_bytes()[:-4])
    with pytest.raises(DataError, match="does not match its .tok"):
        open_split(tokenized, "train")


def test_readers_do_not_map_the_shards_and_survive_pickling(tmp_path: Path) -> None:
    """Reads are positional: no shard file is mapped into the process (mapped pages would count in its RSS and grow
    with the mixture), and a pickled reader (a spawned worker) opens its own descriptors and reads the same."""
    import pickle

    shards = _synthetic(tmp_path)
    stream = RowStream(shards, "seq2seq", True, 40, 16, seed=5)
    rows = stream.take(20)
    before = [shards.gather(r) for r in rows]
    maps = Path("/proc/self/maps")
    if maps.is_file():
        assert str(tmp_path) not in maps.read_text()
    copy = pickle.loads(pickle.dumps(shards))
    assert [copy.gather(r) for r in rows] == before


def test_permutation_is_a_bijection_keyed_by_seed_and_epoch() -> None:
    for n in (1, 2, 7, 1000, 4097):
        p = permute(np.arange(n), n, seed=3, epoch=0)
        assert sorted(p.tolist()) == list(range(n))
    a = permute(np.arange(1000), 1000, 3, 0)
    assert not np.array_equal(a, permute(np.arange(1000), 1000, 3, 1))
    assert not np.array_equal(a, permute(np.arange(1000), 1000, 4, 0))
    assert np.array_equal(a[500:], permute(np.arange(500, 1000), 1000, 3, 0))  # computed per position


def _synthetic(tmp_path: Path, n: int = 300) -> TokenShards:
    rng = np.random.default_rng(0)
    stems = []
    for s in range(3):
        w = ShardWriter(tmp_path, f"train-{s:05d}", "uint16")
        w.add([list(range(int(k))) for k in rng.integers(1, 20, n // 3)],
              [[7] * int(k) for k in rng.integers(1, 8, n // 3)])
        w.close()
        stems.append(f"train-{s:05d}")
    return TokenShards(tmp_path, stems, "uint16")


def test_each_process_reads_disjoint_rows_that_cover_the_epoch(tmp_path: Path) -> None:
    shards = _synthetic(tmp_path)
    for world in (1, 2, 3):
        stream = RowStream(shards, "seq2seq", True, 40, 16, seed=5)
        epoch_rows = stream.take(stream.rows_in_epoch(0))
        per_step = 2 * 2 * world  # batch 2, grad_accum 2
        per_rank: list[list[int]] = [[] for _ in range(world)]
        for start in range(0, len(epoch_rows), per_step):
            for rank in range(world):
                for rows in rank_rows(epoch_rows[start:start + per_step], rank, world, batch_size=2, grad_accum=2):
                    per_rank[rank].extend(i for r in rows for i in r)
        assert sorted(i for ids in per_rank for i in ids) == list(range(len(shards)))  # disjoint, covering
        if world > 1:
            assert all(per_rank)


def test_the_row_stream_does_not_depend_on_the_process_count(tmp_path: Path) -> None:
    shards = _synthetic(tmp_path)
    one = RowStream(shards, "causal", True, 48, 0, seed=1).take(120)
    two = RowStream(shards, "causal", True, 48, 0, seed=1)
    assert two.take(50) + two.take(70) == one  # any split of the same global rows
    assert all(sum(int(x) for x in np.sum(shards.lengths(r), axis=0)) <= 48 for r in one)


def test_stream_resumes_bit_exact_from_its_saved_state(tmp_path: Path) -> None:
    shards = _synthetic(tmp_path)
    straight = RowStream(shards, "seq2seq", True, 40, 16, seed=2)
    expected = straight.take(400)  # crosses epoch boundaries
    first = RowStream(shards, "seq2seq", True, 40, 16, seed=2)
    head = first.take(137)
    state = json.loads(json.dumps(first.state()))  # as a checkpoint stores it
    resumed = RowStream(shards, "seq2seq", True, 40, 16, seed=2)
    resumed.load(state)
    assert head + resumed.take(263) == expected
    replayed = RowStream(shards, "seq2seq", True, 40, 16, seed=2)
    replayed.skip(137)
    assert replayed.take(263) == expected[137:]


def test_rows_in_epoch_counts_without_moving_the_stream(tmp_path: Path) -> None:
    shards = _synthetic(tmp_path)
    stream = RowStream(shards, "seq2seq", True, 40, 16, seed=2)
    n = stream.rows_in_epoch(0)
    rows = stream.take(n)
    assert sorted(i for r in rows for i in r) == list(range(len(shards)))
    assert stream.draining and not stream.pending  # epoch 0 handed out whole; epoch 1 starts on the next take
    unpacked = RowStream(shards, "seq2seq", False, 40, 16, seed=2)
    assert unpacked.rows_in_epoch(0) == len(shards)


def test_rows_in_epoch_is_cached_by_shards_and_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ayakit.train import stream as stream_mod

    shards = _synthetic(tmp_path)
    counted = {s: RowStream(shards, "seq2seq", True, 40, 16, seed=s).rows_in_epoch(0) for s in (2, 3)}
    assert (tmp_path / stream_mod.ROWS_CACHE).is_file()
    monkeypatch.setattr(RowStream, "_feed", lambda self: pytest.fail("counted again"))
    assert {s: RowStream(shards, "seq2seq", True, 40, 16, seed=s).rows_in_epoch(0) for s in (2, 3)} == counted
    monkeypatch.undo()
    wider = RowStream(shards, "seq2seq", True, 64, 16, seed=2).rows_in_epoch(0)  # another row size: counted anew
    (tmp_path / stream_mod.ROWS_CACHE).unlink()
    assert wider == RowStream(shards, "seq2seq", True, 64, 16, seed=2).rows_in_epoch(0) < counted[2]


def test_ray_tokenize_writes_the_same_bytes_as_local(tokenized: Path, tmp_path: Path, th) -> None:
    pytest.importorskip("ray", reason="ray is not installed (the optional extra ayakit[ray]; CI installs it)")
    other = tmp_path / "ray"
    shutil.copytree(tokenized / "data", other / "data")
    shutil.copytree(tokenized / "tokenizer", other / "tokenizer")
    tokenize(th.micro_recipe(validation_fraction=0.1), other, executor="ray")
    names = sorted(p.name for p in (tokenized / "tokens").glob("*-0000*.*"))
    assert len(names) == 8
    for name in names:
        assert (tokenized / "tokens" / name).read_bytes() == (other / "tokens" / name).read_bytes(), name
