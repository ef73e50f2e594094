"""The paper's hub readers, on small local copies in each dataset's hub layout (the hub itself is never reached)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ayakit.data.sources import open_source
from ayakit.errors import DataError
from ayakit.recipe import recipe_from_dict


def _rows(source: dict, **data) -> tuple[object, list[dict]]:
    recipe = recipe_from_dict({"name": "t", "data": {"sources": [source], **data}})
    src = open_source(recipe.data.sources[0], recipe)
    return src, [r for b in src.iter_batches() for r in b.to_pylist()]


def _pq(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def test_aya_dataset_layout(tmp_path: Path):
    row = {"inputs": "Swali?", "targets": "Jibu.", "language": "Swahili", "language_code": "swh",
           "annotation_type": "original-annotations", "user_id": "u1"}
    _pq(tmp_path / "data" / "train-00000-of-00001.parquet", [row, {**row, "language_code": "wol", "inputs": "x"},
                                                             {**row, "language_code": "xx-nope", "inputs": "y"}])
    _pq(tmp_path / "data" / "test-00000-of-00001.parquet", [{**row, "inputs": "held-out test item"}])
    with pytest.raises(DataError, match=r"train-00000-of-00001\.parquet: row 3: unknown language code 'xx-nope'"):
        _rows({"name": "aya", "type": "aya_dataset", "path": str(tmp_path)})
    src, rows = _rows({"name": "aya", "type": "aya_dataset", "path": str(tmp_path)}, on_error="skip")
    assert [r["inputs"] for r in rows] == ["Swali?", "x"]  # train split only; Wolof kept, a non-language skipped
    assert [r["language"] for r in rows] == ["swh-Latn", "wol-Latn"]
    assert rows[0]["kind"] == "human" and rows[0]["dataset"] == "aya_dataset"
    assert rows[0]["task"] == "original-annotations" and rows[0]["license"] == "Apache-2.0"
    assert src.skipped == {"not a language code": 1} and src.dropped_languages == {}
    assert src.dataset_sizes() == {"aya_dataset": 3}


V1 = {"id": 1, "inputs": "Q", "targets": "A", "dataset_name": "Dolly-v2", "sub_dataset_name": "-",
      "task_type": "generation", "template_id": 3, "language_code": "fra", "split": "train", "script": "Latn"}
LATER = {"inputs": "Q2", "targets": "A2", "info_uuid": "u", "id": 9, "dataset_name": "xlel_wd",
         "sub_dataset_name": "-", "task_type": "event-linking", "template_id": 1, "language": "hin",
         "script": "Deva", "split": "train"}


def test_aya_collection_both_column_sets_and_configs(tmp_path: Path):
    _pq(tmp_path / "translated_dolly" / "train-00000-of-00001.parquet", [V1])
    _pq(tmp_path / "templated_xlel_wd" / "train-00000-of-00001.parquet", [LATER])
    _pq(tmp_path / "templated_xlel_wd" / "validation-00000-of-00001.parquet", [{**LATER, "inputs": "val"}])
    src, rows = _rows({"name": "coll", "type": "aya_collection", "path": str(tmp_path)})
    by = {r["dataset"]: r for r in rows}
    assert set(by) == {"translated_dolly", "templated_xlel_wd"}
    assert by["translated_dolly"]["kind"] == "translated" and by["translated_dolly"]["language"] == "fra-Latn"
    assert by["templated_xlel_wd"]["kind"] == "templated" and by["templated_xlel_wd"]["script"] == "Deva"
    assert by["templated_xlel_wd"]["task"] == "event-linking" and by["templated_xlel_wd"]["template"] == "1"
    assert src.dataset_sizes() == {"translated_dolly": 1, "templated_xlel_wd": 1}
    _s, rows = _rows({"name": "coll", "type": "aya_collection", "path": str(tmp_path), "configs": ["translated_*"]})
    assert [r["dataset"] for r in rows] == ["translated_dolly"]
    with pytest.raises(DataError, match="no files for configs"):
        _rows({"name": "coll", "type": "aya_collection", "path": str(tmp_path), "configs": ["nothing_*"]})


def test_xp3x_language_folders(tmp_path: Path):
    def write(folder: str, name: str, rows: list[dict]) -> None:
        (tmp_path / "data" / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    row = {"inputs": "質問", "targets": "答え", "language": "jpn_Jpan", "split": "train", "template": "translate",
           "dataset": "Helsinki-NLP/tatoeba_mt", "config": "jpn-eng"}
    write("jpn_Jpan", "xp3_Helsinki-NLP_tatoeba_mt_jpn-eng_train_translate.jsonl", [row, row])
    write("zsm_Latn", "xp3_paws-x_en_validation_Meaning.jsonl",
          [{**row, "language": "zsm_Latn", "inputs": "soalan", "dataset": "paws-x", "config": None}])
    write("kab_Latn", "xp3_flores_kab_dev_question.jsonl", [{**row, "language": "kab_Latn"}] * 3)
    write("code", "xp3_code.jsonl", [{**row, "language": "code"}] * 2)
    src, rows = _rows({"name": "xp3x", "type": "xp3x", "path": str(tmp_path)})
    assert sorted(r["language"] for r in rows) == ["jpn-Jpan", "jpn-Jpan", "kab-Latn", "kab-Latn", "kab-Latn",
                                                   "zsm-Latn"]
    assert {r["dataset"] for r in rows} == {"Helsinki-NLP/tatoeba_mt/jpn-eng", "paws-x"}
    assert {r["template"] for r in rows} == {"translate"} and {r["split"] for r in rows} == {"train"}
    assert src.dropped_languages == {"code": 2}
    _s, rows = _rows({"name": "xp3x", "type": "xp3x", "path": str(tmp_path), "languages": ["msa"]})
    assert [r["inputs"] for r in rows] == ["soalan"]


def test_aya_evaluation_suite_and_data_provenance(tmp_path: Path):
    ev = tmp_path / "suite"
    _pq(ev / "aya_human_annotated" / "test-00000-of-00001.parquet",
        [{"id": 5, "inputs": "I", "targets": "T", "language": "arb", "script": "Arab"}])
    _pq(ev / "dolly_machine_translated" / "test-00000-of-00001.parquet",
        [{"id": 5, "inputs": "I2", "targets": "T2", "language": "yor", "script": "Latn"}])
    _s, rows = _rows({"name": "ev", "type": "aya_evaluation_suite", "path": str(ev)})
    by = {r["language"]: r for r in rows}
    assert by["arb-Arab"]["id"] == "aya_human_annotated:5" and by["arb-Arab"]["kind"] == "human"
    assert by["yor-Latn"]["kind"] == "translated" and {r["split"] for r in rows} == {"test"}

    dp = tmp_path / "dp"
    (dp / "data").mkdir(parents=True)
    (dp / "data" / "train.jsonl").write_text(
        json.dumps({"inputs": "a", "targets": "b", "dataset": "flan_v2", "license": "Apache-2.0"}) + "\n"
        + json.dumps({"inputs": "c", "targets": "d", "dataset": "oasst", "language": "de"}) + "\n", encoding="utf-8")
    _s, rows = _rows({"name": "dp", "type": "data_provenance", "path": str(dp)})
    assert [(r["dataset"], r["language"]) for r in rows] == [("flan_v2", "eng-Latn"), ("oasst", "deu-Latn")]
    assert rows[0]["license"] == "Apache-2.0"


def test_hub_without_path_is_a_clear_error():
    with pytest.raises(DataError, match=r"cannot fetch CohereForAI/aya_dataset from the Hugging Face hub \(offline\?\)"
                                        r".*set `path:`"):
        _rows({"name": "aya", "type": "aya_dataset"})


def test_hub_layout_missing_column(tmp_path: Path):
    _pq(tmp_path / "data" / "train-00000-of-00001.parquet", [{"inputs": "x", "targets": "y", "language": "Swahili"}])
    with pytest.raises(DataError, match=r"missing column 'language_code'.*columns \['inputs', 'language', 'targets'\]"):
        _rows({"name": "aya", "type": "aya_dataset", "path": str(tmp_path)})
