"""The architecture table: each supported architecture is one module implementing `Arch`; nothing else branches on it."""

from __future__ import annotations

from types import ModuleType
from typing import Any, Protocol


class Arch(Protocol):
    """What an architecture module provides (seq2seq.py, causal.py)."""

    NAME: str
    JOINT: bool  # prompt and target share one sequence (causal), so a row's length is their sum
    PAD_SIDE: str  # where generation pads prompts: "left" (causal, every prompt ends where decoding starts)
    SCORE_OPTIONS: dict[str, tuple[str, ...]]  # options `score` takes, with their allowed values (first: default)
    ECHO: bool  # the model predicts every prompt token from the ones before it, so a prompt can be scored

    def auto_class(self) -> Any:
        """The transformers Auto class that loads this architecture."""
        ...

    def build(self, fields: dict[str, Any], tokenizer: Any, positions: int) -> Any:
        """A randomly initialised model from preset/override config fields."""
        ...

    def encode_source(self, tokenizer: Any, text: str, max_len: int) -> list[int]:
        """Model input ids of a prompt, exactly as the trainer builds them."""
        ...

    def frame_source(self, tokenizer: Any, ids: list[int], max_len: int) -> list[int]:
        """Model input ids from a prompt's plain token ids (what encode_source does after tokenising)."""
        ...

    def decoder_start(self, model: Any, pad_id: int) -> int | None:
        """The id a separate decoder starts from; None when the model has no separate decoder."""
        ...

    def row_capacity(self, max_source: int, max_target: int, pack_source: int | None, pack_target: int | None,
                     target_ratio: float) -> tuple[int, int | None]:
        """Capacity of one packed row: (first side's tokens, second side's tokens or None when there is one side)."""
        ...

    def pack_lengths(self, source_lengths: Any, target_lengths: Any) -> tuple[Any, Any]:
        """Lengths (ints or arrays) an example takes of a row's first and second capacity (None: no second)."""
        ...

    def collate(self, rows: list[list[int]], sources: list[list[int]], targets: list[list[int]], pad_id: int,
                decoder_start_id: int | None, loss_normalization: str) -> tuple[dict[str, Any], Any]:
        """Tensors of a batch of packed rows and its PackStats."""
        ...

    def hidden_states(self, model: Any, batch: dict[str, Any], dtype: Any) -> Any:
        """Final hidden states of packed rows, each example isolated by block masks."""
        ...

    def logits(self, model: Any, hidden: Any) -> Any:
        """The output layer on hidden states."""
        ...

    def score(self, model: Any, encoded: list[tuple[list[int], list[list[int]]]], batch_size: int, pad_id: int,
              **options: Any) -> list[list[tuple[float, bool]]]:
        """(summed log-probability, every token the argmax) per continuation of each (context ids, continuations)."""
        ...

    def generated(self, output: Any, width: int) -> Any:
        """The new tokens of a `generate` output whose prompts were padded to `width`."""
        ...

    def finish_generation_config(self, gen: Any, model: Any, tokenizer: Any) -> None:
        """Set the architecture's start/bos ids on a generation config before saving."""
        ...

    # decoding rows that join and leave a running batch (serve's continuous batching); `rows` is the module's
    # own `Rows` (its caches and masks), opaque to callers; `len(rows)` is its number of rows

    def prefill(self, model: Any, prompts: list[list[int]], pad_id: int) -> tuple[Any, Any]:
        """Rows for the prompts, computed together, and each row's first-token logits (B, V)."""
        ...

    def step(self, model: Any, rows: Any, next_ids: Any) -> tuple[Any, Any]:
        """Feed each row its next token (B,): the advanced rows and each row's next logits (B, V)."""
        ...

    def mergeable(self, rows: Any) -> bool:
        """Whether other rows can be appended to these (their caches are plain dynamic layers)."""
        ...

    def merge_rows(self, rows: Any, other: Any) -> Any:
        """`rows` then `other`, padded to common widths; a RuntimeError when `rows` is not mergeable."""
        ...

    def select_rows(self, rows: Any, keep: list[int]) -> Any:
        """Only the rows at indices `keep`, without the padding none of them needs."""
        ...


def _table() -> dict[str, ModuleType]:
    from ayakit.models import causal, seq2seq

    return {seq2seq.NAME: seq2seq, causal.NAME: causal}


ARCHS: dict[str, Arch] = _table()  # type: ignore[assignment]  # modules implement the protocol


def arch_impl(name: str) -> Arch:
    """The module of an architecture; a ValueError naming the known ones."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; expected one of {sorted(ARCHS)}") from None
