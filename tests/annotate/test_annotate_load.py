"""Loading work: mixture runs, example files, judge answer pairs, and clear errors."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from ayakit.annotate.load import load
from ayakit.annotate.models import Item, Pair
from ayakit.errors import DataError
from ayakit.records import Example, examples_to_table


def _run_dir(tmp_path):
    data = tmp_path / "runs" / "demo" / "data"
    data.mkdir(parents=True)
    rows = [Example("Q1", "A1", "swa", kind="translated", source="tx"), Example("Q2", "A2", "ara"),
            Example("Q3", "A3", "zho")]
    pq.write_table(examples_to_table(rows[:2]), data / "shards-00000.parquet")
    pq.write_table(examples_to_table(rows[2:]), data / "shards-00001.parquet")
    return tmp_path / "runs" / "demo", rows


def test_load_a_mixture_run_is_idempotent(factory, tmp_path) -> None:
    run, rows = _run_dir(tmp_path)
    with factory() as s:
        result = load(s, run, "edit", languages=["swa", "ara"])
        assert (result.added, result.skipped, len(result.files)) == (2, 0, 2)
        assert load(s, run, "edit").added == 1  # zho now; swa and ara already there
        assert load(s, run, "edit").skipped == 3
        assert load(s, run, "rate", limit=1).added == 1
        items = {i.external_id: i for i in s.scalars(select(Item).where(Item.activity == "edit"))}
    assert items[rows[0].id].kind == "translated" and items[rows[0].id].source == "tx"
    assert items[rows[1].id].script == "Arab"


def test_load_judge_pairs_with_verdicts(factory, pairs_file) -> None:
    with factory() as s:
        assert load(s, pairs_file, "compare").added == 3
        pairs = {p.external_id.split("|")[-1]: p for p in s.scalars(select(Pair))}
    assert {k: p.judge_winner for k, p in pairs.items()} == {"d1": "aya", "d2": "aya", "d3": "tie"}
    assert pairs["d2"].language == "ara"


@pytest.mark.parametrize("line, message", [
    ('{"inputs": "a", "targets": "b"}', "bad.jsonl:2: missing language"),
    ('{"inputs": "a", "targets": "b", "language": "qqq"}', "bad.jsonl:2: unknown language"),
    ("{not json", "bad.jsonl:2: not valid JSON"),
])
def test_bad_example_rows_name_file_and_line(factory, tmp_path, line, message) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"inputs": "a", "targets": "b", "language": "swa"}\n' + line + "\n", encoding="utf-8")
    with factory() as s, pytest.raises(DataError, match=message):
        load(s, bad, "rate")
    with factory() as s:
        assert s.scalar(select(Item)) is None  # nothing half-loaded


def test_bad_pairs(factory, tmp_path) -> None:
    row = {"id": "1", "language": "swa", "prompt": "p", "model_a": "x", "model_b": "y", "answer_a": "1",
           "answer_b": "2", "verdict": "C"}
    bad = tmp_path / "j.jsonl"
    bad.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with factory() as s, pytest.raises(DataError, match="j.jsonl:1: column verdict='C'"):
        load(s, bad, "compare")
    with factory() as s, pytest.raises(DataError, match="missing answer_b"):
        bad.write_text(json.dumps({**row, "answer_b": ""}) + "\n", encoding="utf-8")
        load(s, bad, "compare")
    with factory() as s, pytest.raises(FileNotFoundError):
        load(s, tmp_path / "nope", "edit")


def test_load_an_ayakit_judge_out_folder(factory, tmp_path) -> None:
    out = tmp_path / "judge"
    (out / "cache").mkdir(parents=True)
    base = {"language": "hin", "prompt": "?", "model_a": "aya-101", "model_b": "mt0-xxl", "answer_a": "1",
            "answer_b": "2", "judge_ab": "Preferred: Answer (A)", "judge_ba": "Preferred: Answer (B)"}
    lines = [{**base, "id": f"x{i}", "verdict_ab": ab, "verdict_ba": ba, "outcome": outcome}
             for i, (ab, ba, outcome) in enumerate([("A", "B", "a"), ("B", "A", "b"), ("A", "A", "tie"),
                                                    (None, "B", "invalid")])]
    (out / "pairs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    (out / "summary.json").write_text("{}", encoding="utf-8")
    (out / "cache" / "judge.jsonl").write_text('{"key": "k", "reply": "r"}\n', encoding="utf-8")
    with factory() as s:
        result = load(s, out, "compare")
        winners = {p.external_id.split("|")[-1]: p.judge_winner for p in s.scalars(select(Pair))}
    assert result.files == [str(out / "pairs.jsonl")]
    assert winners == {"x0": "aya-101", "x1": "mt0-xxl", "x2": "tie", "x3": None}
