"""Bad input to the file readers: every problem is a located DataError (or, under on_error=skip, a counted skip)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ayakit.data.sources import open_source
from ayakit.errors import DataError
from ayakit.recipe import recipe_from_dict


def _read(path: Path, **data):
    recipe = recipe_from_dict({"name": "t", "seed": 7, "data": {
        "sources": [{"name": "s", "type": "files", "path": str(path)}], **data}})
    src = open_source(recipe.data.sources[0], recipe)
    rows = [r for b in src.iter_batches(batch_size=4) for r in b.to_pylist()]
    return src, rows


GOOD = '{"inputs": "Habari?", "targets": "Nzuri.", "language": "sw"}'


def test_invalid_utf8_is_located_and_skippable(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes((GOOD + "\n").encode() + b'{"inputs": "caf\xe9", "targets": "x", "language": "fr"}\n'
                     + (GOOD + "\n").encode())
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not valid UTF-8 \(byte 0xe9 at column 16\)"):
        _read(path)
    src, rows = _read(path, on_error="skip")
    assert len(rows) == 2 and src.errors == 1 and src.skipped == {"not valid UTF-8": 1}


def test_invalid_utf8_in_csv_is_located(tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"inputs,targets,language\na,b,sw\nc\xff,d,sw\n")
    with pytest.raises(DataError, match=r"bad\.csv:3: not valid UTF-8 \(byte 0xff at column 2\)"):
        _read(path)


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "jsonl.gz"])
def test_bom_and_crlf_accepted(tmp_path: Path, suffix: str):
    if suffix.startswith("jsonl"):
        body = "\r\n".join([GOOD, GOOD.replace("Habari", "Jambo")]) + "\r\n"
    else:
        body = "inputs,targets,language\r\nHabari?,Nzuri.,sw\r\nJambo?,Nzuri.,sw\r\n"
    data = b"\xef\xbb\xbf" + body.encode()
    path = tmp_path / f"bom.{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    for on_error in ("raise", "skip"):
        src, rows = _read(path, on_error=on_error)
        assert [r["inputs"] for r in rows] == ["Habari?", "Jambo?"] and src.errors == 0
        assert all(not r["targets"].endswith("\r") for r in rows)


@pytest.mark.parametrize(("value", "kind"), [(5, "a number"), (True, "true/false"), (["a"], "a list"),
                                             ({"a": 1}, "an object")])
def test_non_text_targets_is_an_error(tmp_path: Path, value, kind: str):
    path = tmp_path / "t.jsonl"
    path.write_text(GOOD + "\n" + json.dumps({"inputs": "x", "targets": value, "language": "eng"}) + "\n")
    with pytest.raises(DataError, match=rf"t\.jsonl:2: 'targets' must be text, got {kind}"):
        _read(path)
    src, rows = _read(path, on_error="skip")
    assert len(rows) == 1 and src.skipped == {"wrong type": 1}


def test_parquet_number_column_is_an_error(tmp_path: Path):
    pq.write_table(pa.table({"inputs": ["a"], "targets": [5], "language": ["sw"]}), tmp_path / "n.parquet")
    with pytest.raises(DataError, match=r"n\.parquet: column 'targets' \(field 'targets'\) must be text, got int64"):
        _read(tmp_path / "n.parquet")


def test_null_or_empty_language_is_located(tmp_path: Path):
    path = tmp_path / "l.jsonl"
    path.write_text(GOOD + "\n" + '{"inputs": "x", "targets": "y", "language": null}\n'
                    + '{"inputs": "x", "targets": "y", "language": ""}\n')
    with pytest.raises(DataError, match=r"l\.jsonl:2: no language \(null\)"):
        _read(path)
    src, rows = _read(path, on_error="skip")
    assert len(rows) == 1 and src.skipped == {"no language": 2}
    csv = tmp_path / "l.csv"
    csv.write_text("inputs,targets,language\na,b,sw\nc,d,\n")
    with pytest.raises(DataError, match=r"l\.csv: row 2: no language \(empty\)"):
        _read(csv)
    src, rows = _read(csv, on_error="skip")
    assert len(rows) == 1 and src.skipped == {"no language": 1}


def test_missing_language_column_on_a_later_line_is_located(tmp_path: Path):
    path = tmp_path / "m.jsonl"
    path.write_text(GOOD + "\n" + '{"inputs": "x", "targets": "y"}\n')
    with pytest.raises(DataError, match=r"m\.jsonl:2: missing column 'language'"):
        _read(path)


def test_invalid_language_code_names_closest(tmp_path: Path):
    path = tmp_path / "c.jsonl"
    path.write_text(GOOD + "\n" + '{"inputs": "x", "targets": "y", "language": "englsh"}\n')
    with pytest.raises(DataError, match=r"c\.jsonl:2: unknown language code 'englsh'.*closest known: .*eng"):
        _read(path)
    pq.write_table(pa.table({"inputs": ["a"], "targets": ["b"], "language": ["englsh"]}), tmp_path / "c.parquet")
    with pytest.raises(DataError, match=r"c\.parquet: row 1: unknown language code 'englsh'.*eng"):
        _read(tmp_path / "c.parquet")
    src, rows = _read(path, on_error="skip")
    assert len(rows) == 1 and src.skipped == {"not a language code": 1}


def test_truncated_json_line_says_cut_off(tmp_path: Path):
    path = tmp_path / "cut.jsonl"
    path.write_text(GOOD + "\n" + GOOD[:30] + "\n" + GOOD[:-1] + "\n")
    with pytest.raises(DataError, match=r"cut\.jsonl:2: .*looks cut off"):
        _read(path)
    src, rows = _read(path, on_error="skip")
    assert len(rows) == 1 and src.skipped == {"cut-off JSON line": 2}
    other = tmp_path / "other.jsonl"
    other.write_text('{"inputs": "a" "targets": "b"}\n')
    with pytest.raises(DataError, match=r"other\.jsonl:1: malformed JSON line: Expecting ',' delimiter") as info:
        _read(other)
    assert "cut off" not in str(info.value)


def test_empty_source_names_the_files_read(tmp_path: Path):
    path = tmp_path / "only-bad.jsonl"
    path.write_text('{"inputs": 1, "targets": "y", "language": "sw"}\n')
    with pytest.raises(DataError, match=r"source 's' yielded no examples.*1 wrong type.*read .*only-bad\.jsonl"):
        _read(path, on_error="skip")


def test_corrupt_binary_files_are_data_errors(tmp_path: Path):
    (tmp_path / "x.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"x\.parquet: not a readable Parquet file"):
        _read(tmp_path / "x.parquet")
    (tmp_path / "x.jsonl.gz").write_bytes(b"\x1f\x8b\x08 broken gzip")
    with pytest.raises(DataError, match=r"x\.jsonl\.gz: cannot be read"):
        _read(tmp_path / "x.jsonl.gz")


def test_optional_language_column_may_be_empty_never_a_non_language(tmp_path: Path):
    """With options.language the file's own language column may be empty (the default applies), but a value that is
    no language code is still a located error, as in a file without a default."""
    path = tmp_path / "o.jsonl"
    path.write_text('{"inputs": "a", "targets": "b", "language": ""}\n'
                    '{"inputs": "c", "targets": "d", "language": "tlh"}\n'
                    '{"inputs": "e", "targets": "f", "language": "xx-nope"}\n')
    recipe = recipe_from_dict({"name": "t", "data": {"sources": [
        {"name": "s", "type": "files", "path": str(path), "options": {"language": "swa"}}]}})
    with pytest.raises(DataError, match=r"o\.jsonl:3: unknown language code 'xx-nope'.*closest known"):
        list(open_source(recipe.data.sources[0], recipe).iter_batches())
    src, rows = _read(path, on_error="skip")
    assert [r["language"] for r in rows] == ["tlh-Latn"] and src.skipped == {"no language": 1, "not a language code": 1}
