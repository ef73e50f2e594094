"""Decoding rows that join and leave (Arch.prefill / step / merge_rows / select_rows): batched rows decode as alone."""

from __future__ import annotations

import pytest
import torch

from ayakit.models import ARCHS, load

PROMPTS = ["hello", "我们去北京大学。今天天气很好。", "สวัสดีครับ", "La mutation ajoute une nouvelle variation"]
STEPS = 6


@pytest.fixture(scope="module", params=[0, 1], ids=["seq2seq", "causal"])
def lm(request, tiny_models):
    """A tiny model in float64 (float32 rounding differs with batch shape; in float64 any real difference shows)."""
    lm = load(tiny_models[request.param], device="cpu")
    lm.model.to(torch.float64)
    return lm


def _ids(lm, text: str) -> list[int]:
    return lm.impl.encode_source(lm.tokenizer, text, 1024)


def _alone(lm, text: str) -> tuple[list[int], list[torch.Tensor]]:
    """Greedy tokens and the logits before each, for one prompt decoded on its own."""
    rows, logits = lm.impl.prefill(lm.model, [_ids(lm, text)], lm.pad_id)
    tokens, seen = [], [logits[0]]
    for _ in range(STEPS):
        tokens.append(int(logits[0].argmax()))
        rows, logits = lm.impl.step(lm.model, rows, torch.tensor([tokens[-1]]))
        seen.append(logits[0])
    return tokens, seen


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert torch.allclose(a, b, atol=1e-9, rtol=0), float((a - b).abs().max())


def test_prefill_gives_the_logits_of_a_plain_forward(lm) -> None:
    prompts = [_ids(lm, PROMPTS[1]), _ids(lm, PROMPTS[0])]  # the short one is padded beside the long one
    rows, logits = lm.impl.prefill(lm.model, prompts, lm.pad_id)
    assert len(rows) == 2 and len(prompts[1]) < len(prompts[0])
    for row, ids in enumerate(prompts):
        with torch.inference_mode():
            if lm.arch == "seq2seq":
                start = lm.model.generation_config.decoder_start_token_id
                ref = lm.model(input_ids=torch.tensor([ids]), decoder_input_ids=torch.tensor([[start]])).logits
            else:
                ref = lm.model(input_ids=torch.tensor([ids])).logits
        _close(logits[row], ref[0, -1])


def test_merged_rows_step_as_each_alone_and_selected_rows_too(lm) -> None:
    alone = [_alone(lm, p) for p in PROMPTS[:3]]
    # row 0 starts alone and takes two steps; rows 1 and 2 are prefilled together (padded to each other) and join
    rows, logits = lm.impl.prefill(lm.model, [_ids(lm, PROMPTS[0])], lm.pad_id)
    for k in range(2):
        _close(logits[0], alone[0][1][k])
        rows, logits = lm.impl.step(lm.model, rows, torch.tensor([alone[0][0][k]]))
    joining, first = lm.impl.prefill(lm.model, [_ids(lm, p) for p in PROMPTS[1:3]], lm.pad_id)
    assert lm.impl.mergeable(rows)
    rows = lm.impl.merge_rows(rows, joining)
    logits = torch.cat([logits, first])
    assert len(rows) == 3
    at = [2, 0, 0]  # each row's step in its own decoding
    for _ in range(3):
        for r in range(3):
            _close(logits[r], alone[r][1][at[r]])
        rows, logits = lm.impl.step(lm.model, rows, torch.tensor([alone[r][0][at[r]] for r in range(3)]))
        at = [a + 1 for a in at]
    # row 1 (the longest prompt) leaves: the others go on as alone, the padding it needed is gone
    before = rows.enc.shape[1] if lm.arch == "seq2seq" else rows.mask.shape[1]
    rows = lm.impl.select_rows(rows, [0, 2])
    logits = logits[[0, 2]]
    assert len(rows) == 2
    assert bool(rows.mask[:, 0].any())  # no leading column that is padding in every kept row
    if lm.arch == "seq2seq":  # encoder states are right-padded: the longest prompt's tail is gone
        assert rows.enc.shape[1] < before and bool(rows.enc_mask[:, -1].any())
    else:  # prompts are left-padded: the longest prompt's head is gone
        assert rows.mask.shape[1] < before
    while True:
        _close(logits[0], alone[0][1][at[0]])
        _close(logits[1], alone[2][1][at[2]])
        if at[0] == STEPS:
            break
        rows, logits = lm.impl.step(lm.model, rows, torch.tensor([alone[0][0][at[0]], alone[2][0][at[2]]]))
        at = [a + 1 for a in at]


def test_rows_of_a_cache_that_cannot_be_merged_are_refused(lm) -> None:
    from transformers.cache_utils import DynamicSlidingWindowLayer

    rows, _ = lm.impl.prefill(lm.model, [_ids(lm, PROMPTS[0])], lm.pad_id)
    other, _ = lm.impl.prefill(lm.model, [_ids(lm, PROMPTS[1])], lm.pad_id)
    layers = rows.cache.self_attention_cache.layers if lm.arch == "seq2seq" else rows.cache.layers
    layers[0].__class__ = DynamicSlidingWindowLayer  # a window layer drops old positions: concatenation would lie
    assert not lm.impl.mergeable(rows)
    with pytest.raises(RuntimeError, match="cannot be merged"):
        lm.impl.merge_rows(rows, other)


def test_only_a_decoder_only_model_scores_its_prompt() -> None:
    assert ARCHS["causal"].ECHO and not ARCHS["seq2seq"].ECHO

