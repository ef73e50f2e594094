"""Property: whatever bytes or JSON lines a file holds, every reader yields rows or a located DataError."""

from __future__ import annotations

import gzip
import io
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ayakit.data.sources import open_source
from ayakit.errors import DataError
from ayakit.recipe import recipe_from_dict

SUFFIXES = ["jsonl", "jsonl.gz", "csv", "tsv", "parquet", "csv.gz"]
# pyarrow cannot hand a bad row holding invalid UTF-8 to the handler: it says so as an unraisable warning
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _outcome(path: Path, on_error: str) -> None:
    """Read the file: rows (as EXAMPLE_SCHEMA batches) or a DataError that names the file; anything else fails."""
    recipe = recipe_from_dict({"name": "fz", "seed": 1, "data": {
        "on_error": on_error, "sources": [{"name": "s", "type": "files", "path": str(path)}]}})
    try:
        src = open_source(recipe.data.sources[0], recipe)
        rows = sum(b.num_rows for b in src.iter_batches(batch_size=8))
    except DataError as exc:
        assert path.name in str(exc) or "'s'" in str(exc), f"error does not say where: {exc}"
        return
    assert rows > 0


def _write(directory: str, suffix: str, data: bytes) -> Path:
    path = Path(directory) / f"f.{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    return path


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("on_error", ["raise", "skip"])
@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes(suffix: str, on_error: str, data: bytes):
    with tempfile.TemporaryDirectory() as d:
        _outcome(_write(d, suffix, data), on_error)


@pytest.mark.parametrize("suffix", SUFFIXES)
@FUZZ
@given(data=st.binary(max_size=200), keep=st.integers(0, 400))
def test_valid_file_with_random_bytes_inside(suffix: str, data: bytes, keep: int):
    """A good file of the format, cut at a random point with random bytes appended."""
    lines = [{"inputs": "Habari?", "targets": "Nzuri.", "language": "sw"}] * 3
    if suffix == "parquet":
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(lines), buf)
        good = buf.getvalue()
    elif suffix.startswith("jsonl"):
        good = "".join(json.dumps(r) + "\n" for r in lines).encode()
    else:
        sep = "\t" if suffix.startswith("tsv") else ","
        good = ("\n".join(sep.join(r) for r in [["inputs", "targets", "language"],
                                                 *[list(x.values()) for x in lines]]) + "\n").encode()
    with tempfile.TemporaryDirectory() as d:
        for on_error in ("raise", "skip"):
            _outcome(_write(d, suffix, good[:keep] + data), on_error)


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                        max_size=3), max_leaves=6)
ROW = st.fixed_dictionaries({}, optional={
    "inputs": JSON_VALUES | st.text(max_size=10), "targets": JSON_VALUES | st.text(max_size=10),
    "language": st.sampled_from(["sw", "eng", "", "englsh", "tlh", "zz-Latn", "fra_Latn"]) | JSON_VALUES})


@pytest.mark.parametrize("on_error", ["raise", "skip"])
@FUZZ
@given(rows=st.lists(ROW | JSON_VALUES, min_size=1, max_size=6),
       cut=st.sampled_from([None, 1, 7, -2]), crlf=st.booleans(), bom=st.booleans())
def test_random_json_lines(on_error: str, rows: list, cut: int | None, crlf: bool, bom: bool):
    lines = [json.dumps(r, ensure_ascii=bool(cut)) for r in rows]
    if cut is not None:
        lines[-1] = lines[-1][:cut]
    text = ("\r\n" if crlf else "\n").join(lines)
    with tempfile.TemporaryDirectory() as d:
        _outcome(_write(d, "jsonl", (b"\xef\xbb\xbf" if bom else b"") + text.encode()), on_error)
