"""The one tokenisation path shared by training, evaluation, translation and serving."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Encoded:
    """Token ids of one example: for seq2seq, source and target; for causal, prompt then target."""

    source: list[int]  # seq2seq: encoder ids; causal: prompt ids (bos + prompt)
    target: list[int]  # ids that carry the loss (ends with eos when add_eos)


def token_ids(tokenizer: Any, text: str) -> list[int]:
    """The text's ids without any special token."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_source(tokenizer: Any, text: str, arch: str, max_len: int) -> list[int]:
    """Model input ids for a prompt, as the architecture's module builds them (seq2seq: + eos; causal: bos +)."""
    from ayakit.models.arch import arch_impl

    return arch_impl(arch).encode_source(tokenizer, text, max_len)


def encode_target(tokenizer: Any, text: str, max_len: int, add_eos: bool = True) -> list[int]:
    """Target ids: the text, truncated, then eos (the model learned to stop there)."""
    ids = token_ids(tokenizer, text)
    if add_eos:
        return ids[: max_len - 1] + [tokenizer.eos_token_id]
    return ids[:max_len]


def encode(tokenizer: Any, inputs: str, targets: str, arch: str, max_source: int, max_target: int) -> Encoded:
    """Encode one instruction pair; for causal models the boundary is len(source), recorded here, never searched for."""
    return Encoded(source=encode_source(tokenizer, inputs, arch, max_source),
                   target=encode_target(tokenizer, targets, max_target))


def lm_eval_prefix(tokenizer: Any) -> list[int]:
    """What lm-evaluation-harness feeds for an empty context: its prefix token (bos when there is one, else eos)."""
    bos = tokenizer.bos_token_id
    return [bos if bos is not None else tokenizer.eos_token_id]
