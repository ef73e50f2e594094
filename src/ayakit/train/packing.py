"""Which examples share a packed row: greedy first-fit under the row capacities, and one epoch's shuffled rows.

The rows' tensors, masks and loss forward are the architecture's business: ayakit.models (packed.py, seq2seq.py,
causal.py, packed_lm.py).
"""

from __future__ import annotations

import random
from typing import Any

# moved to ayakit.models; re-exported so code written against the old path keeps working for one release
from ayakit.models.packed import PAD_MULTIPLE, PackStats, collate  # noqa: F401
from ayakit.models.packed_lm import PackedLM  # noqa: F401


def pack_rows(first: list[int], second: list[int] | None, cap_first: int, cap_second: int | None,
              order: list[int], window: int = 64) -> list[list[int]]:
    """Greedy first-fit of examples (in `order`) into rows under one or two capacities; rows of example indices.

    Up to `window` rows stay open; an example goes to the first open row with room for both its lengths.
    """
    rows: list[list[int]] = []
    open_rows: list[list[Any]] = []  # [indices, used_first, used_second]
    for i in order:
        a = first[i]
        b = second[i] if second is not None else 0
        for row in open_rows:
            if row[1] + a <= cap_first and (second is None or row[2] + b <= cap_second):
                row[0].append(i)
                row[1] += a
                row[2] += b
                break
        else:
            open_rows.append([[i], a, b])
            if len(open_rows) > window:
                rows.append(open_rows.pop(0)[0])
    rows.extend(r[0] for r in open_rows)
    return rows


def epoch_rows(sources: list[list[int]], targets: list[list[int]], arch: str, packing: bool, row_source: int,
               row_target: int, seed: int, epoch: int) -> list[list[int]]:
    """One epoch's rows (lists of example indices), shuffled deterministically by (seed, epoch)."""
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(sources)))
    rng.shuffle(order)
    if not packing:
        return [[i] for i in order]
    if arch == "seq2seq":
        rows = pack_rows([len(s) for s in sources], [len(t) for t in targets], row_source, row_target, order)
    else:
        rows = pack_rows([len(s) + len(t) for s, t in zip(sources, targets)], None, row_source, None, order)
    rng.shuffle(rows)
    return rows
