"""The reader of a task file's own data: JSONL / JSON / TSV / CSV / Parquet files or folders, or a hub-layout copy.

Rows become records (the row's columns, the task's `fields` mapping, an `id`, `label` or `answers`) grouped by
language tag. Every file read is recorded so that the summary can carry its sha256.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.eval.tasks.hub import hub_files
from ayakit.eval.tasks.loaders import LangData, MissingData, read_jsonl
from ayakit.eval.tasks.selection import Selection, wants
from ayakit.eval.tasks.spec import FORMATS, DataSpec, TaskFile
from ayakit.io import iter_jsonl

_EXT = {".jsonl": "jsonl", ".json": "json", ".tsv": "tsv", ".csv": "csv", ".parquet": "parquet"}


def resolve_path(path: str, base: Path | None, data_dir: Path | None, task: str) -> Path:
    """A data path: absolute, else relative to the task file's folder, else to the data dir."""
    p = Path(path).expanduser()
    candidates = [p] if p.is_absolute() else [b / p for b in (base, data_dir) if b is not None] or [p]
    for c in candidates:
        if c.exists():
            return c
    raise MissingData(f"task {task}: data {path} not found (looked for {', '.join(str(c) for c in candidates)})")


def data_files(spec: DataSpec, base: Path | None, data_dir: Path | None, task: str) -> list[Path]:
    """The files a DataSpec names, sorted; a folder gives every file of a supported format under it."""
    if spec.hub_id:
        return hub_files(spec.hub_id, spec.config, spec.split or "test", data_dir, task)
    root = resolve_path(spec.path or "", base, data_dir, task)
    if root.is_file():
        return [root]
    files = sorted(f for f in root.rglob("*") if f.is_file() and not f.name.startswith(".") and
                   (f.suffix == f".{spec.format}" if spec.format else f.suffix in _EXT))
    if spec.split:
        files = [f for f in files if f.name.startswith(spec.split) or spec.split in f.relative_to(root).parts[:-1]]
    if not files:
        raise MissingData(f"task {task}: no {'/'.join(FORMATS)} files under {root}"
                          + (f" for split {spec.split!r}" if spec.split else ""))
    return files


def read_rows(path: Path, fmt: str | None = None) -> Iterator[tuple[str, dict]]:
    """(location, row) of every row of a file; a malformed file is a DataError naming the file and line."""
    fmt = fmt or _EXT.get(path.suffix)
    if fmt == "jsonl":
        for n, row in iter_jsonl(path):
            yield f"{path}:{n}", row
    elif fmt == "json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        rows = data if isinstance(data, list) else data.get("data") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of rows (or {{'data': [...]}})")
        for i, row in enumerate(rows):
            yield f"{path}[{i}]", row
    elif fmt in ("tsv", "csv"):
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if fmt == "tsv" else ",")
            for n, row in enumerate(reader, 2):
                if None in row:
                    raise DataError(f"{path}:{n}: more cells than the header's {len(reader.fieldnames or [])} columns")
                yield f"{path}:{n}", dict(row)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as exc:  # noqa: BLE001 - any parquet failure is a bad file
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
        for i, row in enumerate(rows):
            yield f"{path}[row {i}]", row
    else:
        raise DataError(f"{path}: unknown format (use one of {', '.join(FORMATS)} or set data.format)")


def _column(row: dict, key: str, where: str) -> Any:
    if key not in row:
        raise DataError(f"{where}: no column {key!r} (the row has {', '.join(map(str, row))})")
    return row[key]


def _as_list(value: Any, where: str, what: str) -> list:
    if isinstance(value, list | tuple):
        return list(value)
    if hasattr(value, "tolist"):
        return list(value.tolist())
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return parsed
    if what == "answers":
        return [value]
    raise DataError(f"{where}: {what} must be a list (or a JSON list in a text column), got {value!r}")


class _Tagger:
    """Row -> language tag, with a note per code that is not a language (those rows are skipped, and said so)."""

    def __init__(self, task: TaskFile) -> None:
        self.task, self.cache, self.unknown = task, {}, {}
        spec = task.language
        self.fixed = None
        if isinstance(spec, str):
            try:
                self.fixed = L.tag(spec)
            except L.UnknownLanguageError as exc:
                raise DataError(f"task {task.name}: language: {exc}") from None

    def __call__(self, row: dict, path: Path, where: str) -> str | None:
        if self.fixed:
            return self.fixed
        spec = self.task.language
        if spec.from_filename:
            code, script = path.stem, None
        else:
            code = str(_column(row, spec.column, where))
            script = str(row.get(spec.script_column) or "") or None if spec.script_column else None
        key = (code, script)
        if key not in self.cache:
            try:
                self.cache[key] = L.tag(code, script=script)
            except L.UnknownLanguageError:
                self.cache[key] = None
        if self.cache[key] is None:
            self.unknown[code] = self.unknown.get(code, 0) + 1
        return self.cache[key]


def _record(task: TaskFile, row: dict, where: str, rid: str) -> dict:
    from ayakit.eval.tasks.prompts import render

    rec = dict(row)
    for var, col in task.fields.items():
        rec[var] = _column(row, col, where)
    rec["id"] = str(_column(row, task.id_field, where)) if task.id_field else rid
    if task.kind == "choice":
        rec["label"] = _column(rec, task.label, where)  # an index, or an option's text (resolved per prompt)
        if task.choices and task.choices.field:
            rec[task.choices.field] = [str(c) for c in _as_list(_column(rec, task.choices.field, where), where,
                                                                f"choices column {task.choices.field!r}")]
    elif task.answers:
        rec["answers"] = [str(a) for a in _as_list(_column(rec, task.answers, where), where, "answers")]
    else:
        rec["answers"] = [render(task.target or "", rec, where)]
    return rec


def _read(task: TaskFile, spec: DataSpec, base: Path | None, data_dir: Path | None, sel: Selection | None,
          files: set[Path], tagger: _Tagger, prefix: str = "") -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for path in data_files(spec, base, data_dir, task.name):
        files.add(path)
        for n, (where, row) in enumerate(read_rows(path, spec.format)):
            if not isinstance(row, dict):
                raise DataError(f"{where}: a row must be a mapping of columns")
            lang = tagger(row, path, where)
            if lang is None or not wants(sel, lang):
                continue
            out.setdefault(lang, []).append(_record(task, row, where, f"{prefix}{path.stem}-{n}"))
    return out


def load_file_task(task: TaskFile, base: Path | None, data_dir: Path | None, sel: Selection | None,
                   files: set[Path]) -> tuple[dict[str, LangData], list[str]]:
    """{tag: LangData} of a task read from files, and notes (rows skipped because their language is unknown)."""
    tagger = _Tagger(task)
    records = _read(task, task.data, base, data_dir, sel, files, tagger)
    pool = _read(task, task.fewshot, base, data_dir, sel, files, tagger, "shot-") if task.fewshot else {}
    notes = [f"{task.name}: {n} rows skipped: {code!r} is not a language code" for code, n in tagger.unknown.items()]
    return {lang: LangData(recs, pool.get(lang, [])) for lang, recs in sorted(records.items())}, notes


__all__ = ["data_files", "load_file_task", "read_jsonl", "read_rows", "resolve_path"]
