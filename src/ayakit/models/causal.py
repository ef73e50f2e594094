"""Decoder-only models (Llama style): encoding, packed rows and masks, loss forward, scoring, generation layout.

Packed causal rows restart `position_ids` per example and use a block-causal 4-D mask.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from ayakit.models import kvcache
from ayakit.models.encoding import token_ids
from ayakit.models.packed import PackStats, additive_mask, loss_weight, pad_prompts, round_up
from ayakit.models.scoring import chunks, flat_scores, logits_at, row_scores

NAME = "causal"
JOINT = True
PAD_SIDE = "left"
STRATEGIES = ("packed", "cache")
SCORE_OPTIONS = {"strategy": STRATEGIES}
ECHO = True  # every prompt token is predicted from the ones before it, so a prompt can be scored


def auto_class() -> Any:
    """transformers' AutoModelForCausalLM."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM


def build(fields: dict[str, Any], tokenizer: Any, positions: int) -> Any:
    """A random Llama from preset fields, its position table at least `positions` (and 2048) long."""
    from transformers import LlamaConfig, LlamaForCausalLM

    fields = {"max_position_embeddings": max(positions, 2048), **fields}
    cfg = LlamaConfig(vocab_size=len(tokenizer), tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **fields)
    return LlamaForCausalLM(cfg)


def encode_source(tokenizer: Any, text: str, max_len: int) -> list[int]:
    """bos (when the tokenizer has one) then the prompt; a long prompt keeps its end."""
    return frame_source(tokenizer, token_ids(tokenizer, text), max_len)


def frame_source(tokenizer: Any, ids: list[int], max_len: int) -> list[int]:
    """Model input ids from a prompt's plain token ids: bos (when the tokenizer has one), then the prompt's last
    tokens that fit in max_len."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    body = ids[-(max_len - len(bos)):] if max_len > len(bos) else []
    return bos + body


def decoder_start(model: Any, pad_id: int) -> None:
    """None: a decoder-only model has no separate decoder to start."""
    return None


def finish_generation_config(gen: Any, model: Any, tokenizer: Any) -> None:
    """Generation starts after bos when the tokenizer has one."""
    if tokenizer.bos_token_id is not None:
        gen.bos_token_id = tokenizer.bos_token_id


def generated(output: Any, width: int) -> Any:
    """The new tokens: `generate` returns the left-padded prompt then the continuation."""
    return output[:, width:]


# --- training --------------------------------------------------------------------------------------------------


def row_capacity(max_source: int, max_target: int, pack_source: int | None, pack_target: int | None,
                 target_ratio: float) -> tuple[int, int | None]:
    """Capacity of one packed row: (whole-row tokens, None): prompt and target share the one sequence."""
    return pack_source or (max_source + max_target), None


def pack_lengths(source_lengths: Any, target_lengths: Any) -> tuple[Any, Any]:
    """What an example takes of a row's one capacity: prompt plus target tokens (None: no second capacity)."""
    return source_lengths + target_lengths, None


def collate(rows: list[list[int]], sources: list[list[int]], targets: list[list[int]], pad_id: int,
            start_id: int | None, mode: str) -> tuple[dict[str, Any], PackStats]:
    """Tensors of packed rows: ids, segment ids (0 = padding), restarting positions, labels and loss weights."""
    import torch

    length = round_up(max(sum(len(sources[i]) + len(targets[i]) for i in row) for row in rows))
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
            weight[r, start:start + len(tgt)] = loss_weight(len(tgt), mode) if tgt else 0.0
            p += n
            tokens += n
            examples += 1
    batch = {"input_ids": input_ids, "seg": seg, "position_ids": positions, "labels": labels, "weight": weight}
    return batch, PackStats(rows=b, examples=examples, tokens=tokens, slots=b * length)


def mask(seg: Any, dtype: Any) -> Any:
    """Block-causal mask: a token sees the earlier tokens of its own example only."""
    import torch

    n = seg.shape[1]
    causal = torch.ones((n, n), dtype=torch.bool, device=seg.device).tril()
    return additive_mask((seg[:, :, None] == seg[:, None, :]) & causal, dtype)


def hidden_states(model: Any, batch: dict[str, Any], dtype: Any) -> Any:
    """Final hidden states of packed rows (block-causal mask, positions restarting per example)."""
    out = model.base_model(input_ids=batch["input_ids"], attention_mask=mask(batch["seg"], dtype),
                           position_ids=batch["position_ids"], use_cache=False)
    return out.last_hidden_state


def logits(model: Any, hidden: Any) -> Any:
    """The LM head."""
    return model.get_output_embeddings()(hidden)


# --- scoring ---------------------------------------------------------------------------------------------------


def score(model: Any, encoded: list[tuple[list[int], list[list[int]]]], batch_size: int, pad_id: int,
          strategy: str = "packed", **options: Any) -> list[list[tuple[float, bool]]]:
    """(log-probability, all-argmax) of every continuation; each context is computed once for all of its choices.

    strategy "packed" (default): one forward pass per batch; a row holds the context then every choice, and a block
    attention mask lets each choice see the context and itself only (positions restart after the context).
    strategy "cache": a pass over the contexts, then the choices on a copy of the KV cache."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    return (_packed if strategy == "packed" else _cached)(model, encoded, batch_size, pad_id)


def _packed(model: Any, encoded: list[tuple[list[int], list[list[int]]]], batch_size: int,
            pad_id: int) -> list[list[tuple[float, bool]]]:
    import torch

    results: list[list[tuple[float, bool]]] = [[] for _ in encoded]
    sizes = [max(1, len(conts)) for _, conts in encoded]
    lengths = [len(ctx) + sum(len(c) for c in conts) for ctx, conts in encoded]
    order = sorted(range(len(encoded)), key=lambda i: -lengths[i])
    dev = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    blocked = torch.finfo(dtype).min
    for group in chunks(order, sizes, batch_size):
        # logits are computed only where a choice token is predicted (each context's last token and the
        # choices), which matters when the vocabulary is large and the context long (few-shot prompts)
        width = max(lengths[i] for i in group)
        ids = torch.full((len(group), width), pad_id, dtype=torch.long)
        pos = torch.zeros((len(group), width), dtype=torch.long)
        allow = torch.zeros((len(group), width, width), dtype=torch.bool)
        rows = []  # (group row, request, prediction positions, targets)
        for g, i in enumerate(group):
            ctx, conts = encoded[i]
            lc, o = len(ctx), width - lengths[i]
            ids[g, o:o + lc] = torch.tensor(ctx)
            pos[g, o:o + lc] = torch.arange(lc)
            allow[g, o:o + lc, o:o + lc] = torch.ones(lc, lc, dtype=torch.bool).tril()
            start = o + lc
            for cont in conts:
                n = len(cont)
                if n:
                    ids[g, start:start + n] = torch.tensor(cont)
                    pos[g, start:start + n] = torch.arange(lc, lc + n)
                    allow[g, start:start + n, o:o + lc] = True
                    allow[g, start:start + n, start:start + n] = torch.ones(n, n, dtype=torch.bool).tril()
                # token k of the choice is predicted at the previous token: the context's last, then its own
                where = [o + lc - 1] + list(range(start, start + n - 1))
                rows.append((g, i, where[:n], cont))
                start += n
        idle = ~allow.any(-1)
        allow[idle] = True  # padding rows attend everywhere (their outputs are unused): no empty softmax
        mask4 = torch.zeros((len(group), 1, width, width), dtype=dtype)
        mask4.masked_fill_(~allow.unsqueeze(1), blocked)
        flat_r, flat_g, flat_p, flat_t = [], [], [], []
        for r, (g, _, where, cont) in enumerate(rows):
            flat_r += [r] * len(cont)
            flat_g += [g] * len(cont)
            flat_p += where
            flat_t += cont
        row_of = torch.tensor(flat_r, dtype=torch.long, device=dev)
        with torch.inference_mode():
            out = logits_at(model, torch.tensor(flat_g, dtype=torch.long, device=dev),
                            torch.tensor(flat_p, dtype=torch.long, device=dev), input_ids=ids.to(dev),
                            attention_mask=mask4.to(dev), position_ids=pos.to(dev), use_cache=False)
            logprob, greedy = flat_scores(out, torch.tensor(flat_t, dtype=torch.long, device=dev), row_of, len(rows))
        for r, (_, i, _, _) in enumerate(rows):
            results[i].append((float(logprob[r]), bool(greedy[r])))
    return results


def _cache_kwarg(model: Any) -> str:
    """transformers renamed `past_key_values` to `cache` in 5.x: use whichever this version takes."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _cached(model: Any, encoded: list[tuple[list[int], list[list[int]]]], batch_size: int,
            pad_id: int) -> list[list[tuple[float, bool]]]:
    import torch

    results: list[list[tuple[float, bool]]] = [[] for _ in encoded]
    sizes = [max(1, len(conts)) for _, conts in encoded]
    order = sorted(range(len(encoded)),
                   key=lambda i: (-len(encoded[i][0]), -max((len(c) for c in encoded[i][1]), default=0)))
    dev = next(model.parameters()).device
    cache_kwarg = _cache_kwarg(model)
    for group in chunks(order, sizes, batch_size):
        lens = [len(encoded[i][0]) for i in group]
        width = max(lens)
        ctx = torch.full((len(group), width), pad_id, dtype=torch.long)
        ctx_mask = torch.zeros((len(group), width), dtype=torch.long)
        for g, i in enumerate(group):
            ctx[g, : lens[g]], ctx_mask[g, : lens[g]] = torch.tensor(encoded[i][0]), 1
        rows = [(g, i, j) for g, i in enumerate(group) for j in range(len(encoded[i][1]))]
        if not rows:
            continue
        conts = [encoded[i][1][j] for _, i, j in rows]
        tlen = max(1, max(len(c) for c in conts))
        cont = torch.full((len(rows), tlen), pad_id, dtype=torch.long)
        tmask = torch.zeros((len(rows), tlen), dtype=torch.bool)
        for r, c in enumerate(conts):
            if c:
                cont[r, : len(c)], tmask[r, : len(c)] = torch.tensor(c), True
        index = torch.tensor([g for g, _, _ in rows])
        row_lens = torch.tensor([lens[g] for g, _, _ in rows])
        with torch.inference_mode():
            out = model(input_ids=ctx.to(dev), attention_mask=ctx_mask.to(dev),
                        position_ids=torch.arange(width).expand(len(group), -1).to(dev), use_cache=True)
            first = out.logits[torch.arange(len(group)), torch.tensor(lens) - 1].index_select(0, index.to(dev))
            cache = getattr(out, "cache", None) or out.past_key_values
            cache.batch_select_indices(index.to(dev))
            if tlen > 1:
                positions = (row_lens.unsqueeze(1) + torch.arange(tlen - 1)).to(dev)
                mask2 = torch.cat([ctx_mask.index_select(0, index), tmask[:, :-1].long()], dim=1).to(dev)
                rest = model(input_ids=cont[:, :-1].to(dev), attention_mask=mask2, position_ids=positions,
                             use_cache=True, **{cache_kwarg: cache}).logits
                all_logits = torch.cat([first.unsqueeze(1), rest], dim=1)
            else:
                all_logits = first.unsqueeze(1)
            logprob, greedy = row_scores(all_logits, cont.to(dev), tmask.to(dev))
        for r, (_, i, _) in enumerate(rows):
            results[i].append((float(logprob[r]), bool(greedy[r])))
    return results


# --- decoding rows that join and leave (serve's continuous batching) --------------------------------------------


@dataclass
class Rows:
    """Rows being decoded: each row's KV cache, computed alone, left-padded to a common length."""

    cache: Any  # DynamicCache over the prompts and the tokens generated so far
    mask: Any  # (B, L) attention mask over the cached positions
    positions: Any  # (B,) position id of the token each row feeds next (padding does not count)

    def __len__(self) -> int:
        return int(self.mask.shape[0])


def prefill(model: Any, prompts: list[list[int]], pad_id: int) -> tuple[Rows, Any]:
    """Run the left-padded prompts (positions counted from each row's first real token): the rows and each row's
    next-token logits (B, V)."""
    import torch
    from transformers.cache_utils import DynamicCache

    device = next(model.parameters()).device
    ids, attn = pad_prompts(prompts, pad_id, PAD_SIDE)
    ids, attn = ids.to(device), attn.to(device)
    positions = (attn.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=attn, position_ids=positions, cache=cache, use_cache=True)
    return Rows(kvcache.new_cache(out, cache), attn, attn.sum(-1)), out.logits[:, -1]


def step(model: Any, rows: Rows, next_ids: Any) -> tuple[Rows, Any]:
    """Feed each row its next token (B,): the advanced rows (cache updated in place) and the next logits (B, V)."""
    import torch

    mask = kvcache.extend(rows.mask)
    with torch.inference_mode():
        out = model(input_ids=next_ids[:, None], attention_mask=mask, position_ids=rows.positions[:, None],
                    cache=rows.cache, use_cache=True)
    return Rows(kvcache.new_cache(out, rows.cache), mask, rows.positions + 1), out.logits[:, -1]


def mergeable(rows: Rows) -> bool:
    """Whether other rows can be appended to these (plain dynamic layers)."""
    return kvcache.plain(list(rows.cache.layers))


def merge_rows(rows: Rows, other: Rows) -> Rows:
    """`rows` then `other` (rows' cache grows in place), left-padded to the longer; positions are unchanged."""
    import torch

    if not mergeable(rows):
        raise RuntimeError("this model's cache cannot be merged; wait for the running batch to finish")
    mask = kvcache.merge_self(list(rows.cache.layers), rows.mask, list(other.cache.layers), other.mask)
    return Rows(rows.cache, mask, torch.cat([rows.positions, other.positions]))


def select_rows(rows: Rows, keep: list[int]) -> Rows:
    """Only the rows `keep` (cache changed in place), without the leading padding none of them needs."""
    import torch

    idx = torch.tensor(keep, dtype=torch.long, device=rows.mask.device)
    mask = kvcache.select_self(list(rows.cache.layers), rows.mask, idx)
    return Rows(rows.cache, mask, rows.positions[idx])
