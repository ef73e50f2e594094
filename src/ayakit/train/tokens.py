"""Token shards on disk: a flat token file and an index of example boundaries, read with positional reads.

A shard `<split>-NNNNN` is two files: `.tok` holds every example's source ids then its target ids, back to back
(uint16 when the vocabulary fits, else uint32); `.idx` holds one int64 row per example: (offset, source length,
target length). The prompt/target split is the recorded source length, never searched for. Readers open both
files with positional reads and read only the examples they are asked for, so memory does not depend on the size of
the mixture.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import chain
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ayakit.errors import DataError

TOKENS_DIR = "tokens"
INDEX_COLUMNS = 3  # offset, source length, target length


def token_dtype(vocab_size: int) -> str:
    """The narrowest unsigned dtype that holds every id of the vocabulary."""
    return "uint16" if vocab_size <= 2**16 else "uint32"


def shard_name(split: str, rank: int) -> str:
    """The file stem of a split's token shard for one mixture shard."""
    return f"{split}-{rank:05d}"


@dataclass
class ShardWriter:
    """Appends encoded examples to `<stem>.tok` / `<stem>.idx` (hidden temporary names until close())."""

    directory: Path
    stem: str
    dtype: str
    examples: int = 0
    source_tokens: int = 0
    target_tokens: int = 0
    _offset: int = 0
    _files: tuple = field(default=(), repr=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._files = (open(self._tmp(".tok"), "wb"), open(self._tmp(".idx"), "wb"))

    def _tmp(self, ext: str) -> Path:
        return self.directory / f".{self.stem}{ext}.tmp"

    def add(self, sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]]) -> None:
        """Append a batch of examples (source ids, target ids)."""
        if not sources:
            return
        src_len = np.fromiter((len(s) for s in sources), np.int64, len(sources))
        tgt_len = np.fromiter((len(t) for t in targets), np.int64, len(targets))
        sizes = src_len + tgt_len
        offsets = self._offset + np.concatenate(([0], np.cumsum(sizes)[:-1]))
        parts = [part for s, t in zip(sources, targets) for part in (s, t)]
        flat = np.fromiter(chain.from_iterable(parts), self.dtype, int(sizes.sum()))
        self._files[0].write(flat.tobytes())
        self._files[1].write(np.stack([offsets, src_len, tgt_len], axis=1).astype(np.int64).tobytes())
        self._offset += int(sizes.sum())
        self.examples += len(sources)
        self.source_tokens += int(src_len.sum())
        self.target_tokens += int(tgt_len.sum())

    def close(self) -> dict[str, int]:
        """Flush, fsync and rename both files into place; the shard's counts."""
        for fh in self._files:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        for ext in (".tok", ".idx"):
            os.replace(self._tmp(ext), self.directory / f"{self.stem}{ext}")
        return {"examples": self.examples, "source_tokens": self.source_tokens, "target_tokens": self.target_tokens}


class _File:
    """A token-shard file read with positional reads (os.pread): no mapping, so the pages a reader touches stay in
    the page cache and out of the process's RSS (a memmap read at random maps ~64 KiB around every example read:
    +108 MiB after 20 demo steps over a 1e6-example mixture, growing with it)."""

    def __init__(self, path: Path, dtype: str, cols: int = 1) -> None:
        if not path.is_file():
            raise DataError(f"{path}: token shard file missing (rerun `ayakit tokenize`)")
        self.path, self.dtype, self.cols = path, np.dtype(dtype), cols
        self.row_bytes = self.dtype.itemsize * cols
        self.rows = path.stat().st_size // self.row_bytes
        self._fd: int | None = None

    @property
    def fd(self) -> int:
        if self._fd is None:  # opened lazily: a pickled or forked reader opens its own descriptor
            self._fd = os.open(self.path, os.O_RDONLY)
        return self._fd

    def read(self, start: int, count: int) -> np.ndarray:
        """Rows [start, start + count) as an array (shape (count, cols) when cols > 1)."""
        data = os.pread(self.fd, count * self.row_bytes, start * self.row_bytes)
        if len(data) != count * self.row_bytes:
            raise DataError(f"{self.path}: truncated at row {start + len(data) // self.row_bytes} "
                            f"(rerun `ayakit tokenize`)")
        arr = np.frombuffer(data, self.dtype)
        return arr.reshape(count, self.cols) if self.cols > 1 else arr

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None}

    def __del__(self) -> None:
        self.close()


class TokenShards:
    """The token shards of one split as one indexable collection of examples (global index = shard order)."""

    def __init__(self, directory: Path, stems: Sequence[str], dtype: str) -> None:
        self.directory = Path(directory)
        self.stems = list(stems)
        self.dtype = dtype
        self._tokens = [_File(self.directory / f"{s}.tok", dtype) for s in self.stems]
        self._index = [_File(self.directory / f"{s}.idx", "int64", INDEX_COLUMNS) for s in self.stems]
        for stem, tok, idx in zip(self.stems, self._tokens, self._index):
            if idx.rows and int(idx.read(idx.rows - 1, 1)[0].sum()) != tok.rows:
                raise DataError(f"{self.directory / stem}.idx does not match its .tok file (rerun `ayakit tokenize`)")
        self.starts = np.cumsum([0] + [i.rows for i in self._index]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shard = np.searchsorted(self.starts, ids, side="right") - 1
        return shard, ids - self.starts[shard]

    def _rows(self, shard: int, local: np.ndarray) -> np.ndarray:
        """Index rows `local` of one shard: one read over their span when they are close together, else one each."""
        index = self._index[shard]
        lo, hi = int(local.min()), int(local.max()) + 1
        if hi - lo <= 4 * len(local):
            return index.read(lo, hi - lo)[local - lo]
        return np.stack([index.read(int(i), 1)[0] for i in local])

    def lengths(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(source lengths, target lengths) of examples `ids`, read from the index only."""
        ids = np.asarray(ids, dtype=np.int64)
        src = np.empty(len(ids), np.int64)
        tgt = np.empty(len(ids), np.int64)
        shard, local = self._locate(ids)
        for s in np.unique(shard):
            pick = shard == s
            rows = self._rows(int(s), local[pick])
            src[pick], tgt[pick] = rows[:, 1], rows[:, 2]
        return src, tgt

    def example(self, i: int) -> tuple[list[int], list[int]]:
        """Example i's (source ids, target ids)."""
        shard, local = self._locate(np.array([i], np.int64))
        off, ns, nt = (int(x) for x in self._index[shard[0]].read(int(local[0]), 1)[0])
        ids = self._tokens[shard[0]].read(off, ns + nt).tolist()
        return ids[:ns], ids[ns:]

    def gather(self, ids: Sequence[int]) -> tuple[list[list[int]], list[list[int]]]:
        """The (sources, targets) of examples `ids`, in that order."""
        pairs = [self.example(int(i)) for i in ids]
        return [p[0] for p in pairs], [p[1] for p in pairs]
