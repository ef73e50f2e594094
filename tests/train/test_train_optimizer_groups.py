"""Optimizer parameter groups: a from-scratch T5's std-1 embedding gets an lr that moves it as fast as the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def _model_and_optimizer(recipe, tokenizer_dir: Path):
    from ayakit.train.loop import make_optimizer
    from ayakit.train.model import build_model
    from ayakit.train.tokenizer import load_tokenizer

    model, _ = build_model(recipe, load_tokenizer(tokenizer_dir))
    return model, make_optimizer(recipe, model)


def _group_of(optimizer: torch.optim.Optimizer, param: torch.nn.Parameter) -> list[dict]:
    return [g for g in optimizer.param_groups if any(p is param for p in g["params"])]


@pytest.mark.parametrize("optimizer", ["adamw", "adafactor"])
def test_every_parameter_is_optimised_once(optimizer: str, tokenizer_dir: Path, th) -> None:
    model, opt = _model_and_optimizer(th.micro_recipe(optimizer=optimizer), tokenizer_dir)
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in model.parameters()}


def test_adamw_scales_the_t5_embedding_lr_by_sqrt_d_model(tokenizer_dir: Path, th) -> None:
    recipe = th.micro_recipe(optimizer="adamw", lr=1e-3)
    model, opt = _model_and_optimizer(recipe, tokenizer_dir)
    emb = model.get_input_embeddings().weight
    assert emb is model.get_output_embeddings().weight  # tied: one table, one group
    (group,) = _group_of(opt, emb)
    assert group["lr"] == pytest.approx(1e-3 * model.config.d_model ** 0.5)
    assert {g["lr"] for g in opt.param_groups if g is not group} == {1e-3}
    # one step moves the std-1 table by about as much, relative to its size, as a d_model^-0.5 matrix
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    out = model(input_ids=torch.tensor([[5, 6, 7, 1]]), labels=torch.tensor([[8, 9, 1]]))
    out.loss.backward()
    opt.step()
    rel = {n: float((p.detach() - before[n]).norm() / before[n].norm()) for n, p in model.named_parameters()
           if p.ndim >= 2}
    emb_name = next(n for n, p in model.named_parameters() if p is emb)
    q = next(n for n in rel if n.endswith("SelfAttention.q.weight"))
    assert rel[emb_name] > 0.1 * rel[q]


def test_causal_and_adafactor_keep_one_lr(tokenizer_dir: Path, th) -> None:
    for recipe in (th.micro_recipe("causal", optimizer="adamw"), th.micro_recipe(optimizer="adafactor")):
        _, opt = _model_and_optimizer(recipe, tokenizer_dir)
        assert {g["lr"] for g in opt.param_groups} == {recipe.train.lr}
