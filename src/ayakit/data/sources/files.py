"""Local files (JSONL, Parquet, CSV/TSV), read in streaming batches with a column mapping.

The `files` reader: `path:` is a file, a folder (searched recursively) or a glob. `columns:` maps
Example fields to file columns (`{inputs: question, targets: answer, language: lang}`); fields not
mapped are taken from a column of the same name when the file has one. Options:
`language` (the language of every row when the file has no language column), `dataset`
(default: the source name), `task`, `template`, `split`, `kind` and `license` (defaults for rows
without them), `batch_size` (rows per read, default 4096).
"""

from __future__ import annotations

import glob
import gzip
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ayakit.data.sources.base import Block, Source, make_source
from ayakit.errors import DataError
from ayakit.recipe import Recipe, SourceSpec
from ayakit.records import EXAMPLE_FIELDS

FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", ".csv", ".tsv", ".csv.gz", ".tsv.gz")
REQUIRED = ("inputs", "targets")

# A column mapping: Example field -> a column name, or alternatives (the first the file has wins).
Mapping = dict[str, str | Sequence[str]]


def file_format(path: Path) -> str:
    """'jsonl', 'parquet', 'csv' or 'tsv' from a file name."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".json")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".tsv"):
        return "tsv"
    if name.endswith(".csv"):
        return "csv"
    raise DataError(f"{path}: unsupported file type (use one of {', '.join(FILE_SUFFIXES)})")


def discover(path: str | Path, where: str) -> list[Path]:
    """The data files a path names: a file, every data file under a folder, or a glob's matches; sorted."""
    text = str(Path(path).expanduser())
    p = Path(text)
    if p.is_file():
        return [p]
    if p.is_dir():
        found = [f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(FILE_SUFFIXES)
                 and not any(part.startswith(".") for part in f.relative_to(p).parts)]
    elif glob.has_magic(text):
        found = [Path(f) for f in glob.glob(text, recursive=True) if Path(f).is_file()]
    else:
        raise DataError(f"{where}: path {text} does not exist")
    if not found:
        raise DataError(f"{where}: no data files ({', '.join(FILE_SUFFIXES)}) found at {text}")
    return sorted(found)


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _csv_parse(fmt: str, **kw: Any) -> pacsv.ParseOptions:
    # TSV files (FLORES, SIB-200) are unquoted: a '"' inside a sentence is text, not a quote.
    return pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", quote_char=False if fmt == "tsv" else '"', **kw)


def _csv_header(path: Path, fmt: str) -> list[str]:
    with _open_text(path) as fh:
        line = fh.readline().rstrip("\r\n")
    if not line:
        raise DataError(f"{path}: empty file (no header line)")
    one = pacsv.read_csv(io.BytesIO((line + "\n").encode("utf-8")), parse_options=_csv_parse(fmt))
    return one.schema.names


def file_columns(path: Path) -> list[str] | None:
    """Column names of a Parquet or CSV/TSV file without reading its rows (None for JSONL)."""
    fmt = file_format(path)
    if fmt == "parquet":
        return pq.ParquetFile(path).schema_arrow.names
    if fmt in ("csv", "tsv"):
        return _csv_header(path, fmt)
    return None


def resolve_mapping(mapping: Mapping, columns: Sequence[str], path: Path, required: Sequence[str]) -> dict[str, str]:
    """Field -> the column this file has; a required field (or an explicitly mapped one) that is missing raises."""
    have = set(columns)
    out: dict[str, str] = {}
    for fld in EXAMPLE_FIELDS:
        if fld in mapping and not mapping[fld]:
            continue  # explicitly not read from the file (a hub column of that name means something else)
        want = mapping.get(fld)
        options = [want] if isinstance(want, str) else list(want) if want else [fld]
        hit = next((c for c in options if c in have), None)
        if hit is not None:
            out[fld] = hit
        elif fld in required or isinstance(want, str):
            raise DataError(f"{path}: missing column {options[0]!r} (for field {fld!r}); "
                            f"the file has columns {sorted(have)}")
    return out


def iter_file_rows(path: Path, mapping: Mapping, source: Source, on_error: str,
                   required: Sequence[str] = REQUIRED, batch_size: int = 4096,
                   extra: dict[str, str] | None = None, keep: Sequence[str] = ()) -> Iterator[dict[str, Any] | Block]:
    """Rows of one file keyed by Example field (dicts for JSONL, column Blocks for Parquet/CSV); `extra` adds
    fixed values to every row, `keep` names further raw columns to carry (under their own names)."""
    fmt = file_format(path)
    extra = extra or {}
    if fmt == "jsonl":
        yield from _as_blocks(_jsonl_rows(path, mapping, source, on_error, required, extra, keep), batch_size)
        return
    if fmt == "parquet":
        pf = pq.ParquetFile(path)
        cols = _with_kept(resolve_mapping(mapping, pf.schema_arrow.names, path, required), pf.schema_arrow.names, keep)
        batches = pf.iter_batches(batch_size=batch_size, columns=sorted(set(cols.values())))
    else:
        cols, batches = _csv_batches(path, fmt, mapping, source, on_error, required, batch_size, keep)
    for batch in batches:
        yield from _batch_rows(batch, cols, extra)


def _batch_rows(batch: pa.RecordBatch, cols: dict[str, str], extra: dict[str, str]) -> Iterator[Block]:
    data: dict[str, Any] = dict(extra)
    for fld, col in cols.items():
        values = batch.column(col).to_pylist()
        if fld in extra:  # a null cell falls back on the fixed value
            values = [extra[fld] if v is None else v for v in values]
        data[fld] = values
    yield Block(data, batch.num_rows)


def _with_kept(cols: dict[str, str], columns: Sequence[str], keep: Sequence[str]) -> dict[str, str]:
    return {**cols, **{k: k for k in keep if k in columns and k not in cols}}


def _csv_batches(path: Path, fmt: str, mapping: Mapping, source: Source, on_error: str,
                 required: Sequence[str], batch_size: int, keep: Sequence[str] = ()):
    header = _csv_header(path, fmt)
    cols = _with_kept(resolve_mapping(mapping, header, path, required), header, keep)

    problems: list[str] = []

    def invalid(row: pacsv.InvalidRow) -> str:
        if on_error == "skip":
            source.errors += 1
            return "skip"
        # pyarrow swallows exceptions raised here: remember the message, let it stop with "error"
        problems.append(f"{path}:{row.number or '?'}: malformed {fmt.upper()} row: {row.text[:80]!r} "
                        f"(expected {row.expected_columns} columns, got {row.actual_columns})")
        return "error"

    parse = _csv_parse(fmt, newlines_in_values=fmt == "csv", invalid_row_handler=invalid)
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                   include_columns=sorted(set(cols.values())), strings_can_be_null=False,
                                   quoted_strings_can_be_null=False)
    read = pacsv.ReadOptions(block_size=1 << 22, use_threads=False)

    def gen():
        try:
            reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
            for batch in reader:
                for start in range(0, batch.num_rows, batch_size):
                    yield batch.slice(start, batch_size)
        except pa.ArrowInvalid as exc:
            raise DataError(problems[0] if problems else f"{path}: malformed {fmt.upper()}: {exc}") from None

    return cols, gen()


def _as_blocks(rows: Iterator[dict[str, Any]], size: int) -> Iterator[Block]:
    """Group row dicts into column Blocks of up to `size` rows."""
    buf: list[dict[str, Any]] = []
    for row in rows:
        buf.append(row)
        if len(buf) >= size:
            yield _block(buf)
            buf = []
    if buf:
        yield _block(buf)


def _block(rows: list[dict[str, Any]]) -> Block:
    keys = set().union(*rows)
    return Block({k: [r.get(k) for r in rows] for k in keys}, len(rows))


def _jsonl_rows(path: Path, mapping: Mapping, source: Source, on_error: str,
                required: Sequence[str], extra: dict[str, str], keep: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    cols: dict[str, str] | None = None
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError(f"a JSON {type(obj).__name__}, not an object")
            except ValueError as exc:
                if on_error == "skip":
                    source.errors += 1
                    continue
                msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                raise DataError(f"{path}:{lineno}: malformed JSON line: {msg}") from None
            if cols is None or not all(c in obj for c in cols.values()):
                try:
                    cols = _with_kept(resolve_mapping(mapping, list(obj), path, required), list(obj), keep)
                except DataError as exc:
                    if on_error == "skip" and cols is not None:
                        source.errors += 1
                        continue
                    raise DataError(f"{exc} (line {lineno})") from None
            row = dict(extra)
            for fld, col in cols.items():
                if obj.get(col) is not None:
                    row[fld] = obj[col]
            yield row


def files_reader(spec: SourceSpec, recipe: Recipe) -> Source:
    """Local JSONL / Parquet / CSV / TSV files with a column mapping (see the module docstring)."""
    if not spec.path:
        raise DataError(f"source {spec.name!r} (type files): set `path:` to a file, folder or glob")
    where = f"source {spec.name!r}"
    files = discover(spec.path, where)
    opts = spec.options
    defaults = {k: str(opts[k]) for k in ("language", "task", "template", "split", "kind", "license") if k in opts}
    defaults.setdefault("dataset", str(opts.get("dataset", spec.name)))
    batch_size = int(opts.get("batch_size", 4096))
    mapping: Mapping = dict(spec.columns)
    required = REQUIRED if "language" in defaults else (*REQUIRED, "language")

    def rows(source: Source):
        for f in files:
            yield from iter_file_rows(f, mapping, source, recipe.data.on_error, required, batch_size)

    def sizes() -> dict[str, int] | None:
        if "dataset" in mapping or not all(file_format(f) == "parquet" for f in files):
            return None
        if any("dataset" in pq.ParquetFile(f).schema_arrow.names for f in files):
            return None
        return {defaults["dataset"]: sum(pq.ParquetFile(f).metadata.num_rows for f in files)}

    return make_source(spec, recipe, kind=str(opts.get("kind", "human")), license=str(opts.get("license", "unknown")),
                       rows=rows, defaults=defaults, sizes=sizes)
