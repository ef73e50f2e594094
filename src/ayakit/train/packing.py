"""Which examples share a packed row: greedy first-fit under the row capacities, and one epoch's shuffled rows.

The rows' tensors, masks and loss forward are the architecture's business: ayakit.models (packed.py, seq2seq.py,
causal.py, packed_lm.py).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from ayakit.models import arch_impl


class Packer:
    """Online best-fit packing under one or two capacities, with a bounded look-ahead of `window` open rows.

    An example goes to the open row it fills best (least room left after it, both sides counted); when none has
    room it opens a row, and past `window` open rows the oldest one is closed (so no example waits long). Its state is plain lists, so a
    checkpoint can record it and a resumed run packs the same rows.
    """

    def __init__(self, cap_first: int, cap_second: int | None, window: int = 64) -> None:
        self.cap_first, self.cap_second, self.window = cap_first, cap_second, window
        self.open: list[list[Any]] = []  # [indices, used_first, used_second]

    def add(self, i: int, a: int, b: int = 0) -> list[list[int]]:
        """Place example i (lengths a, b); the rows this closes (zero or one)."""
        best, best_room = None, None
        ca, cb = self.cap_first, self.cap_second
        for row in self.open:
            ra = ca - row[1] - a
            if ra < 0:
                continue
            if cb is not None:
                rb = cb - row[2] - b
                if rb < 0:
                    continue
                room = ra / ca + rb / cb
            else:
                room = ra / ca
            if best_room is None or room < best_room:
                best, best_room = row, room
        if best is not None:
            best[0].append(i)
            best[1] += a
            best[2] += b
            return []
        self.open.append([[i], a, b])
        if len(self.open) <= self.window:
            return []
        return [self.open.pop(0)[0]]

    def flush(self) -> list[list[int]]:
        """Close every open row (the end of an epoch)."""
        rows = [r[0] for r in self.open]
        self.open = []
        return rows

    def state(self) -> list[list[Any]]:
        """The open rows, JSON-able."""
        return [[list(r[0]), int(r[1]), int(r[2])] for r in self.open]

    def load(self, state: list[list[Any]]) -> None:
        """Restore open rows saved by state()."""
        self.open = [[list(r[0]), int(r[1]), int(r[2])] for r in state]


def second_capacity(arch: str, row_target: int | None) -> int | None:
    """The decoder capacity a packer enforces: row_target where the architecture's rows have a second side."""
    return row_target if arch_impl(arch).pack_lengths(0, 0)[1] is not None else None


def pack_rows(first: list[int], second: list[int] | None, cap_first: int, cap_second: int | None,
              order: list[int], window: int = 64) -> list[list[int]]:
    """Best fit of examples (in `order`) into rows under one or two capacities; rows of example indices."""
    packer = Packer(cap_first, cap_second if second is not None else None, window)
    rows: list[list[int]] = []
    for i in order:
        rows.extend(packer.add(i, first[i], second[i] if second is not None else 0))
    rows.extend(packer.flush())
    return rows


def epoch_rows(sources: list[list[int]], targets: list[list[int]], arch: str, packing: bool, row_source: int,
               row_target: int | None, seed: int, epoch: int) -> list[list[int]]:
    """One epoch's rows (lists of example indices), shuffled deterministically by (seed, epoch)."""
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(sources)))
    rng.shuffle(order)
    if not packing:
        return [[i] for i in order]
    first, second = arch_impl(arch).pack_lengths(np.array([len(s) for s in sources], dtype=np.int64),
                                                 np.array([len(t) for t in targets], dtype=np.int64))
    rows = pack_rows(first.tolist(), None if second is None else second.tolist(), row_source,
                     second_capacity(arch, row_target), order)
    rng.shuffle(rows)
    return rows
