"""Packing with exact isolation: what every architecture shares (row statistics, padding, loss weights, masks).

A packed row holds several examples, each seeing only itself; the architecture modules (seq2seq.py, causal.py)
build their rows and masks from these pieces. Which tokens carry the loss is decided from the recorded
prompt/target boundary, never by searching token ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAD_MULTIPLE = 8  # row lengths in a batch are rounded up to this, which keeps matmuls aligned


@dataclass
class PackStats:
    """How well rows were filled: non-pad tokens over all slots, examples per row."""

    rows: int
    examples: int
    tokens: int
    slots: int

    @property
    def fill_rate(self) -> float:
        """Non-pad tokens / all tokens of the padded rows."""
        return self.tokens / max(self.slots, 1)

    @property
    def examples_per_row(self) -> float:
        """Mean examples packed in one row."""
        return self.examples / max(self.rows, 1)

    def add(self, other: PackStats) -> None:
        """Accumulate another batch's counts."""
        self.rows += other.rows
        self.examples += other.examples
        self.tokens += other.tokens
        self.slots += other.slots


def round_up(n: int) -> int:
    """A row length rounded up to PAD_MULTIPLE (at least one multiple)."""
    return max(PAD_MULTIPLE, -(-n // PAD_MULTIPLE) * PAD_MULTIPLE)


def loss_weight(n_target: int, mode: str) -> float:
    """Per-sequence normalisation: each example's target tokens share weight 1, so every example counts equally."""
    return 1.0 / n_target if mode == "sequence" else 1.0


def additive_mask(allowed: Any, dtype: Any) -> Any:
    """(B, Q, K) booleans -> (B, 1, Q, K) additive float mask (0 where allowed, the dtype's minimum elsewhere)."""
    import torch

    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def pad_prompts(seqs: list[list[int]], pad_id: int, side: str) -> tuple[Any, Any]:
    """(ids, attention mask) tensors of prompts padded to one width on `side` ("left": every prompt ends in the last
    column, where a decoder-only model continues; "right": an encoder's layout)."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        span = slice(width - len(seq), width) if side == "left" else slice(0, len(seq))
        ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


def collate(rows: list[list[int]], sources: list[list[int]], targets: list[list[int]], arch: str, pad_id: int,
            decoder_start_id: int | None, loss_normalization: str) -> tuple[dict[str, Any], PackStats]:
    """Tensors for a batch of rows: ids, segment ids (0 = padding), labels, per-token loss weights."""
    from ayakit.models.arch import arch_impl

    return arch_impl(arch).collate(rows, sources, targets, pad_id, decoder_start_id, loss_normalization)
