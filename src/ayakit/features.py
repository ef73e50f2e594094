"""The one tokenisation path shared by training, evaluation and serving."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ARCHS = ("seq2seq", "causal")


@dataclass
class Encoded:
    """Token ids of one example: for seq2seq, source and target; for causal, prompt then target."""

    source: list[int]  # seq2seq: encoder ids; causal: prompt ids (bos + prompt)
    target: list[int]  # ids that carry the loss (ends with eos when add_eos)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_source(tokenizer: Any, text: str, arch: str, max_len: int) -> list[int]:
    """Model input ids for a prompt: seq2seq appends eos (as T5 does); causal prepends bos when the tokenizer has one."""
    ids = _ids(tokenizer, text)
    if arch == "seq2seq":
        eos = tokenizer.eos_token_id
        return ids[: max_len - 1] + [eos]
    if arch == "causal":
        bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        body = ids[-(max_len - len(bos)) :] if max_len > len(bos) else []  # keep the end of a long prompt
        return bos + body
    raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHS}")


def encode_target(tokenizer: Any, text: str, max_len: int, add_eos: bool = True) -> list[int]:
    """Target ids: the text, truncated, then eos (the model learned to stop there)."""
    ids = _ids(tokenizer, text)
    if add_eos:
        return ids[: max_len - 1] + [tokenizer.eos_token_id]
    return ids[:max_len]


def encode(tokenizer: Any, inputs: str, targets: str, arch: str, max_source: int, max_target: int) -> Encoded:
    """Encode one instruction pair; for causal models the boundary is len(source), recorded here, never searched for."""
    return Encoded(
        source=encode_source(tokenizer, inputs, arch, max_source),
        target=encode_target(tokenizer, targets, max_target),
    )
