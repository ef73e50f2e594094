"""Packing with exact isolation: several examples per row, each seeing only itself.

Seq2seq rows hold several examples on both sides: encoder self-attention is block-diagonal per example,
decoder self-attention is causal within its example, cross-attention sees only the example's own encoder
tokens. T5 forwards one mask to both encoder self-attention and decoder cross-attention, so the encoder
and decoder are called separately, each with its own 4-D additive mask. T5's position bias is relative
(shift-invariant), so positions need no reset. Causal rows restart `position_ids` per example and use a
block-causal 4-D mask. Which tokens carry the loss is decided here from the recorded prompt/target
boundary, never by searching token ids.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

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


def _round_up(n: int) -> int:
    return max(PAD_MULTIPLE, -(-n // PAD_MULTIPLE) * PAD_MULTIPLE)


def collate(rows: list[list[int]], sources: list[list[int]], targets: list[list[int]], arch: str, pad_id: int,
            decoder_start_id: int | None, loss_normalization: str) -> tuple[dict[str, torch.Tensor], PackStats]:
    """Tensors for a batch of rows: ids, segment ids (0 = padding), labels, per-token loss weights."""
    if arch == "seq2seq":
        return _collate_seq2seq(rows, sources, targets, pad_id, decoder_start_id, loss_normalization)
    return _collate_causal(rows, sources, targets, pad_id, loss_normalization)


def _weight(n_target: int, mode: str) -> float:
    # Per-sequence normalisation: each example's target tokens share weight 1, so every example counts equally.
    return 1.0 / n_target if mode == "sequence" else 1.0


def _collate_seq2seq(rows, sources, targets, pad_id, start_id, mode):
    s_len = _round_up(max(sum(len(sources[i]) for i in row) for row in rows))
    t_len = _round_up(max(sum(len(targets[i]) for i in row) for row in rows))
    b = len(rows)
    input_ids = torch.full((b, s_len), pad_id, dtype=torch.long)
    enc_seg = torch.zeros((b, s_len), dtype=torch.long)
    dec_ids = torch.full((b, t_len), pad_id, dtype=torch.long)
    labels = torch.full((b, t_len), -100, dtype=torch.long)
    dec_seg = torch.zeros((b, t_len), dtype=torch.long)
    weight = torch.zeros((b, t_len), dtype=torch.float32)
    tokens = examples = 0
    for r, row in enumerate(rows):
        ps = pt = 0
        for k, i in enumerate(row, start=1):
            src, tgt = sources[i], targets[i]
            input_ids[r, ps:ps + len(src)] = torch.tensor(src)
            enc_seg[r, ps:ps + len(src)] = k
            dec_ids[r, pt:pt + len(tgt)] = torch.tensor([start_id] + tgt[:-1])
            labels[r, pt:pt + len(tgt)] = torch.tensor(tgt)
            dec_seg[r, pt:pt + len(tgt)] = k
            weight[r, pt:pt + len(tgt)] = _weight(len(tgt), mode)
            ps += len(src)
            pt += len(tgt)
            tokens += len(src) + len(tgt)
            examples += 1
    batch = {"input_ids": input_ids, "enc_seg": enc_seg, "decoder_input_ids": dec_ids, "labels": labels,
             "dec_seg": dec_seg, "weight": weight}
    return batch, PackStats(rows=b, examples=examples, tokens=tokens, slots=b * (s_len + t_len))


def _collate_causal(rows, sources, targets, pad_id, mode):
    length = _round_up(max(sum(len(sources[i]) + len(targets[i]) for i in row) for row in rows))
    b = len(rows)
    input_ids = torch.full((b, length), pad_id, dtype=torch.long)
    seg = torch.zeros((b, length), dtype=torch.long)
    positions = torch.zeros((b, length), dtype=torch.long)
    labels = torch.full((b, length), -100, dtype=torch.long)
    weight = torch.zeros((b, length), dtype=torch.float32)
    tokens = examples = 0
    for r, row in enumerate(rows):
        p = 0
        for k, i in enumerate(row, start=1):
            prompt, tgt = sources[i], targets[i]
            ids = prompt + tgt
            n = len(ids)
            input_ids[r, p:p + n] = torch.tensor(ids)
            seg[r, p:p + n] = k
            positions[r, p:p + n] = torch.arange(n)
            # position j predicts token j+1: the target tokens are predicted from positions boundary-1 .. n-2
            start = p + len(prompt) - 1
            if start < p:  # an empty prompt: the first target token has nothing to be predicted from
                tgt = tgt[1:]
                start = p
            labels[r, start:start + len(tgt)] = torch.tensor(tgt)
            weight[r, start:start + len(tgt)] = _weight(len(tgt), mode) if tgt else 0.0
            p += n
            tokens += n
            examples += 1
    batch = {"input_ids": input_ids, "seg": seg, "position_ids": positions, "labels": labels, "weight": weight}
    return batch, PackStats(rows=b, examples=examples, tokens=tokens, slots=b * length)


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, Q, K) booleans -> (B, 1, Q, K) additive float mask (0 where allowed, the dtype's minimum elsewhere)."""
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def seq2seq_masks(enc_seg: torch.Tensor, dec_seg: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Encoder block-diagonal, decoder block-causal and cross-attention masks for packed rows."""
    t = dec_seg.shape[1]
    causal = torch.ones((t, t), dtype=torch.bool, device=dec_seg.device).tril()
    enc = enc_seg[:, :, None] == enc_seg[:, None, :]
    dec = (dec_seg[:, :, None] == dec_seg[:, None, :]) & causal
    cross = dec_seg[:, :, None] == enc_seg[:, None, :]
    return additive_mask(enc, dtype), additive_mask(dec, dtype), additive_mask(cross, dtype)


def causal_mask(seg: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Block-causal mask: a token sees the earlier tokens of its own example only."""
    n = seg.shape[1]
    causal = torch.ones((n, n), dtype=torch.bool, device=seg.device).tril()
    return additive_mask((seg[:, :, None] == seg[:, None, :]) & causal, dtype)


class PackedLM(torch.nn.Module):
    """Wraps an HF model so one forward computes the weighted loss sum of packed rows (what DDP/FSDP wrap)."""

    def __init__(self, model: Any, arch: str, mask_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.model = model
        self.arch = arch
        self.mask_dtype = mask_dtype

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sum over label tokens of weight * cross-entropy, in fp32."""
        hidden = self.hidden_states(batch)
        select = batch["labels"] != -100
        logits = self.logits(hidden[select])
        ce = F.cross_entropy(logits.float(), batch["labels"][select], reduction="none")
        return (ce * batch["weight"][select]).sum()

    def hidden_states(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Final hidden states at every position of the packed rows."""
        dtype = self.mask_dtype or next(self.model.parameters()).dtype
        if self.arch == "seq2seq":
            enc_mask, dec_mask, cross_mask = seq2seq_masks(batch["enc_seg"], batch["dec_seg"], dtype)
            enc = self.model.get_encoder()(input_ids=batch["input_ids"], attention_mask=enc_mask).last_hidden_state
            dec = self.model.get_decoder()(input_ids=batch["decoder_input_ids"], attention_mask=dec_mask,
                                           encoder_hidden_states=enc, encoder_attention_mask=cross_mask,
                                           use_cache=False)
            return dec.last_hidden_state
        mask = causal_mask(batch["seg"], dtype)
        out = self.model.base_model(input_ids=batch["input_ids"], attention_mask=mask,
                                    position_ids=batch["position_ids"], use_cache=False)
        return out.last_hidden_state

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The LM head, with T5's d_model^-0.5 rescaling when its embeddings are tied."""
        config = self.model.config
        if self.arch == "seq2seq" and getattr(config, "scale_decoder_outputs", False):
            hidden = hidden * (config.d_model ** -0.5)
        return self.model.get_output_embeddings()(hidden)
