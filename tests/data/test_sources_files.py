"""The files reader: JSONL / Parquet / CSV / TSV, column mapping, language normalisation and every bad-input case."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ayakit.data.sources import READERS, open_source
from ayakit.errors import DataError
from ayakit.languages import UnknownLanguageError
from ayakit.recipe import RecipeError
from ayakit.recipe import recipe_from_dict
from ayakit.records import EXAMPLE_SCHEMA


def _recipe(source: dict, **data):
    return recipe_from_dict({"name": "t", "seed": 7, "data": {"sources": [source], **data}})


def _read(source: dict, **data):
    recipe = _recipe(source, **data)
    src = open_source(recipe.data.sources[0], recipe)
    batches = list(src.iter_batches(batch_size=2))
    rows = [r for b in batches for r in b.to_pylist()]
    return src, batches, rows


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


ROWS = [
    {"q": "Habari?", "a": "Nzuri.", "lang": "sw"},
    {"q": "Bonjour ?", "a": "Salut.", "lang": "fra_Latn"},
    {"q": "Hallo?", "a": "Hoi.", "lang": "nl"},
    {"q": "Ciao?", "a": "Ciao.", "lang": "tlh"},  # a valid ISO 639-3 code outside the 101: kept as its own variety
    {"q": "Salom?", "a": "Salom.", "lang": "uzn"},
]
MAP = {"inputs": "q", "targets": "a", "language": "lang"}


def test_jsonl_mapping_normalisation_and_dropping(tmp_path: Path):
    path = _jsonl(tmp_path / "d.jsonl", ROWS)
    src, batches, rows = _read({"name": "mine", "type": "files", "path": str(path), "columns": MAP,
                                "options": {"task": "chat"}})
    assert all(b.schema.equals(EXAMPLE_SCHEMA) for b in batches)
    assert all(b.num_rows <= 2 for b in batches)
    assert [r["language"] for r in rows] == ["swh-Latn", "fra-Latn", "nld-Latn", "tlh-Latn", "uzn-Latn"]
    assert [r["script"] for r in rows] == ["Latn"] * 5
    assert src.dropped_languages == {} and src.skipped == {}
    assert {r["source"] for r in rows} == {"mine"} and {r["dataset"] for r in rows} == {"mine"}
    assert {r["task"] for r in rows} == {"chat"} and {r["split"] for r in rows} == {"train"}
    assert len({r["id"] for r in rows}) == 5
    # deterministic ids across reads
    assert [r["id"] for r in _read({"name": "mine", "type": "files", "path": str(path), "columns": MAP})[2]] == \
        [r["id"] for r in rows]


def test_parquet_csv_tsv_folder_and_glob(tmp_path: Path):
    table = pa.table({"inputs": ["a1", "a2"], "targets": ["b1", "b2"], "language": ["de", "deu"]})
    pq.write_table(table, tmp_path / "x.parquet")
    (tmp_path / "y.csv").write_text('inputs,targets,language\n"one, two",uno,es\n', encoding="utf-8")
    (tmp_path / "z.tsv").write_text('inputs\ttargets\tlanguage\n"quoted\tcita\tpt\n', encoding="utf-8")
    src, _b, rows = _read({"name": "f", "type": "files", "path": str(tmp_path), "license": "CC0", "kind": "human"})
    assert sorted(r["language"] for r in rows) == ["deu-Latn", "deu-Latn", "por-Latn", "spa-Latn"]
    assert {r["inputs"] for r in rows} >= {"one, two", '"quoted'}
    assert {r["license"] for r in rows} == {"CC0"} and {r["kind"] for r in rows} == {"human"}
    assert src.dataset_sizes() is None  # mixed formats: not cheap
    _s, _b, rows = _read({"name": "g", "type": "files", "path": str(tmp_path / "*.parquet")})
    assert len(rows) == 2
    only_parquet = open_source(*_spec_and_recipe({"name": "g", "type": "files", "path": str(tmp_path / "x.parquet")}))
    assert only_parquet.dataset_sizes() == {"g": 2}


def _spec_and_recipe(source: dict):
    recipe = _recipe(source)
    return recipe.data.sources[0], recipe


def test_language_option_and_selection(tmp_path: Path):
    path = _jsonl(tmp_path / "d.jsonl", [{"inputs": "a", "targets": "b"}, {"inputs": "c", "targets": "d"}])
    _s, _b, rows = _read({"name": "s", "type": "files", "path": str(path), "options": {"language": "yo"}})
    assert {r["language"] for r in rows} == {"yor-Latn"}
    path2 = _jsonl(tmp_path / "e.jsonl", ROWS)
    _s, _b, rows = _read({"name": "s", "type": "files", "path": str(path2), "columns": MAP, "languages": ["swa", "nld"]})
    assert [r["language"] for r in rows] == ["swh-Latn", "nld-Latn"]
    with pytest.raises((UnknownLanguageError, RecipeError), match="qqq"):
        _read({"name": "s", "type": "files", "path": str(path2), "columns": MAP, "languages": ["qqq"]})
    with pytest.raises((UnknownLanguageError, RecipeError), match="data.languages"):
        _read({"name": "s", "type": "files", "path": str(path2), "columns": MAP}, languages=["zzz"])


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path):
    path = _jsonl(tmp_path / "bad.jsonl", [ROWS[0], '{"q": "broken', ROWS[1], "[1, 2]"])
    with pytest.raises(DataError, match=r"bad\.jsonl:2: malformed JSON"):
        _read({"name": "s", "type": "files", "path": str(path), "columns": MAP})
    src, _b, rows = _read({"name": "s", "type": "files", "path": str(path), "columns": MAP}, on_error="skip")
    assert len(rows) == 2 and src.errors == 2


def test_missing_column_names_column_file_and_columns(tmp_path: Path):
    path = _jsonl(tmp_path / "m.jsonl", [{"q": "x", "lang": "sw"}])
    with pytest.raises(DataError, match=r"m\.jsonl: missing column 'a'.*\['lang', 'q'\]"):
        _read({"name": "s", "type": "files", "path": str(path), "columns": MAP})
    pq.write_table(pa.table({"inputs": ["x"], "language": ["sw"]}), tmp_path / "p.parquet")
    with pytest.raises(DataError, match=r"p\.parquet: missing column 'targets'"):
        _read({"name": "s", "type": "files", "path": str(tmp_path / "p.parquet")})


def test_malformed_csv_row(tmp_path: Path):
    path = tmp_path / "r.csv"
    path.write_text("inputs,targets,language\na,b,sw\nonly-one-field\nc,d,sw\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"r\.csv:3: malformed CSV row: 'only-one-field'"):
        _read({"name": "s", "type": "files", "path": str(path)})
    src, _b, rows = _read({"name": "s", "type": "files", "path": str(path)}, on_error="skip")
    assert len(rows) == 2 and src.errors == 1


def test_empty_source_and_unknown_type(tmp_path: Path):
    path = _jsonl(tmp_path / "only_unknown.jsonl", [ROWS[3]])
    with pytest.raises(DataError, match=r"source 'empty' yielded no examples.*'tlh-Latn': 1.*only_unknown\.jsonl"):
        _read({"name": "empty", "type": "files", "path": str(path), "columns": MAP}, languages=["swa"])
    (tmp_path / "blank.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="yielded no examples"):
        _read({"name": "empty", "type": "files", "path": str(tmp_path / "blank.jsonl")})
    with pytest.raises(DataError, match=r"does not exist"):
        _read({"name": "s", "type": "files", "path": str(tmp_path / "nope")})
    with pytest.raises(DataError, match=r"unknown type 'parquetz'; known types: .*embedded.*files"):
        _read({"name": "s", "type": "parquetz"})
    assert {"embedded", "files", "aya_dataset", "aya_collection", "xp3x", "aya_evaluation_suite",
            "data_provenance", "flores", "tatoeba"} <= set(READERS)


def test_streaming_batches_bounded(tmp_path: Path):
    rows = [{"inputs": f"i{i}", "targets": f"t{i}", "language": "sw"} for i in range(5000)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "big.parquet", row_group_size=500)
    recipe = _recipe({"name": "b", "type": "files", "path": str(tmp_path / "big.parquet")})
    src = open_source(recipe.data.sources[0], recipe)
    sizes = [b.num_rows for b in src.iter_batches(batch_size=300)]
    assert max(sizes) <= 300 and sum(sizes) == 5000 and src.rows_read == 5000


def test_any_language_and_variety_kept_distinct(tmp_path: Path):
    """Rows in languages outside the Aya 101 are kept; the script comes from the tag, the script column, the text."""
    rows = [{"inputs": "Muraho?", "targets": "Ni meza.", "language": "kin"},
            {"inputs": "你好嗎？", "targets": "我好。", "language": "yue"},
            {"inputs": "你好吗？", "targets": "我很好。", "language": "zho", "script": "Hans"},
            {"inputs": "你好嗎？", "targets": "我很好。", "language": "zh-Hant"},
            {"inputs": "Kako si?", "targets": "Dobro sam.", "language": "srp_Latn"},
            {"inputs": "Како си?", "targets": "Добро сам.", "language": "srp"},
            {"inputs": "Kako si danas?", "targets": "Dobro sam, hvala.", "language": "srp"},
            {"inputs": "Hi?", "targets": "Hello.", "language": "en-GB"},
            {"inputs": "x", "targets": "y", "language": ""},
            {"inputs": "x", "targets": "y", "language": "qqq"}]
    path = _jsonl(tmp_path / "w.jsonl", rows)
    with pytest.raises(DataError, match=r"w\.jsonl:9: no language \(empty\)"):
        _read({"name": "w", "type": "files", "path": str(path)})
    src, _b, got = _read({"name": "w", "type": "files", "path": str(path)}, on_error="skip")
    assert [(r["language"], r["script"]) for r in got] == [
        ("kin-Latn", "Latn"), ("yue-Hant", "Hant"), ("zho-Hans", "Hans"), ("zho-Hant", "Hant"), ("srp-Latn", "Latn"),
        ("srp-Cyrl", "Cyrl"), ("srp-Latn", "Latn"), ("eng-Latn-GB", "Latn")]
    assert src.skipped == {"no language": 1, "not a language code": 1} and src.dropped_languages == {}
    # a selection keeps exactly the varieties named: zho never takes yue, srp-Latn never srp-Cyrl
    src, _b, got = _read({"name": "w", "type": "files", "path": str(path)},
                         languages=["kin", "zho-Hant", "srp-Latn"], on_error="skip")
    assert [r["language"] for r in got] == ["kin-Latn", "zho-Hant", "srp-Latn", "srp-Latn"]
    assert src.unselected == {"yue-Hant": 1, "zho-Hans": 1, "srp-Cyrl": 1, "eng-Latn-GB": 1}


def test_a_source_emptied_by_bad_language_codes_names_the_closest(tmp_path: Path):
    path = _jsonl(tmp_path / "b.jsonl", [{"inputs": "a", "targets": "b", "language": "swahil"},
                                         {"inputs": "c", "targets": "d", "language": None}])
    with pytest.raises(DataError, match=r"b\.jsonl:1: unknown language code 'swahil' .*closest known: swa"):
        _read({"name": "b", "type": "files", "path": str(path)})
    # skipped, they empty the source: its error names the codes with their closest, the reasons and the file
    with pytest.raises(DataError, match=r"'swahil' x1 \(closest known: swa.*2 malformed rows skipped: "
                                        r"1 no language, 1 not a language code; read .*b\.jsonl"):
        _read({"name": "b", "type": "files", "path": str(path)}, on_error="skip")


def test_a_set_name_selects_every_variety_of_its_rows(tmp_path: Path):
    rows = [{"inputs": "q", "targets": "a", "language": code} for code in ("swa", "kin", "yue", "srp_Latn", "wol")]
    path = _jsonl(tmp_path / "s.jsonl", rows)
    src, _b, got = _read({"name": "s", "type": "files", "path": str(path)}, languages=["aya-101"])
    assert [r["language"] for r in got] == ["swh-Latn", "yue-Hant", "srp-Latn"]
    assert src.unselected == {"kin-Latn": 1, "wol-Latn": 1}
