"""Packing is exact: each example's loss and the gradients are the same packed as unpacked (fp32, <= 1e-5)."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from ayakit.models.packed import collate
from ayakit.models.packed_lm import PackedLM
from ayakit.train.packing import epoch_rows, pack_rows

VOCAB = 50
PAD, EOS, BOS = 0, 1, 3


def _examples(n: int, seed: int) -> tuple[list[list[int]], list[list[int]]]:
    rng = random.Random(seed)
    sources = [[rng.randrange(4, VOCAB) for _ in range(rng.randint(1, 9))] + [EOS] for _ in range(n)]
    targets = [[rng.randrange(4, VOCAB) for _ in range(rng.randint(0, 6))] + [EOS] for _ in range(n)]
    return sources, targets


def _model(arch: str):
    torch.manual_seed(0)
    if arch == "seq2seq":
        from transformers import T5Config, T5ForConditionalGeneration

        cfg = T5Config(vocab_size=VOCAB, d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=2,
                       num_decoder_layers=2, dropout_rate=0.0, feed_forward_proj="gated-gelu",
                       pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=PAD,
                       relative_attention_num_buckets=8, relative_attention_max_distance=16)
        return T5ForConditionalGeneration(cfg).eval()
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, pad_token_id=PAD, eos_token_id=EOS,
                      bos_token_id=BOS, max_position_embeddings=256)
    return LlamaForCausalLM(cfg).eval()


def _unpacked_losses(model, arch: str, sources, targets) -> torch.Tensor:
    """Each example alone through the stock HF forward: mean cross-entropy over its target tokens."""
    losses = []
    for src, tgt in zip(sources, targets):
        if arch == "seq2seq":
            out = model(input_ids=torch.tensor([src]), labels=torch.tensor([tgt]))
            losses.append(out.loss)
        else:
            ids = torch.tensor([src + tgt])
            logits = model(input_ids=ids).logits[0]
            start = len(src) - 1
            losses.append(F.cross_entropy(logits[start:start + len(tgt)], torch.tensor(tgt)))
    return torch.stack(losses)


def _packed_losses(model, arch: str, sources, targets, rows, attn: str) -> torch.Tensor:
    """Per-example losses from packed rows: one packed forward, then the per-token CE split by example."""
    model.config._attn_implementation = attn
    for sub in model.modules():
        if hasattr(sub, "config"):
            sub.config._attn_implementation = attn
    wrapper = PackedLM(model, arch)
    batch, _ = collate(rows, sources, targets, arch, PAD, PAD, "sequence")
    hidden = wrapper.hidden_states(batch)
    select = batch["labels"] != -100
    ce = F.cross_entropy(wrapper.logits(hidden[select]).float(), batch["labels"][select], reduction="none")
    seg = (batch["dec_seg"] if arch == "seq2seq" else batch["seg"])[select]
    row_of = torch.arange(len(rows))[:, None].expand_as(batch["labels"])[select]
    out = torch.zeros(len(sources))
    losses = []
    for r, row in enumerate(rows):
        for k, i in enumerate(row, start=1):
            pick = (row_of == r) & (seg == k)
            losses.append((i, ce[pick].mean()))
    order = sorted(losses, key=lambda x: x[0])
    assert [i for i, _ in order] == list(range(len(sources)))
    del out
    return torch.stack([loss for _, loss in order])


@pytest.mark.parametrize("arch", ["seq2seq", "causal"])
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_packed_loss_and_gradients_equal_unpacked(arch: str, attn: str) -> None:
    sources, targets = _examples(12, seed=1)
    if arch == "causal":
        sources = [[BOS] + s[:-1] for s in sources]
    cap = 40
    rows = pack_rows([len(s) + (len(t) if arch == "causal" else 0) for s, t in zip(sources, targets)],
                     [len(t) for t in targets] if arch == "seq2seq" else None, cap, 16 if arch == "seq2seq" else None,
                     order=list(range(len(sources))))
    assert max(len(r) for r in rows) >= 3, "the test must really pack several examples per row"

    model = _model(arch)
    model.config._attn_implementation = "eager"
    ref = _unpacked_losses(model, arch, sources, targets)
    ref.sum().backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    packed = _packed_losses(model, arch, sources, targets, rows, attn)
    assert torch.allclose(packed, ref, atol=1e-5, rtol=0), (packed - ref).abs().max()
    packed.sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads.keys() == ref_grads.keys()
    for name, g in grads.items():
        assert torch.allclose(g, ref_grads[name], atol=1e-5, rtol=1e-4), (name, (g - ref_grads[name]).abs().max())


@pytest.mark.parametrize("arch", ["seq2seq", "causal"])
def test_weighted_loss_sum_is_mean_of_per_example_means(arch: str) -> None:
    """PackedLM's forward with per-sequence weights sums to the sum of per-example mean losses."""
    sources, targets = _examples(10, seed=2)
    if arch == "causal":
        sources = [[BOS] + s[:-1] for s in sources]
    rows = epoch_rows(sources, targets, arch, True, 48, 24, seed=0, epoch=0)
    model = _model(arch)
    ref = _unpacked_losses(model, arch, sources, targets).sum()
    batch, stats = collate(rows, sources, targets, arch, PAD, PAD, "sequence")
    total = PackedLM(model, arch)(batch)
    assert torch.allclose(total, ref, atol=1e-5)
    assert stats.examples == 10 and stats.rows == len(rows) < 10

    tok_batch, _ = collate(rows, sources, targets, arch, PAD, PAD, "token")
    n_tokens = int((tok_batch["labels"] != -100).sum())
    assert n_tokens == sum(len(t) for t in targets)
    assert not torch.allclose(PackedLM(model, arch)(tok_batch) / n_tokens, ref / 10)


def test_pack_rows_respects_both_capacities_and_keeps_every_example() -> None:
    rng = random.Random(3)
    a = [rng.randint(1, 30) for _ in range(500)]
    b = [rng.randint(1, 10) for _ in range(500)]
    rows = pack_rows(a, b, 64, 20, order=list(range(500)))
    assert sorted(i for r in rows for i in r) == list(range(500))
    assert all(sum(a[i] for i in r) <= 64 and sum(b[i] for i in r) <= 20 for r in rows)
    fill = sum(a) / (64 * len(rows))
    assert fill > 0.8, fill


@pytest.mark.parametrize("mode", ["sequence", "token"])
def test_accumulated_and_sharded_gradients_equal_the_global_mean(mode: str) -> None:
    """The loop's recipe (global denominator, backward of local sum x world / denominator) gives the gradient of
    the mean over the whole global batch, however it is split into micro-batches or processes."""
    from ayakit.train.loss import backward_scale, local_weight

    sources, targets = _examples(12, seed=4)
    model = _model("seq2seq")
    wrapper = PackedLM(model, "seq2seq")
    rows = epoch_rows(sources, targets, "seq2seq", True, 24, 12, seed=0, epoch=0)
    assert len(rows) >= 4

    ref = _unpacked_losses(model, "seq2seq", sources, targets)
    if mode == "sequence":
        ref.mean().backward()
    else:
        n = torch.tensor([len(t) for t in targets], dtype=torch.float32)
        ((ref * n).sum() / n.sum()).backward()
    expected = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    world = 2  # two "processes", each with two micro-batches of uneven sizes
    shards = [[rows[:1], rows[1:3]], [rows[3:4], rows[4:]]]
    batches = [[collate(r, sources, targets, "seq2seq", PAD, PAD, mode)[0] for r in shard] for shard in shards]
    total = sum(float(local_weight(b)) for b in batches)  # what accelerator.reduce(sum) returns
    per_process = []
    for shard in batches:
        for b in shard:
            (wrapper(b) * backward_scale(total, world)).backward()
        per_process.append({k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
        model.zero_grad()
    for name, g in expected.items():
        averaged = sum(p[name] for p in per_process) / world  # what DDP's all-reduce does
        assert torch.allclose(averaged, g, atol=1e-6, rtol=1e-4), name
