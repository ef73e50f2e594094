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


@dataclass(frozen=True)
class RequestEncoder:
    """How every engine turns (context, continuations) requests and prompts into ids: one convention, one place.

    convention "ayakit" tokenises as the trainer does; "lm-eval" as lm-evaluation-harness (trailing context spaces
    move to the continuation, causal continuations are the tail of the joint tokenisation, an empty context is
    lm-eval's prefix token). `window`: a joint model's position table (prompts are cut to fit it)."""

    tokenizer: Any
    arch: str
    convention: str
    max_length: int
    max_target: int
    score_eos: bool
    window: int | None = None

    def split_space(self, context: str, continuation: str) -> tuple[str, str]:
        """lm-eval moves the context's trailing whitespace to the continuation; ayakit keeps the pair as is."""
        if self.convention == "lm-eval":
            n = len(context) - len(context.rstrip())
            if n:
                return context[:-n], context[-n:] + continuation
        return context, continuation

    def context_ids(self, context: str) -> list[int]:
        """Model input ids for a context or prompt."""
        if self.convention == "lm-eval" and context == "":
            return lm_eval_prefix(self.tokenizer)
        return encode_source(self.tokenizer, context, self.arch, self.max_length)

    def continuation_ids(self, context: str, continuation: str) -> list[int]:
        """Ids of a continuation scored after `context`."""
        from ayakit.models.arch import arch_impl

        if arch_impl(self.arch).JOINT and self.convention == "lm-eval":  # the tail of the joint tokenisation
            big = 10**9
            whole = encode_target(self.tokenizer, context + continuation, big, add_eos=False)
            ctx = encode_target(self.tokenizer, context, big, add_eos=False)
            return whole[len(ctx):][: self.max_target]
        return encode_target(self.tokenizer, continuation, self.max_target, add_eos=self.score_eos)

    def requests(self, requests: list[tuple[str, list[str]]]) -> list[tuple[list[int], list[list[int]]]]:
        """(context ids, continuation ids per choice) for each request."""
        out = []
        for context, conts in requests:
            if self.convention == "lm-eval":
                pairs = [self.split_space(context, c) for c in conts]
                ctx = pairs[0][0] if pairs else context
                out.append((self.context_ids(ctx), [self.continuation_ids(ctx, c) for _, c in pairs]))
            else:
                out.append((self.context_ids(context), [self.continuation_ids(context, c) for c in conts]))
        return out

    def continuation_texts(self, context: str, conts: list[str]) -> list[str]:
        """The continuation texts as scored (for per-byte normalisation)."""
        return [self.split_space(context, c)[1] for c in conts]

    def prompts(self, prompts: list[str], max_new_tokens: int) -> list[list[int]]:
        """Generation prompt ids; in a joint model's window, a long prompt keeps its end (bos first) so that
        `max_new_tokens` still fit."""
        ids = [self.context_ids(p) for p in prompts]
        if not self.window:
            return ids
        keep = max(2, self.window - max_new_tokens)
        bos = self.tokenizer.bos_token_id
        return [seq if len(seq) <= keep else
                (seq[:1] + seq[len(seq) - keep + 1:] if seq[0] == bos else seq[len(seq) - keep:]) for seq in ids]
