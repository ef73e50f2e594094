"""Local files (JSONL, Parquet, CSV/TSV), read in streaming batches with a column mapping.

The `files` reader: `path:` is a file, a folder (searched recursively) or a glob. `columns:` maps
Example fields to file columns (`{inputs: question, targets: answer, language: lang}`); fields not
mapped are taken from a column of the same name when the file has one. Options:
`language` (the language of every row when the file has no language column), `dataset`
(default: the source name), `task`, `template`, `split`, `kind` and `license` (defaults for rows
without them), `batch_size` (rows per read, default 4096), `required` (the fields every row must have,
default [inputs, targets]).
"""

from __future__ import annotations

import functools
import glob
import gzip
import io
import json
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ayakit import languages as L
from ayakit.data.sources.base import NO_LANGUAGE, NOT_A_LANGUAGE, Block, Source, make_source, not_a_language_message
from ayakit.errors import DataError
from ayakit.languages import UnknownLanguageError
from ayakit.recipe import Recipe, SourceSpec
from ayakit.records import EXAMPLE_FIELDS

FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", ".csv", ".tsv", ".csv.gz", ".tsv.gz")
REQUIRED = ("inputs", "targets")
TEXT_FIELDS = ("inputs", "targets", "language")  # must be text in the file: a number here is a mistake, not data
BOM = b"\xef\xbb\xbf"
# what a corrupt compressed or binary file raises while it is read
READ_ERRORS = (pa.ArrowException, OSError, EOFError, zlib.error)

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


def _csv_parse(fmt: str, **kw: Any) -> pacsv.ParseOptions:
    # TSV files (FLORES, SIB-200) are unquoted: a '"' inside a sentence is text, not a quote.
    return pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", quote_char=False if fmt == "tsv" else '"', **kw)


def _open_bytes(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def decode_line(raw: bytes, path: Path, lineno: int) -> str:
    """One line as text; invalid UTF-8 is a DataError naming file, line, the byte and its column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                        ) from None


def _first_bad_utf8(path: Path) -> DataError | None:
    """The located error for the first line of a file that is not valid UTF-8, if any."""
    try:
        with _open_bytes(path) as fh:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    decode_line(raw.removeprefix(BOM) if lineno == 1 else raw, path, lineno)
                except DataError as exc:
                    return exc
    except READ_ERRORS:
        return None
    return None


def _csv_header(path: Path, fmt: str) -> list[str]:
    try:
        with _open_bytes(path) as fh:
            raw = fh.readline()
    except READ_ERRORS as exc:
        raise DataError(f"{path}: cannot be read as {fmt.upper()} ({exc})") from None
    line = decode_line(raw.removeprefix(BOM), path, 1).rstrip("\r\n")
    if not line.strip():
        raise DataError(f"{path}: empty file (no header line)")
    try:
        one = pacsv.read_csv(io.BytesIO((line + "\n").encode("utf-8")), parse_options=_csv_parse(fmt))
    except pa.ArrowInvalid as exc:
        raise DataError(f"{path}:1: malformed {fmt.upper()} header ({exc})") from None
    return one.schema.names


def _parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except READ_ERRORS as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None


def file_columns(path: Path) -> list[str] | None:
    """Column names of a Parquet or CSV/TSV file without reading its rows (None for JSONL)."""
    fmt = file_format(path)
    if fmt == "parquet":
        return _parquet(path).schema_arrow.names
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
        pf = _parquet(path)
        cols = _with_kept(resolve_mapping(mapping, pf.schema_arrow.names, path, required), pf.schema_arrow.names, keep)
        _check_text_columns(pf.schema_arrow, cols, path)
        batches = _guarded(pf.iter_batches(batch_size=batch_size, columns=sorted(set(cols.values()))), path, "Parquet")
    else:
        cols, batches = _csv_batches(path, fmt, mapping, source, on_error, required, batch_size, keep)
    check_language = "language" in cols and "language" not in extra
    row = 0
    for batch in batches:
        yield from _batch_rows(batch, cols, extra, path, row, source, on_error, check_language,
                               "language" not in required)
        row += batch.num_rows


def _guarded(batches: Iterator[pa.RecordBatch], path: Path, what: str) -> Iterator[pa.RecordBatch]:
    try:
        yield from batches
    except READ_ERRORS as exc:
        raise DataError(f"{path}: not a readable {what} file ({exc})") from None


def _check_text_columns(schema: pa.Schema, cols: dict[str, str], path: Path) -> None:
    for fld in TEXT_FIELDS:
        col = cols.get(fld)
        if col is None:
            continue
        typ = schema.field(col).type
        if not (pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_null(typ)
                or (pa.types.is_dictionary(typ) and pa.types.is_string(typ.value_type))):
            raise DataError(f"{path}: column {col!r} (field {fld!r}) must be text, got {typ}")


def _batch_rows(batch: pa.RecordBatch, cols: dict[str, str], extra: dict[str, str], path: Path, start: int,
                source: Source, on_error: str, check_language: bool, optional_language: bool) -> Iterator[Block]:
    data: dict[str, Any] = dict(extra)
    for fld, col in cols.items():
        values = batch.column(col).to_pylist()
        if fld in extra:  # a null cell falls back on the fixed value
            values = [extra[fld] if v is None else v for v in values]
        data[fld] = values
    n = batch.num_rows
    if check_language:
        # an optional language column (options.language is the default) may be empty, never a non-language
        bad = [(i, why) for i, v in enumerate(data["language"])
               if not (optional_language and v in (None, "")) and (why := language_problem(v, explain=False))]
        if bad:
            if on_error != "skip":
                i, _why = bad[0]
                raise DataError(f"{path}: row {start + i + 1}: {language_problem(data['language'][i])[1]}")
            for i, why in bad:
                source.skip(why[0], data["language"][i] if why[0] == NOT_A_LANGUAGE else None)
            drop = {i for i, _w in bad}
            keep_rows = [i for i in range(n) if i not in drop]
            data = {k: [v[i] for i in keep_rows] if isinstance(v, list) else v for k, v in data.items()}
            n = len(keep_rows)
    if n:
        yield Block(data, n)


def language_problem(value: Any, explain: bool = True) -> tuple[str, str] | None:
    """(skip reason, message) when a row's language value cannot be a language; None when it can.

    Any valid ISO 639-3 language or tag is kept as its own variety (`tlh` is Klingon, tier unlisted); a value
    that is missing, not text or no language code at all is a bad row whose message names the closest codes
    (looked up only with `explain`: a skip needs only the reason).
    """
    if value is None:
        return NO_LANGUAGE, "no language (null); set it in the file or `options.language` for the source"
    if not isinstance(value, str):
        return "wrong type", f"'language' must be text, got {_type_name(value)}"
    if not value.strip():
        return NO_LANGUAGE, "no language (empty); set it in the file or `options.language` for the source"
    if _is_language(value):
        return None
    return NOT_A_LANGUAGE, not_a_language_message(value) if explain else ""


@functools.lru_cache(maxsize=1 << 16)
def _is_language(value: str) -> bool:
    try:
        L.parse(value)
        return True
    except UnknownLanguageError:
        return False


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _with_kept(cols: dict[str, str], columns: Sequence[str], keep: Sequence[str]) -> dict[str, str]:
    return {**cols, **{k: k for k in keep if k in columns and k not in cols}}


def _csv_batches(path: Path, fmt: str, mapping: Mapping, source: Source, on_error: str,
                 required: Sequence[str], batch_size: int, keep: Sequence[str] = ()):
    header = _csv_header(path, fmt)
    cols = _with_kept(resolve_mapping(mapping, header, path, required), header, keep)

    problems: list[str] = []

    def invalid(row: pacsv.InvalidRow) -> str:
        if on_error == "skip":
            source.skip(f"malformed {fmt.upper()} row")
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
        except READ_ERRORS as exc:
            if problems:
                raise DataError(problems[0]) from None
            located = _first_bad_utf8(path) if "UTF8" in str(exc) else None
            if located is not None:
                raise located from None
            raise DataError(f"{path}: malformed {fmt.upper()}: {exc}") from None

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
    check_language = "language" not in extra
    optional_language = "language" not in required  # options.language fills an empty value
    try:
        fh = _open_bytes(path)
        lines = enumerate(fh, start=1)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from None
    with fh:
        while True:
            try:
                lineno, raw = next(lines)
            except StopIteration:
                break
            except READ_ERRORS as exc:  # a corrupt .gz
                raise DataError(f"{path}: cannot be read (corrupt compressed file? {exc})") from None
            try:
                obj = _parse_line(raw.removeprefix(BOM) if lineno == 1 else raw, path, lineno)
                if obj is None:
                    continue
                if cols is None or not all(c in obj for c in cols.values()):
                    try:
                        cols = _with_kept(resolve_mapping(mapping, list(obj), path, required), list(obj), keep)
                    except DataError as exc:
                        if cols is None and on_error != "skip":
                            raise DataError(f"{exc} (line {lineno})") from None
                        raise _Bad("missing column", f"{path}:{lineno}: {str(exc).removeprefix(f'{path}: ')}") from None
                row = dict(extra)
                for fld, col in cols.items():
                    value = obj.get(col)
                    if fld in TEXT_FIELDS and value is not None and not isinstance(value, str):
                        raise _Bad("wrong type", f"{path}:{lineno}: {fld!r} must be text, got {_type_name(value)}")
                    if value is not None:
                        row[fld] = value
                if check_language and not (optional_language and row.get("language") in (None, "")):
                    problem = language_problem(row.get("language"), explain=on_error != "skip")
                    if problem:
                        raise _Bad(problem[0], f"{path}:{lineno}: {problem[1]}",
                                   row["language"] if problem[0] == NOT_A_LANGUAGE else None)
            except _Bad as bad:
                if on_error == "skip":
                    source.skip(bad.reason, bad.code)
                    continue
                raise DataError(bad.message) from None
            yield row


class _Bad(Exception):
    """One bad line: why (the skip reason counted under on_error: skip) and the located message."""

    def __init__(self, reason: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.reason, self.message, self.code = reason, message, code


def _parse_line(raw: bytes, path: Path, lineno: int) -> dict[str, Any] | None:
    """One JSONL line as an object (None for a blank line); _Bad names what is wrong and where."""
    try:
        text = decode_line(raw, path, lineno)
    except DataError as exc:
        raise _Bad("not valid UTF-8", str(exc)) from None
    text = text.strip()
    if not text:
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg.startswith("Unterminated string") or exc.pos >= len(text):
            raise _Bad("cut-off JSON line", f"{path}:{lineno}: malformed JSON line: the line looks cut off "
                                            f"(it ends before the JSON object is complete: {exc.msg.lower()})"
                       ) from None
        raise _Bad("malformed JSON", f"{path}:{lineno}: malformed JSON line: {exc.msg} (column {exc.colno})"
                   ) from None
    except (ValueError, RecursionError) as exc:  # an integer too long to convert, nesting too deep
        raise _Bad("malformed JSON", f"{path}:{lineno}: malformed JSON line: {str(exc)[:120] or 'nested too deeply'}"
                   ) from None
    if not isinstance(obj, dict):
        raise _Bad("not a JSON object", f"{path}:{lineno}: malformed JSON line: a JSON {_json_kind(obj)}, "
                                        f"not an object")
    return obj


def _json_kind(obj: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(obj), "number")


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
    required = tuple(opts.get("required", REQUIRED))
    required = required if "language" in defaults else (*required, "language")

    def rows(source: Source):
        for f in files:
            yield from iter_file_rows(f, mapping, source, recipe.data.on_error, required, batch_size)

    def sizes() -> dict[str, int] | None:
        if "dataset" in mapping or not all(file_format(f) == "parquet" for f in files):
            return None
        if any("dataset" in _parquet(f).schema_arrow.names for f in files):
            return None
        return {defaults["dataset"]: sum(_parquet(f).metadata.num_rows for f in files)}

    source = make_source(spec, recipe, kind=str(opts.get("kind", "human")),
                         license=str(opts.get("license", "unknown")), rows=rows, defaults=defaults, sizes=sizes)
    source.paths = tuple(str(f) for f in files)
    return source
