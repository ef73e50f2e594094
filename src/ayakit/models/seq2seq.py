"""Encoder-decoder models (T5 / mT5 style): encoding, packed rows and masks, loss forward, scoring, generation layout.

Packed seq2seq rows hold several examples on both sides: encoder self-attention is block-diagonal per example,
decoder self-attention is causal within its example, cross-attention sees only the example's own encoder
tokens. T5 forwards one mask to both encoder self-attention and decoder cross-attention, so the encoder and
decoder are called separately, each with its own 4-D additive mask. T5's position bias is relative
(shift-invariant), so positions need no reset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ayakit.models import kvcache
from ayakit.models.encoding import token_ids
from ayakit.models.packed import PAD_MULTIPLE, PackStats, additive_mask, loss_weight, pad_prompts, round_up
from ayakit.models.scoring import chunks, flat_scores, logits_at

NAME = "seq2seq"
JOINT = False
PAD_SIDE = "right"
SCORE_OPTIONS: dict[str, tuple[str, ...]] = {}
ECHO = False  # the decoder does not read the prompt token by token, so the prompt has no per-token scores


def auto_class() -> Any:
    """transformers' AutoModelForSeq2SeqLM."""
    from transformers import AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM


def build(fields: dict[str, Any], tokenizer: Any, positions: int) -> Any:
    """A random T5 (gated-GELU, tied embeddings, as mT5) from preset fields; relative positions need no table."""
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(vocab_size=len(tokenizer), feed_forward_proj="gated-gelu", tie_word_embeddings=True,
                   decoder_start_token_id=tokenizer.pad_token_id, is_encoder_decoder=True,
                   pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **fields)
    return T5ForConditionalGeneration(cfg)


def encode_source(tokenizer: Any, text: str, max_len: int) -> list[int]:
    """The prompt's ids then eos (as T5 does), truncated to max_len."""
    return frame_source(tokenizer, token_ids(tokenizer, text), max_len)


def frame_source(tokenizer: Any, ids: list[int], max_len: int) -> list[int]:
    """Model input ids from a prompt's plain token ids: truncated to max_len - 1, then eos."""
    return ids[: max_len - 1] + [tokenizer.eos_token_id]


def decoder_start(model: Any, pad_id: int) -> int:
    """The id the decoder starts from (the config's, else padding as in T5)."""
    start = model.config.decoder_start_token_id
    return pad_id if start is None else start


def finish_generation_config(gen: Any, model: Any, tokenizer: Any) -> None:
    """Generation starts from the decoder start id."""
    gen.decoder_start_token_id = model.config.decoder_start_token_id


def generated(output: Any, width: int) -> Any:
    """The new tokens: `generate` returns the decoder sequence, its first column the start id."""
    return output[:, 1:]


# --- training --------------------------------------------------------------------------------------------------


def row_capacity(max_source: int, max_target: int, pack_source: int | None, pack_target: int | None,
                 target_ratio: float) -> tuple[int, int | None]:
    """Capacity of one packed row: (encoder tokens, decoder tokens); unless set, the decoder side is sized from the
    mixture's target/source token ratio, so both sides fill about equally."""
    src = pack_source or max_source
    if pack_target:
        return src, pack_target
    tgt = -(-math.ceil(src * target_ratio * 1.1) // PAD_MULTIPLE) * PAD_MULTIPLE
    return src, max(max_target, tgt)


def pack_lengths(source_lengths: Any, target_lengths: Any) -> tuple[Any, Any]:
    """What an example takes of each capacity of a row: its encoder and its decoder tokens."""
    return source_lengths, target_lengths


def collate(rows: list[list[int]], sources: list[list[int]], targets: list[list[int]], pad_id: int,
            start_id: int | None, mode: str) -> tuple[dict[str, Any], PackStats]:
    """Tensors of packed rows: encoder/decoder ids, segment ids (0 = padding), labels and loss weights."""
    import torch

    s_len = round_up(max(sum(len(sources[i]) for i in row) for row in rows))
    t_len = round_up(max(sum(len(targets[i]) for i in row) for row in rows))
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
            weight[r, pt:pt + len(tgt)] = loss_weight(len(tgt), mode)
            ps += len(src)
            pt += len(tgt)
            tokens += len(src) + len(tgt)
            examples += 1
    batch = {"input_ids": input_ids, "enc_seg": enc_seg, "decoder_input_ids": dec_ids, "labels": labels,
             "dec_seg": dec_seg, "weight": weight}
    return batch, PackStats(rows=b, examples=examples, tokens=tokens, slots=b * (s_len + t_len))


def masks(enc_seg: Any, dec_seg: Any, dtype: Any) -> tuple[Any, Any, Any]:
    """Encoder block-diagonal, decoder block-causal and cross-attention masks for packed rows."""
    import torch

    t = dec_seg.shape[1]
    causal = torch.ones((t, t), dtype=torch.bool, device=dec_seg.device).tril()
    enc = enc_seg[:, :, None] == enc_seg[:, None, :]
    dec = (dec_seg[:, :, None] == dec_seg[:, None, :]) & causal
    cross = dec_seg[:, :, None] == enc_seg[:, None, :]
    return additive_mask(enc, dtype), additive_mask(dec, dtype), additive_mask(cross, dtype)


def hidden_states(model: Any, batch: dict[str, Any], dtype: Any) -> Any:
    """Decoder hidden states of packed rows (encoder and decoder called separately, each with its own masks)."""
    enc_mask, dec_mask, cross_mask = masks(batch["enc_seg"], batch["dec_seg"], dtype)
    enc = model.get_encoder()(input_ids=batch["input_ids"], attention_mask=enc_mask).last_hidden_state
    dec = model.get_decoder()(input_ids=batch["decoder_input_ids"], attention_mask=dec_mask,
                              encoder_hidden_states=enc, encoder_attention_mask=cross_mask, use_cache=False)
    return dec.last_hidden_state


def logits(model: Any, hidden: Any) -> Any:
    """The LM head, with T5's d_model^-0.5 rescaling when its embeddings are tied."""
    config = model.config
    if getattr(config, "scale_decoder_outputs", False):
        hidden = hidden * (config.d_model ** -0.5)
    return model.get_output_embeddings()(hidden)


# --- scoring ---------------------------------------------------------------------------------------------------


# contexts are encoded and held for decoding in windows of at most batch_size * WINDOW_TOKENS context tokens:
# large enough to sort many items' choices by length, small enough to bound memory for long contexts and wide models
WINDOW_TOKENS = 512


def score(model: Any, encoded: list[tuple[list[int], list[list[int]]]], batch_size: int, pad_id: int,
          **options: Any) -> list[list[tuple[float, bool]]]:
    """(log-probability, all-argmax) of every continuation: one encoder pass per context, one decoder row per choice.

    Items are taken longest context first, a window of contexts at a time (WINDOW_TOKENS); their contexts are
    encoded `batch_size` at a time. Then every choice of the window, whichever item it belongs to, is sorted by its length
    and decoded `batch_size` rows at a time, each row reading its own context's encoder states (padded to the
    batch's longest context and masked), so decoder rows are padded only to similar lengths."""
    import torch

    device = next(model.parameters()).device
    results: list[list[tuple[float, bool]]] = [[(0.0, True)] * len(conts) for _, conts in encoded]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
    start = decoder_start(model, pad_id)
    encoder = model.get_encoder()
    for window in chunks(order, [len(ctx) for ctx, _ in encoded], batch_size * WINDOW_TOKENS):
        states: dict[int, Any] = {}
        for group in chunks(window, [1] * len(encoded), batch_size):
            src, src_mask = pad_prompts([encoded[i][0] for i in group], pad_id, "right")
            with torch.inference_mode():
                hidden = encoder(input_ids=src.to(device), attention_mask=src_mask.to(device)).last_hidden_state
            for g, i in enumerate(group):
                states[i] = hidden[g, : len(encoded[i][0])]
        pairs = [(i, j) for i in window for j in range(len(encoded[i][1]))]
        pairs.sort(key=lambda p: (-len(encoded[p[0]][1][p[1]]), -len(encoded[p[0]][0])))
        for batch in chunks(list(range(len(pairs))), [1] * len(pairs), batch_size):
            rows = [pairs[k] for k in batch]
            conts = [encoded[i][1][j] for i, j in rows]
            width = max(len(encoded[i][0]) for i, _ in rows)
            hidden = torch.zeros((len(rows), width, states[rows[0][0]].shape[-1]), dtype=states[rows[0][0]].dtype,
                                 device=device)
            cross_mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, (i, _) in enumerate(rows):
                n = len(encoded[i][0])
                hidden[r, :n] = states[i]
                cross_mask[r, :n] = 1
            tlen = max(1, max(len(c) for c in conts))
            dec_in = torch.full((len(rows), tlen), pad_id, dtype=torch.long)
            target = torch.full((len(rows), tlen), pad_id, dtype=torch.long)
            tmask = torch.zeros((len(rows), tlen), dtype=torch.bool)
            for r, cont in enumerate(conts):
                if cont:
                    seq = torch.tensor(cont)
                    target[r, : len(seq)] = seq
                    dec_in[r, : len(seq)] = torch.cat([torch.tensor([start]), seq[:-1]])
                    tmask[r, : len(seq)] = True
            if not tmask.any():
                continue  # only empty continuations: log-probability 0, trivially greedy
            with torch.inference_mode():
                # no decoder mask: targets are right-padded and the decoder is causal, so padding never reaches
                # a real position; logits only at the real target positions
                r_idx, c_idx = tmask.nonzero(as_tuple=True)
                out = logits_at(model, r_idx.to(device), c_idx.to(device), encoder_outputs=(hidden,),
                                attention_mask=cross_mask.to(device), decoder_input_ids=dec_in.to(device),
                                use_cache=False)
                logprob, greedy = flat_scores(out, target[r_idx, c_idx].to(device), r_idx.to(device), len(rows))
            for r, (i, j) in enumerate(rows):
                results[i][j] = (float(logprob[r]), bool(greedy[r]))
    return results


# --- decoding rows that join and leave (serve's continuous batching) --------------------------------------------


@dataclass
class Rows:
    """Rows being decoded: each row's encoder states and caches, computed alone, padded to common widths."""

    cache: Any  # EncoderDecoderCache: decoder self-attention (left-padded) and cross-attention (right-padded)
    mask: Any  # (B, L) decoder self-attention mask over the cached positions
    enc: Any  # (B, S, d) encoder states, right-padded
    enc_mask: Any  # (B, S)

    def __len__(self) -> int:
        return int(self.mask.shape[0])


def prefill(model: Any, prompts: list[list[int]], pad_id: int) -> tuple[Rows, Any]:
    """Encode the prompts and run the decoder start token: the rows and each row's first-token logits (B, V)."""
    import torch
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache
    from transformers.modeling_outputs import BaseModelOutput

    device = next(model.parameters()).device
    ids, attn = pad_prompts(prompts, pad_id, PAD_SIDE)
    ids, attn = ids.to(device), attn.to(device)
    with torch.inference_mode():
        enc = model.get_encoder()(input_ids=ids, attention_mask=attn).last_hidden_state
        start = model.generation_config.decoder_start_token_id
        start = pad_id if start is None else start
        dec = torch.full((len(prompts), 1), start, dtype=torch.long, device=device)
        cache = EncoderDecoderCache(DynamicCache(config=model.config), DynamicCache(config=model.config))
        out = model(encoder_outputs=BaseModelOutput(last_hidden_state=enc), attention_mask=attn,
                    decoder_input_ids=dec, cache=cache, use_cache=True)
    mask = torch.ones((len(prompts), 1), dtype=torch.long, device=device)
    return Rows(kvcache.new_cache(out, cache), mask, enc, attn), out.logits[:, -1]


def step(model: Any, rows: Rows, next_ids: Any) -> tuple[Rows, Any]:
    """Feed each row its next token (B,): the advanced rows (cache updated in place) and the next logits (B, V)."""
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    mask = kvcache.extend(rows.mask)
    with torch.inference_mode():
        out = model(encoder_outputs=BaseModelOutput(last_hidden_state=rows.enc), attention_mask=rows.enc_mask,
                    decoder_input_ids=next_ids[:, None], decoder_attention_mask=mask, cache=rows.cache,
                    use_cache=True)
    return Rows(kvcache.new_cache(out, rows.cache), mask, rows.enc, rows.enc_mask), out.logits[:, -1]


def mergeable(rows: Rows) -> bool:
    """Whether other rows can be appended to these (plain dynamic self-attention layers)."""
    return kvcache.plain(list(rows.cache.self_attention_cache.layers))


def merge_rows(rows: Rows, other: Rows) -> Rows:
    """`rows` then `other` (rows' cache grows in place): self-attention left-padded, encoder side right-padded."""
    import torch

    if not mergeable(rows):
        raise RuntimeError("this model's cache cannot be merged; wait for the running batch to finish")
    mask = kvcache.merge_self(list(rows.cache.self_attention_cache.layers), rows.mask,
                              list(other.cache.self_attention_cache.layers), other.mask)
    span = max(rows.enc.shape[1], other.enc.shape[1])
    kvcache.concat_layers(list(rows.cache.cross_attention_cache.layers),
                          list(other.cache.cross_attention_cache.layers), span, left=False)
    enc = torch.cat([kvcache.pad(rows.enc, span, 1), kvcache.pad(other.enc, span, 1)])
    enc_mask = torch.cat([kvcache.pad(rows.enc_mask, span, 1), kvcache.pad(other.enc_mask, span, 1)])
    return Rows(rows.cache, mask, enc, enc_mask)


def select_rows(rows: Rows, keep: list[int]) -> Rows:
    """Only the rows `keep` (cache changed in place), without the padding columns none of them needs."""
    import torch

    idx = torch.tensor(keep, dtype=torch.long, device=rows.mask.device)
    mask = kvcache.select_self(list(rows.cache.self_attention_cache.layers), rows.mask, idx)
    end = int(rows.enc_mask[idx].any(0).nonzero()[-1]) + 1  # trailing encoder padding no kept row needs
    kvcache.select_layers(list(rows.cache.cross_attention_cache.layers), idx, slice(None, end))
    return Rows(rows.cache, mask, rows.enc[idx, :end], rows.enc_mask[idx, :end])
