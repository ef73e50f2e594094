"""The mixture as training data: its Parquet shards, its fingerprint, the held-out choice, validation examples."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ayakit.errors import DataError
from ayakit.io import fingerprint
from ayakit.records import EXAMPLE_FIELDS

NEEDED = ("inputs", "targets", "language", "id", "split")


def mixture_files(run_dir: Path) -> list[Path]:
    """The mixture's shard files in run_dir/data; a DataError when there are none."""
    data = Path(run_dir) / "data"
    files = sorted(data.glob("shards-*.parquet"))
    if not files:
        raise DataError(f"no mixture in {data}: expected shards-*.parquet (run `ayakit data build` first)")
    return files


def check_columns(files: list[Path], columns: tuple[str, ...] = NEEDED) -> None:
    """A DataError naming the file when a mixture shard is unreadable or lacks one of `columns`."""
    for path in files:
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; a mixture has {list(EXAMPLE_FIELDS)}")


def read_mixture(run_dir: Path, columns: tuple[str, ...] = NEEDED) -> pa.Table:
    """All shards of the mixture as one table (only `columns`); bad files are one-line DataErrors."""
    files = mixture_files(run_dir)
    check_columns(files, columns)
    tables = [pq.read_table(path, columns=list(columns)) for path in files]
    table = pa.concat_tables(tables)
    for col in columns:
        if table.column(col).null_count:
            raise DataError(f"{run_dir / 'data'}: column {col!r} has {table.column(col).null_count} null value(s)")
    return table


def mixture_fingerprint(run_dir: Path) -> str:
    """A fingerprint of the mixture: its manifest's inputs when present, else the shard names and sizes."""
    files = mixture_files(run_dir)
    manifest = Path(run_dir) / "data" / "manifest.json"
    desc: list[Any] = [(f.name, f.stat().st_size) for f in files]
    if manifest.is_file():
        desc.append(hashlib.sha256(manifest.read_bytes()).hexdigest())
    return fingerprint(desc)


def is_validation(example_id: str, fraction: float) -> bool:
    """Deterministic held-out choice: the example's id hashed to [0, 1) falls below `fraction`."""
    if fraction <= 0:
        return False
    h = hashlib.blake2b(example_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64 < fraction


@dataclass
class Encoded:
    """Token ids of a set of examples, in mixture order."""

    sources: list[list[int]]  # seq2seq: encoder ids; causal: bos + prompt
    targets: list[list[int]]  # ids carrying the loss, ending with eos
    languages: list[str]  # may be empty (token shards do not keep languages)

    def __len__(self) -> int:
        return len(self.sources)


def load_validation(shards: Any, limit: int) -> Encoded:
    """The first `limit` held-out examples (mixture order) of the validation token shards, in memory."""
    n = min(len(shards), limit)
    sources, targets = shards.gather(range(n))
    return Encoded(sources, targets, [])
