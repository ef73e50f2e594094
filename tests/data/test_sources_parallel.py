"""FLORES-200 (SIB-200 and official layouts) and Tatoeba readers: both directions, train split only."""

from __future__ import annotations

from pathlib import Path

import pytest

from ayakit.data.sources import open_source, tatoeba_split
from ayakit.errors import DataError
from ayakit.recipe import recipe_from_dict


def _open(source: dict, data_dir: str | None = None):
    doc = {"name": "t", "data": {"sources": [source]}}
    if data_dir:
        doc["data_dir"] = data_dir
    recipe = recipe_from_dict(doc)
    return open_source(recipe.data.sources[0], recipe)


def _rows(src) -> list[dict]:
    return [r for b in src.iter_batches() for r in b.to_pylist()]


def _sib(root: Path) -> Path:
    ann = root / "sib200" / "data" / "annotated"
    for code, texts in {"eng_Latn": ["One.", "Two.", "Test only."], "swh_Latn": ["Moja.", "Mbili.", "Mtihani."],
                        "zho_Hant": ["一。", "二。", "考。"], "kab_Latn": ["Yiwen.", "Sin.", "x"]}.items():
        (ann / code).mkdir(parents=True)
        rows = [f"{i}\tscience\t{t}" for i, t in zip((10, 2), texts[:2])]
        (ann / code / "train.tsv").write_text("index_id\tcategory\ttext\n" + "\n".join(rows) + "\n", encoding="utf-8")
        (ann / code / "test.tsv").write_text(f"index_id\tcategory\ttext\n99\tscience\t{texts[2]}\n", encoding="utf-8")
    return root


def test_flores_sib_layout_both_directions_train_only(tmp_path: Path):
    src = _open({"name": "flores", "type": "flores"}, data_dir=str(_sib(tmp_path)))
    rows = _rows(src)
    assert {r["language"] for r in rows} == {"swh-Latn", "zho-Hant"}  # by default the Aya languages only
    assert {r["script"] for r in rows if r["language"] == "zho-Hant"} == {"Hant"}
    swa = [r for r in rows if r["language"] == "swh-Latn"]
    assert len(swa) == 4  # 2 sentences x 2 directions
    assert {r["targets"] for r in swa} == {"Moja.", "Mbili.", "One.", "Two."}
    pairs = {(r["inputs"], r["targets"]) for r in swa}
    assert any("One." in i and t == "Moja." for i, t in pairs)  # parallel through index_id
    assert not any("Mtihani" in r["inputs"] + r["targets"] for r in rows)  # test split never read
    assert {(r["kind"], r["dataset"], r["license"]) for r in rows} == {("human", "flores200", "CC-BY-SA-4.0")}
    assert {r["template"].rsplit(".", 1)[1] for r in rows} == {"to_eng", "from_eng"}
    # a selection takes any FLORES variety, in or outside the Aya 101
    rows = _rows(_open({"name": "flores", "type": "flores", "languages": ["kab", "zho-Hant"]},
                       data_dir=str(_sib(tmp_path / "again"))))
    assert {r["language"] for r in rows} == {"kab-Latn", "zho-Hant"}
    assert any("Kabyle" in r["inputs"] for r in rows)


def test_flores_official_layout(tmp_path: Path):
    dev = tmp_path / "flores200_dataset" / "dev"
    dev.mkdir(parents=True)
    (dev / "eng_Latn.dev").write_text("Hello.\nBye.\n", encoding="utf-8")
    (dev / "fra_Latn.dev").write_text("Bonjour.\nAu revoir.\n", encoding="utf-8")
    (dev / "deu_Latn.dev").write_text("Hallo.\n", encoding="utf-8")
    src = _open({"name": "fl", "type": "flores", "path": str(tmp_path), "languages": ["fra"],
                 "options": {"directions": ["to_eng"]}})
    rows = _rows(src)
    assert [(r["language"], r["targets"]) for r in rows] == [("fra-Latn", "Hello."), ("fra-Latn", "Bye.")]
    with pytest.raises(DataError, match=r"deu_Latn\.dev: 1 lines.*line-aligned"):
        _rows(_open({"name": "fl", "type": "flores", "path": str(tmp_path)}))


def test_optional_source_without_data_is_skipped(tmp_path: Path):
    missing = tmp_path / "absent"
    for kind in ("flores", "tatoeba"):
        src = _open({"name": kind, "type": kind, "path": str(missing), "options": {"optional": True}})
        assert src.skipped_reason and "does not exist" in src.skipped_reason
        assert list(src.iter_batches()) == []
        with pytest.raises(DataError, match="does not exist"):
            _open({"name": kind, "type": kind, "path": str(missing)})


def test_tatoeba_split_partitions_lines():
    train, held = tatoeba_split(101, seed=3)
    assert sorted(train + held) == list(range(101)) and not set(train) & set(held)
    assert len(held) == round(101 * 0.5)
    assert (train, held) == tatoeba_split(101, seed=3) and (train, held) != tatoeba_split(101, seed=4)
    train, held = tatoeba_split(10, heldout_fraction=0.2)
    assert len(held) == 2 and len(train) == 8


def test_tatoeba_reader_reads_train_lines_only(tmp_path: Path):
    v1 = tmp_path / "tatoeba" / "data" / "tatoeba" / "v1"
    v1.mkdir(parents=True)
    (v1 / "tatoeba.fra-eng.fra").write_text("".join(f"fr{i}\n" for i in range(10)), encoding="utf-8")
    (v1 / "tatoeba.fra-eng.eng").write_text("".join(f"en{i}\n" for i in range(10)), encoding="utf-8")
    (v1 / "tatoeba.kab-eng.kab").write_text("a\nb\n", encoding="utf-8")
    (v1 / "tatoeba.kab-eng.eng").write_text("c\nd\n", encoding="utf-8")
    src = _open({"name": "tat", "type": "tatoeba", "options": {"directions": ["from_eng"]}}, data_dir=str(tmp_path))
    rows = _rows(src)
    train, held = tatoeba_split(10, seed=1234)
    assert sorted(r["targets"] for r in rows) == sorted(f"fr{i}" for i in train)
    assert not {r["targets"] for r in rows} & {f"fr{i}" for i in held}
    assert src.dropped_languages == {} and src.unselected == {"kab-Latn": 2}  # outside the default Aya set
    sel = _rows(_open({"name": "tat", "type": "tatoeba", "languages": ["kab"]}, data_dir=str(tmp_path)))
    assert {r["language"] for r in sel} == {"kab-Latn"} and len(sel) == 2 * 1
    assert {(r["kind"], r["license"], r["dataset"]) for r in rows} == {("human", "CC-BY-2.0-FR", "tatoeba")}


def test_shared_flores_and_tatoeba(shared_data: Path):
    src = _open({"name": "fl", "type": "flores", "languages": ["swa", "yor", "zho"],
                 "options": {"per_language": 20}}, data_dir=str(shared_data))
    rows = _rows(src)
    assert {r["language"] for r in rows} == {"swh-Latn", "yor-Latn", "zho-Hans", "zho-Hant"}
    assert len(rows) == 4 * 20 * 2  # `zho` selects both scripts of Chinese (never Cantonese)
    tat = _open({"name": "tat", "type": "tatoeba", "languages": ["swa", "fry"]}, data_dir=str(shared_data))
    rows = _rows(tat)
    assert {r["language"] for r in rows} == {"swh-Latn", "fry-Latn"}
