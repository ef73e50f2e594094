"""Load work into the app: examples (a mixture run or a JSONL/Parquet file) to edit or rate; answer pairs to compare.

Answer pairs come from `ayakit judge` (its --out folder, whose pairs.jsonl is read, or any JSONL / Parquet file
with the same columns): `id, language, prompt, model_a, model_b, answer_a, answer_b` and, optionally, the judge's
verdict in the first present of `outcome` (ayakit judge: "a" | "b" | "tie" | "invalid"), `winner` (a model name
or "tie"), `verdict` / `preferred` / `judge_verdict` / `preference` ("A", "B", "TIE", "Answer (A)", "model_a", ...).
A verdict names the answer under the line's own `model_a` / `model_b` columns, not the order the judge saw them
in; "invalid" (the judge's reply could not be read) counts as no verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ayakit import languages as L
from ayakit.annotate.models import ACTIVITIES, Item, Pair, utcnow
from ayakit.errors import DataError
from ayakit.records import example_id
from ayakit.io import iter_jsonl

PAIR_COLUMNS = ("id", "language", "prompt", "model_a", "model_b", "answer_a", "answer_b")
EXAMPLE_COLUMNS = ("inputs", "targets", "language")
VERDICT_FIELDS = ("outcome", "winner", "verdict", "preferred", "judge_verdict", "preference")
NO_VERDICT = {"invalid", "none", "null", "unknown"}
_A = {"a", "answer (a)", "answer a", "model_a", "(a)"}
_B = {"b", "answer (b)", "answer b", "model_b", "(b)"}
_TIE = {"tie", "draw", "both", "both_good", "both_bad", "equal"}


@dataclass
class LoadResult:
    """What a load did: rows added, rows already there, files read."""

    added: int
    skipped: int
    files: list[str]


def find_files(path: str | Path, activity: str) -> list[Path]:
    """The files to read: a file itself; in a run dir its data/shards-*.parquet; else the dir's parquet/jsonl."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if activity != "compare":
        for shards_dir in (path / "data", path):
            shards = sorted(shards_dir.glob("shards-*.parquet"))
            if shards:
                return shards
    elif (path / "pairs.jsonl").is_file():  # an `ayakit judge --out` folder
        return [path / "pairs.jsonl"]
    files = sorted([*path.glob("*.jsonl"), *path.glob("*.parquet")])
    if not files:
        raise DataError(f"{path}: no shards-*.parquet, *.parquet or *.jsonl files to load")
    return files


def read_rows(path: Path) -> Iterator[tuple[str, dict]]:
    """(where, row) for each record of a JSONL or Parquet file; `where` is file:line or file:row."""
    if path.suffix == ".parquet":
        i = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                yield f"{path}:row {i}", row
                i += 1
        return
    if path.suffix not in (".jsonl", ".json"):
        raise DataError(f"{path}: expected a .jsonl or .parquet file")
    for n, row in iter_jsonl(path):
        yield f"{path}:{n}", row


def _require(where: str, row: dict, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if row.get(c) in (None, "")]
    if missing:
        raise DataError(f"{where}: missing {', '.join(missing)} (needs {', '.join(columns)})")


def _language(where: str, code: object) -> str:
    try:
        return L.normalize_any(str(code))
    except L.UnknownLanguageError as exc:
        raise DataError(f"{where}: {exc}") from None


def judge_winner(where: str, row: dict) -> str | None:
    """The judge's preferred model name, "tie", or None when the row carries no verdict."""
    for field in VERDICT_FIELDS:
        value = row.get(field)
        if value in (None, ""):
            continue
        text = str(value).strip()
        low = text.lower().strip("'\" ")
        if text in (row["model_a"], row["model_b"]):
            return text
        if low in _A:
            return str(row["model_a"])
        if low in _B:
            return str(row["model_b"])
        if low in _TIE:
            return "tie"
        if low in NO_VERDICT:
            return None
        raise DataError(f"{where}: column {field}={text!r} names neither model_a, model_b nor a tie")
    return None


def pair_key(row: dict) -> str:
    """A pair's identity: its item id and the two models (in either order), so several matchups can share ids."""
    key = "|".join([*sorted([str(row["model_a"]), str(row["model_b"])]), str(row["id"])])
    return key if len(key) <= 200 else example_id(key)


def count_rows(files: list[Path]) -> int | None:
    """Rows in these files when cheap to know (Parquet metadata), else None."""
    total = 0
    for f in files:
        if f.suffix != ".parquet":
            return None
        total += pq.ParquetFile(f).metadata.num_rows
    return total


def load(session: Session, path: str | Path, activity: str, languages: list[str] | None = None,
         limit: int | None = None, progress: Callable[[int], None] | None = None,
         chunk: int = 2000) -> LoadResult:
    """Load examples (activity edit or rate) or answer pairs (compare); rows already loaded are skipped.

    Rows go in by bulk inserts of `chunk` rows inside one transaction: a bad row anywhere loads nothing.
    `progress(n)` is called with the number of rows read since the last call.
    """
    if activity not in (*ACTIVITIES, "compare"):
        raise DataError(f"activity must be edit, rate or compare, not {activity!r}")
    keep = set(languages) if languages else None
    files = find_files(path, activity)
    model = Pair if activity == "compare" else Item
    stmt = select(model.external_id) if activity == "compare" else \
        select(Item.external_id).where(Item.activity == activity)
    seen = set(session.scalars(stmt))
    added = skipped = read = 0
    pending: list[dict] = []
    now = utcnow()

    def flush() -> None:
        if pending:
            session.execute(insert(model), pending)
            pending.clear()

    for file in files:
        for where, row in read_rows(file):
            if limit is not None and added >= limit:
                break
            read += 1
            if progress and read % 500 == 0:
                progress(500)
            values = _pair(where, row, file) if activity == "compare" else _item(where, row, activity, file)
            if keep is not None and values["language"] not in keep:
                continue
            if values["external_id"] in seen:
                skipped += 1
                continue
            seen.add(values["external_id"])
            values["created_at"] = now
            pending.append(values)
            added += 1
            if len(pending) >= chunk:
                flush()
    flush()
    session.commit()
    if progress:
        progress(read % 500)
    return LoadResult(added, skipped, [str(f) for f in files])


def _item(where: str, row: dict, activity: str, file: Path) -> dict:
    _require(where, row, EXAMPLE_COLUMNS)
    lang = _language(where, row["language"])
    inputs, targets = str(row["inputs"]), str(row["targets"])
    ext = str(row.get("id") or example_id(lang, inputs, targets))
    return dict(external_id=ext[:200], activity=activity, inputs=inputs, targets=targets, language=lang,
                script=str(row.get("script") or L.info(lang).script)[:8],
                source=str(row.get("source") or "")[:200], dataset=str(row.get("dataset") or "")[:200],
                kind=str(row.get("kind") or "")[:32], license=str(row.get("license") or "")[:100],
                origin=str(file)[:500])


def _pair(where: str, row: dict, file: Path) -> dict:
    _require(where, row, PAIR_COLUMNS)
    if row["model_a"] == row["model_b"]:
        raise DataError(f"{where}: model_a and model_b are the same ({row['model_a']!r})")
    return dict(external_id=pair_key(row), language=_language(where, row["language"]),
                prompt=str(row["prompt"]), model_a=str(row["model_a"])[:200], model_b=str(row["model_b"])[:200],
                answer_a=str(row["answer_a"]), answer_b=str(row["answer_b"]),
                judge_winner=judge_winner(where, row), origin=str(file)[:500])
