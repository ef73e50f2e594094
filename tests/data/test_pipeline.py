"""The datatrove build: shares, repetition, caps, dedup, determinism, resume after a kill, executors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ayakit.data import pipeline as P
from ayakit.data.steps.base import CRASH_ENV
from ayakit.data.steps import plan as plan_step
from ayakit.data.steps.plan import select_thresholds
from ayakit.errors import DataError
from ayakit.languages import UnknownLanguageError
from ayakit.recipe import RecipeError, recipe_from_dict

LANGS = ["eng", "swa", "fra", "yor", "hin", "zho", "ara"]


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Three file sources: a big one with three datasets, a small human one, a translated one to cap."""
    root = tmp_path_factory.mktemp("corpus")
    big = [{"inputs": f"big q {i}", "targets": f"big a {i}", "language": LANGS[i % 7], "dataset": f"big{i % 3}"}
           for i in range(6000)]
    big += [{"inputs": f"held {i}", "targets": "x", "language": "eng", "dataset": "Muennighoff/xwinograd"}
            for i in range(50)]
    _write(root / "big" / "part.jsonl", big)
    small = [{"inputs": f"small q {i}", "targets": f"small a {i}", "language": LANGS[i % 3]} for i in range(300)]
    small += [{"inputs": f"BIG  q {i}", "targets": f"big a {i}", "language": LANGS[i % 7]} for i in range(20)]
    _write(root / "small" / "part.jsonl", small)
    tr = [{"inputs": f"tr q {i}", "targets": f"tr a {i}", "language": LANGS[i % 2],
           "dataset": "translated_dolly" if i % 4 == 0 else "translated_paws"} for i in range(4000)]
    _write(root / "tr" / "part.jsonl", tr)
    return root


def _recipe(corpus: Path, **data):
    base = {
        "budget": 20000, "shard_size": 7000, "tasks": 2, "workers": 1,
        "filters": {"langid": False},
        "caps": {"per_dataset_language": {"tr": 200}, "exempt_datasets": ["dolly"]},
        "sources": [
            {"name": "big", "type": "files", "path": str(corpus / "big"), "weight": 5},
            {"name": "small", "type": "files", "path": str(corpus / "small"), "weight": 2, "kind": "human"},
            {"name": "tr", "type": "files", "path": str(corpus / "tr"), "weight": 3, "kind": "translated"},
        ],
    }
    base.update(data)
    return recipe_from_dict({"name": "t", "seed": 11, "data": base})


def _rows(run_dir: Path) -> list[dict]:
    return P.read_mixture(run_dir).to_table().to_pylist()


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    P.build(_recipe(corpus), run)
    return run


def test_realised_shares_match_requested_and_stats_keys(built):
    stats = P.load_stats(built)
    for key in ("budget", "total", "seed", "requested", "realised", "counts", "repetition", "filters",
                "available", "skipped_sources", "errors"):
        assert key in stats
    assert stats["total"] == stats["budget"] == 20000
    for name, share in stats["requested"]["source"].items():
        assert abs(stats["realised"]["source"][name] - share) < 0.005
    assert set(stats["realised"]) >= {"source", "dataset", "kind", "language", "tier"}
    assert stats["counts"]["kind"] == {"templated": 10000, "translated": 6000, "human": 4000} or \
        sum(stats["counts"]["kind"].values()) == 20000
    assert len(P.shard_paths(built)) == 3


def test_filters_dedup_and_caps(built):
    rows = _rows(built)
    stats = P.load_stats(built)
    # held-out dataset removed, counted per language
    assert not any("xwinograd" in r["dataset"] for r in rows)
    assert stats["filters"]["heldout"]["removed"] == 50
    # the 20 'small' rows duplicate 'big' rows after normalisation: the earlier source keeps them
    assert stats["filters"]["exact_dedup"]["removed"] == 20
    assert not any(r["inputs"].startswith("BIG") for r in rows)
    # caps: at most 200 distinct records per (dataset, language) of the translated source, Dolly exempt
    distinct = Counter((r["dataset"], r["language"]) for r in {r["id"]: r for r in rows if r["source"] == "tr"}.values())
    assert distinct[("translated_paws", "eng-Latn")] == 200 and distinct[("translated_paws", "swh-Latn")] == 200
    assert distinct[("translated_dolly", "eng-Latn")] == 1000
    assert stats["available"]["tr"] == {"translated_dolly": 1000, "translated_paws": 400}
    assert stats["filters"]["caps"]["removed"] == 2600


def test_repetition_is_whole_passes_plus_an_exact_remainder(built):
    rows = _rows(built)
    stats = P.load_stats(built)
    per_id = Counter(r["id"] for r in rows if r["source"] == "small")
    alloc = stats["counts"]["source"]["small"]
    assert alloc == 4000 and len(per_id) == 300  # every record of the small source is used
    assert set(per_id.values()) == {13, 14}  # 4000 = 13 x 300 + 100
    assert sum(1 for v in per_id.values() if v == 14) == 100
    assert stats["repetition"]["small"] == pytest.approx(4000 / 300)
    # the big source is sub-sampled without replacement
    big = Counter(r["id"] for r in rows if r["source"] == "big")
    assert max(big.values()) == 1 and len(big) == 10000 - 0 or sum(big.values()) == 10000


def test_same_mixture_for_any_task_count_and_rebuild_is_skipped(corpus, built, tmp_path):
    other = tmp_path / "other"
    P.build(_recipe(corpus, tasks=3), other)
    for a, b in zip(P.shard_paths(built), P.shard_paths(other), strict=True):
        assert pq.read_table(a).equals(pq.read_table(b))
    manifest = (other / "data" / "manifest.json").stat().st_mtime_ns
    P.build(_recipe(corpus, tasks=3), other)  # manifest matches: nothing is redone
    assert (other / "data" / "manifest.json").stat().st_mtime_ns == manifest


def test_shards_load_with_datasets(built):
    import datasets

    ds = datasets.load_dataset("parquet", data_files=[str(p) for p in P.shard_paths(built)], split="train",
                               cache_dir=str(built / "hf-cache"))
    assert ds.num_rows == 20000 and "language" in ds.column_names


def test_killed_build_reruns_only_unfinished_tasks(corpus, built, tmp_path):
    run = tmp_path / "killed"
    recipe = _recipe(corpus)
    script = ("import sys, json; from ayakit.recipe import recipe_from_dict; from ayakit.data import pipeline as P\n"
              "if __name__ == '__main__':\n"
              "    P.build(recipe_from_dict(json.loads(sys.argv[1])), sys.argv[2])\n")
    env = {**os.environ, CRASH_ENV: "gather:1", "OMP_NUM_THREADS": "1"}
    log = tmp_path / "killed.log"
    with open(log, "wb") as err:
        # its own session: the kill leaves datatrove's manager process behind, which we then end with the group
        proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(recipe.model_dump(mode="json")), str(run)],
                                env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            code = proc.wait(timeout=120)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert code == -signal.SIGKILL, log.read_text()[-2000:]
    data = run / "data"
    assert (data / "shards-00000-of-00003.parquet").is_file()  # finished before the kill
    assert not (data / "manifest.json").exists()
    with pytest.raises(DataError, match="no finished mixture"):
        P.read_mixture(run)
    P.build(recipe, run)
    attempts = {p.name: len(p.read_text()) for p in (data / ".work" / "attempts").iterdir()}
    assert attempts["gather-00001"] == 2  # killed after writing, before datatrove marked it done
    assert all(n == 1 for name, n in attempts.items() if name != "gather-00001"), attempts
    for a, b in zip(P.shard_paths(built), P.shard_paths(run), strict=True):
        assert pq.read_table(a).equals(pq.read_table(b))


def test_ray_executor_gives_the_same_mixture(corpus, built, tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (optional extra ayakit[ray]; not installed in CI)")
    run = tmp_path / "ray"
    P.build(_recipe(corpus), run, executor="ray")
    for a, b in zip(P.shard_paths(built), P.shard_paths(run), strict=True):
        assert pq.read_table(a).equals(pq.read_table(b))


def test_temperature_sampling_across_languages(corpus, tmp_path):
    """alpha 0.5 over 900 eng and 100 swa examples: shares 30:10, not 9:1 (run by a pool of 2 workers)."""
    rows = [{"inputs": f"t {i}", "targets": f"a {i}", "language": "eng" if i < 900 else "swa"} for i in range(1000)]
    _write(tmp_path / "temp" / "t.jsonl", rows)
    recipe = _recipe(corpus, temperature=0.5, budget=1000, caps={}, workers=2, sources=[
        {"name": "t", "type": "files", "path": str(tmp_path / "temp")}])
    P.build(recipe, tmp_path / "run")
    stats = P.load_stats(tmp_path / "run")
    assert stats["counts"]["language"] == {"eng-Latn": 750, "swh-Latn": 250}
    swa = Counter(r["id"] for r in _rows(tmp_path / "run") if r["language"] == "swh-Latn")
    assert set(swa.values()) == {2, 3} and sum(swa.values()) == 250  # 2 passes + 50 sampled


def test_bad_input_errors(corpus, tmp_path):
    empty = tmp_path / "empty"
    _write(empty / "e.jsonl", [])
    with pytest.raises(DataError, match="yielded no examples"):
        P.build(_recipe(corpus, sources=[{"name": "e", "type": "files", "path": str(empty)}]), tmp_path / "r1")
    with pytest.raises((UnknownLanguageError, RecipeError), match="xx"):
        P.build(_recipe(corpus, languages=["xx"]), tmp_path / "r2")
    # every row filtered away: the source is empty after filtering
    with pytest.raises(DataError, match="'big' is empty"):
        P.build(_recipe(corpus, filters={"langid": False, "min_input_chars": 1000}, sources=[
            {"name": "big", "type": "files", "path": str(corpus / "big")}]), tmp_path / "r3")


def test_files_source_split_by_file_across_tasks(corpus, built, tmp_path):
    """A files source of several files is read file by file across tasks (one empty file is fine): same mixture."""
    split = tmp_path / "split"
    lines = (corpus / "big" / "part.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    for i in range(3):
        (split / "big").mkdir(parents=True, exist_ok=True)
        (split / "big" / f"part-{i}.jsonl").write_text("".join(lines[i::3]), encoding="utf-8")
    (split / "big" / "part-3.jsonl").write_text("", encoding="utf-8")
    recipe = _recipe(corpus, tasks=3)
    specs = recipe.model_dump(mode="json")["data"]["sources"]
    specs[0]["path"] = str(split / "big")
    P.build(_recipe(corpus, tasks=3, sources=specs), tmp_path / "run")
    reports = [json.loads(p.read_text()) for p in (tmp_path / "run" / "data" / ".work" / "reports").glob("filter-*")]
    assert sorted(r["read"]["big"] for r in reports) == [2016, 2017, 2017]  # each file read by one task only
    assert sum(r["read"]["small"] for r in reports) == 320  # a one-file source is shared batch by batch
    for a, b in zip(P.shard_paths(built), P.shard_paths(tmp_path / "run"), strict=True):
        assert pq.read_table(a).equals(pq.read_table(b))


def test_streaming_thresholds_are_exact(monkeypatch):
    """The plan stage's windowed selection equals a full sort, also when a window misses (exact fallback)."""
    from ayakit.data import mixture as M

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, 20000)
    keys = M.record_keys(5, [f"k{i}" for i in range(20000)])
    mask = rng.random(20000) < 0.9
    counts = np.bincount(codes[mask], minlength=4)
    wants = {0: 1, 1: 2000, 2: int(counts[2]) - 1, 3: 0}

    def passes():
        for s in range(0, 20000, 3000):
            yield codes[s:s + 3000], keys[s:s + 3000], mask[s:s + 3000]

    def exact(g, k):
        return M.threshold(keys[mask & (codes == g)], k)

    assert select_thresholds(passes, counts, wants) == {g: exact(g, k) for g, k in wants.items()}
    monkeypatch.setattr(plan_step, "_window", lambda n, k: (0, 1))  # every window misses
    assert select_thresholds(passes, counts, wants) == {g: exact(g, k) for g, k in wants.items()}
