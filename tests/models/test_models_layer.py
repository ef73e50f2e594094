"""The model layer itself: ayakit.json old and new, the architecture table, fingerprints, generation, batching."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from ayakit.models import (ARCHS, BackendError, GenerationParams, arch_impl, load, load_backend, read_meta,
                           save_meta, weights_fingerprint)
from ayakit.models.arch import Arch
from ayakit.models.generation import generate

PROMPTS = ["hello", "我们去北京", "สวัสดีครับ วันนี้", "La mutation ajoute une nouvelle", "x"]
REQUESTS = [
    ("The man turned on the faucet. What happened as a result?", ["The toilet filled with water.", "Water flowed."]),
    ("我们去", ["北京大学", "今天", "茶"]),
    ("สวัสดี", ["ครับ"]),
    ("Die Katze schläft auf dem Sofa, weil", [" sie müde ist.", " der Hund bellt laut und lange.", " es regnet."]),
    ("x", ["", "y"]),
    ("La mutation ajoute une nouvelle variation génétique, donc", [" elle", " la population change beaucoup"]),
]


def _copy(src, tmp_path, name="m"):
    return shutil.copytree(src, tmp_path / name)


def test_load_reads_old_and_new_ayakit_json(tiny_models, tmp_path):
    old = _copy(tiny_models[0], tmp_path, "old")  # written before versioning: only the arch
    lm = load(old, device="cpu")
    assert lm.arch == "seq2seq" and lm.meta["arch"] == "seq2seq" and lm.max_source_length is None
    assert lm.trained_by_ayakit and lm.prompt_limit == 1024  # T5 has no position table: the default limit

    new = _copy(tiny_models[0], tmp_path, "new")
    save_meta(new, {"arch": "seq2seq", "max_source_length": 64, "max_target_length": 16, "preset": None})
    assert json.loads((new / "ayakit.json").read_text())["format"] == 1
    lm = load(new, device="cpu")
    assert (lm.max_source_length, lm.max_target_length, lm.prompt_limit) == (64, 16, 64)
    assert read_meta(new)["preset"] is None

    plain = _copy(tiny_models[1], tmp_path, "plain")  # any HF model: no ayakit.json, arch from its config
    (plain / "ayakit.json").unlink()
    lm = load(plain, device="cpu")
    assert lm.arch == "causal" and lm.meta == {} and not lm.trained_by_ayakit
    assert lm.positions == 512 and lm.prompt_limit == 512


@pytest.mark.parametrize(("text", "match"), [
    ("{not json", r"ayakit.json:1: not valid JSON"),
    ('{"arch": "rnn"}', r"arch is 'rnn'; expected one of \['causal', 'seq2seq'\]"),
    ('{"format": 9, "arch": "causal"}', "newer than this ayakit reads"),
    ('{"arch": "causal", "max_source_length": "long"}', "max_source_length is 'long'"),
])
def test_a_bad_ayakit_json_is_one_clear_error_naming_the_file(tiny_models, tmp_path, text, match):
    model = _copy(tiny_models[1], tmp_path)
    (model / "ayakit.json").write_text(text)
    with pytest.raises(BackendError, match=match) as err:
        load(model, device="cpu")
    assert str(model / "ayakit.json") in str(err.value)


def test_save_meta_refuses_an_unknown_arch(tmp_path):
    with pytest.raises(ValueError, match="expected one of"):
        save_meta(tmp_path, {"arch": "rnn"})
    assert not (tmp_path / "ayakit.json").exists()


def test_the_architecture_table(tiny_models):
    assert set(ARCHS) == {"seq2seq", "causal"}
    members = [m for m in dir(Arch) if not m.startswith("_")] + list(Arch.__annotations__)
    for name, impl in ARCHS.items():
        assert impl.NAME == name
        assert all(hasattr(impl, m) for m in members), name
    with pytest.raises(ValueError, match=r"unknown architecture 'rnn'; expected one of \['causal', 'seq2seq'\]"):
        arch_impl("rnn")
    tok = load(tiny_models[0], device="cpu").tokenizer
    assert arch_impl("seq2seq").encode_source(tok, "hello", 1024)[-1] == tok.eos_token_id
    assert arch_impl("causal").encode_source(tok, "hello", 1024)[0] == tok.bos_token_id
    assert ARCHS["causal"].JOINT and not ARCHS["seq2seq"].JOINT
    with pytest.raises(ValueError, match=r"unknown strategy 'x'; expected one of \('packed', 'cache'\)"):
        load_backend(str(tiny_models[1]), strategy="x")
    assert load_backend(str(tiny_models[0]), strategy="x").options == {}  # a causal-only option


def test_weights_fingerprint_follows_the_weights_only(tiny_models, tmp_path):
    model = _copy(tiny_models[0], tmp_path)
    before = weights_fingerprint(model)
    assert before == weights_fingerprint(tiny_models[0])  # content, not path
    (model / "manifest.json").write_text("{}")  # bookkeeping beside the model does not change it
    assert weights_fingerprint(model) == before
    lm = load(model, device="cpu")
    with torch.no_grad():
        next(lm.model.parameters()).add_(1.0)
    lm.model.save_pretrained(model)
    assert weights_fingerprint(model) != before


@pytest.mark.parametrize("which", [0, 1], ids=["seq2seq", "causal"])
def test_batched_generation_equals_hf_generate_one_prompt_at_a_time(tiny_models, which):
    lm = load(tiny_models[which], device="cpu")
    with torch.no_grad():  # a random model may prefer padding at every step: make it say something
        lm.model.get_output_embeddings().weight[lm.pad_id] = 0.0
    prompts = [lm.impl.encode_source(lm.tokenizer, p, 1024) for p in PROMPTS]
    got = generate(lm.model, lm.arch, prompts, GenerationParams(max_new_tokens=8), pad_id=lm.pad_id,
                   batch_size=3, eos_ids={lm.tokenizer.eos_token_id})
    for ids, new in zip(prompts, got):
        with torch.no_grad():
            out = lm.model.generate(input_ids=torch.tensor([ids]), max_new_tokens=8, do_sample=False,
                                    pad_token_id=lm.pad_id)[0].tolist()
        out = out[len(ids):] if lm.impl.JOINT else out[1:]
        expected = []
        for t in out:
            if t == lm.tokenizer.eos_token_id:
                break
            expected.append(t)
        assert new == expected
    assert sum(map(len, got)) >= len(PROMPTS)  # the comparison is not between empty outputs


@pytest.mark.parametrize("which", [0, 1], ids=["seq2seq", "causal"])
@pytest.mark.parametrize("batch_size", [2, 5, 64])
def test_scores_across_items_equal_scores_item_by_item(tiny_models, which, batch_size):
    backend = load_backend(str(tiny_models[which]), batch_size=batch_size)
    together = backend.loglikelihood(REQUESTS)
    alone = [backend.loglikelihood([r])[0] for r in REQUESTS]
    assert [len(r) for r in together] == [len(c) for _, c in REQUESTS]
    for a, b in zip(together, alone):
        for x, y in zip(a, b):
            assert x.logprob == pytest.approx(y.logprob, rel=1e-6, abs=1e-5)  # float32 sums: order may differ
            assert (x.n_tokens, x.n_bytes, x.is_greedy) == (y.n_tokens, y.n_bytes, y.is_greedy)


def test_lm_eval_empty_seq2seq_context_is_its_prefix_token(tiny_models):
    lm_eval = load_backend(str(tiny_models[0]), convention="lm-eval")
    tok = lm_eval.tokenizer
    assert lm_eval.encode_requests([("", ["yes"])])[0][0] == [tok.bos_token_id]  # lm-eval's prefix: bos if any
    assert load_backend(str(tiny_models[0])).encode_requests([("", ["yes"])])[0][0] == [tok.eos_token_id]
    ll = lm_eval.loglikelihood([("", ["yes"])])[0][0]
    tgt = torch.tensor([tok("yes", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logits = lm_eval.model(input_ids=torch.tensor([[tok.bos_token_id]]), labels=tgt).logits
    assert ll.logprob == pytest.approx(torch.log_softmax(logits.double(), -1).gather(-1, tgt[..., None]).sum().item(),
                                       abs=1e-4)


def test_seq2seq_scores_do_not_depend_on_the_encoder_window(tiny_models, monkeypatch):
    from ayakit.models import seq2seq

    backend = load_backend(str(tiny_models[0]), batch_size=4)
    wide = backend.loglikelihood(REQUESTS)
    monkeypatch.setattr(seq2seq, "WINDOW_TOKENS", 1)  # one item per window
    for a, b in zip(wide, backend.loglikelihood(REQUESTS)):
        assert [x.logprob for x in a] == pytest.approx([y.logprob for y in b], rel=1e-6, abs=1e-5)


def test_the_recipe_names_exactly_the_architecture_table() -> None:
    """recipe.py keeps its own Literal (ayakit.errors imports recipe, so recipe cannot import ayakit.models): the two
    lists must agree."""
    from typing import get_args

    from ayakit.recipe import ModelConfig

    assert get_args(ModelConfig.model_fields["arch"].annotation) == tuple(ARCHS)
