"""Streaming training data: a keyed shuffle of the token shards per epoch, packed online into rows.

The example order of an epoch is a pseudo-random permutation of [0, n) computed position by position (a Feistel
network keyed by seed and epoch, cycle-walked into range), so no list of n indices is ever held. Examples are
packed in that order by packing.Packer, whose look-ahead is bounded, and each row handed out is drawn at random
from a pool of closed rows of the same epoch (an epoch's rows are all handed out before the next epoch's);
every process computes the same global row
stream from the index alone (lengths, not tokens) and reads the tokens of its own rows only. The stream's state
(epoch, cursor, open and pending rows) is small and JSON-able: checkpoints record it and a resumed run continues
with exactly the rows it would have seen. Nothing here depends on the number of processes.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ayakit.io import fingerprint, read_json, write_json_atomic
from ayakit.models import arch_impl
from ayakit.train.packing import Packer, second_capacity
from ayakit.train.tokens import TokenShards

ROUNDS = 4
CHUNK = 256  # examples drawn from the permutation at a time
WINDOW = 64  # open rows of the packer
ROWS_CACHE = ".rows-in-epoch.json"  # beside the token shards: rows per epoch already counted
COUNT_FORMAT = 1  # part of the cached counts' key: bump when the permutation or the packing changes
POOL = 128  # closed rows a row is drawn from at random: the packer closes its fullest-aged rows first, so
#             without this the fill of a batch would drift along the epoch


def _mix(x: np.ndarray, key: np.uint64) -> np.ndarray:
    # splitmix64's finaliser: a fast, well-mixed round function (uint64 arithmetic wraps by design)
    z = x + key
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def permute(positions: np.ndarray, n: int, seed: int, epoch: int) -> np.ndarray:
    """Where positions land in the (seed, epoch) permutation of range(n): a bijection, computed per position."""
    positions = np.asarray(positions, dtype=np.uint64)
    if n <= 1:
        return positions.astype(np.int64)
    bits = max(2, (n - 1).bit_length())
    bits += bits % 2
    half = np.uint64(bits // 2)
    mask = np.uint64((1 << (bits // 2)) - 1)
    keys = [np.uint64(int.from_bytes(hashlib.blake2b(f"{seed}:{epoch}:{r}".encode(), digest_size=8).digest(), "big"))
            for r in range(ROUNDS)]

    def feistel(x: np.ndarray) -> np.ndarray:
        left, right = x >> half, x & mask
        for k in keys:
            left, right = right, left ^ (_mix(right, k) & mask)
        return (left << half) | right

    with np.errstate(over="ignore"):
        out = feistel(positions)
        todo = out >= np.uint64(n)
        while todo.any():  # cycle walking: at most a few rounds, the domain is < 4n
            out[todo] = feistel(out[todo])
            todo = out >= np.uint64(n)
    return out.astype(np.int64)


class RowStream:
    """An endless, deterministic stream of packed rows (lists of global example ids) over epochs."""

    def __init__(self, shards: TokenShards, arch: str, packing: bool, row_source: int, row_target: int | None,
                 seed: int, window: int = WINDOW, chunk: int = CHUNK) -> None:
        self.shards, self.arch, self.packing, self.seed, self.chunk = shards, arch, packing, seed, chunk
        self.n = len(shards)
        self.impl = arch_impl(arch)
        self.packer = Packer(row_source, second_capacity(arch, row_target), window) if packing else None
        self.epoch, self.cursor, self.rows_taken = 0, 0, 0
        self.draining = False  # the epoch's examples are all packed; its last rows are being handed out
        self.pending: list[list[int]] = []

    def _feed(self) -> None:
        """Draw the next chunk of this epoch's order into the packer; at the epoch's end, close every row."""
        if self.cursor >= self.n:
            if self.packer is not None:
                self.pending.extend(self.packer.flush())
            self.draining = True
            return
        end = min(self.n, self.cursor + self.chunk)
        ids = permute(np.arange(self.cursor, end), self.n, self.seed, self.epoch)
        self.cursor = end
        if self.packer is None:
            self.pending.extend([int(i)] for i in ids)
            return
        first, second = self.impl.pack_lengths(*self.shards.lengths(ids))
        second = np.zeros_like(first) if second is None else second  # a one-capacity packer ignores it
        for i, a, b in zip(ids.tolist(), first.tolist(), second.tolist()):
            self.pending.extend(self.packer.add(i, a, b))

    def _next_row(self) -> list[int]:
        while not (len(self.pending) >= POOL or (self.draining and self.pending)):
            if self.draining:  # the epoch's rows are all handed out: the next epoch starts
                self.epoch, self.cursor, self.draining = self.epoch + 1, 0, False
            else:
                self._feed()
        key = hashlib.blake2b(f"{self.seed}:{self.rows_taken}".encode(), digest_size=8).digest()
        self.rows_taken += 1
        return self.pending.pop(int.from_bytes(key, "big") % len(self.pending))

    def take(self, count: int) -> list[list[int]]:
        """The next `count` rows."""
        return [self._next_row() for _ in range(count)]

    @property
    def progress(self) -> float:
        """Epochs done, fractional (examples drawn into the packer over the epoch's size)."""
        return self.epoch + self.cursor / max(self.n, 1)

    def state(self) -> dict[str, Any]:
        """The stream position, JSON-able: what a checkpoint records."""
        return {"epoch": self.epoch, "cursor": self.cursor, "rows_taken": self.rows_taken, "examples": self.n,
                "draining": self.draining,
                "pending": [list(r) for r in self.pending],
                "open": self.packer.state() if self.packer is not None else []}

    def load(self, state: dict[str, Any]) -> None:
        """Continue from a position saved by state()."""
        if state["examples"] != self.n:
            raise ValueError(f"the checkpoint's stream has {state['examples']} examples, the token shards {self.n}")
        self.epoch, self.cursor, self.rows_taken = state["epoch"], state["cursor"], state["rows_taken"]
        self.draining = state["draining"]
        self.pending = [list(r) for r in state["pending"]]
        if self.packer is not None:
            self.packer.load(state["open"])

    def skip(self, rows: int) -> None:
        """Fast-forward `rows` rows from the start (a checkpoint from before streams recorded their state)."""
        while rows > 0:
            n = min(rows, 4096)
            self.take(n)
            rows -= n

    def rows_in_epoch(self, epoch: int = 0) -> int:
        """How many rows epoch `epoch` packs into: one pass over the index (lengths only), this stream untouched.

        The pass costs ~15 s per million examples, so the count is kept beside the token shards (ROWS_CACHE), keyed
        by the shards and every setting the packing depends on: a rerun or resume of the same data starts at once."""
        key = self._count_key(epoch)
        cache = self.shards.directory / ROWS_CACHE
        try:
            counts = read_json(cache)
        except (OSError, ValueError):
            counts = {}
        if isinstance(counts, dict) and isinstance(counts.get(key), int):
            return counts[key]
        probe = RowStream(self.shards, self.arch, self.packing, self.packer.cap_first if self.packer else 0,
                          self.packer.cap_second if self.packer else None, self.seed,
                          self.packer.window if self.packer else WINDOW, self.chunk)
        probe.epoch = epoch
        rows = 0
        while not probe.draining:
            probe._feed()
            rows += len(probe.pending)
            probe.pending = []
        try:  # a read-only shard directory (shared data) only loses the cache
            write_json_atomic(cache, {**(counts if isinstance(counts, dict) else {}), key: rows})
        except OSError:
            pass
        return rows

    def _count_key(self, epoch: int) -> str:
        files = [(f.name, f.stat().st_size, f.stat().st_mtime_ns)
                 for stem in self.shards.stems for f in (self.shards.directory / f"{stem}.idx",)]
        packer = self.packer
        return fingerprint({"files": files, "arch": self.arch, "packing": self.packing, "seed": self.seed,
                            "epoch": epoch, "chunk": self.chunk, "pool": POOL, "rounds": ROUNDS, "format": COUNT_FORMAT,
                            "caps": [packer.cap_first, packer.cap_second, packer.window] if packer else None})


def rank_rows(global_rows: list[list[int]], rank: int, world: int, batch_size: int, grad_accum: int
              ) -> list[list[list[int]]]:
    """This process's micro-batches of a step's global rows: micro-batch m takes slot (m * world + rank)."""
    out = []
    for m in range(grad_accum):
        begin = (m * world + rank) * batch_size
        out.append(global_rows[begin: begin + batch_size])
    return out
