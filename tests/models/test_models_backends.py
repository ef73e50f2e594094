"""HF and OpenAI-compatible engines: exact scores (vs a plain forward pass), batch-size independence, generation, the HTTP backend."""

from __future__ import annotations

import json

import httpx
import pytest
import torch

from ayakit.models import BackendError, GenerationParams, detect_arch, load_backend
from ayakit.models.backend import model_fingerprint
from ayakit.models.encoding import encode_source, encode_target
from ayakit.models.hf import HFCausalBackend, HFSeq2SeqBackend
from ayakit.models.openai import OpenAIBackend

REQUESTS = [
    ("The man turned on the faucet. What happened as a result?", ["The toilet filled with water.", "Water flowed."]),
    ("我们去", ["北京大学", "今天", "茶"]),
    ("สวัสดี", ["ครับ"]),
    ("Die Katze schläft auf dem Sofa, weil", [" sie müde ist.", " der Hund bellt laut und lange.", " es regnet."]),
    ("x", ["", "y"]),
]


@pytest.fixture(scope="module")
def backends(tiny_models):
    s2s, causal = tiny_models
    return {"seq2seq": (load_backend(str(s2s), batch_size=1), load_backend(str(s2s), batch_size=32)),
            "causal": (load_backend(str(causal), batch_size=1), load_backend(str(causal), batch_size=32))}


def test_arch_from_ayakit_json(tiny_models):
    s2s, causal = tiny_models
    assert detect_arch(s2s) == "seq2seq" and detect_arch(causal) == "causal"
    assert load_backend(str(s2s)).arch == "seq2seq" and load_backend(str(causal)).arch == "causal"
    assert HFSeq2SeqBackend(str(s2s)).arch == "seq2seq" and HFCausalBackend(str(causal)).arch == "causal"
    with pytest.raises(BackendError, match="is a causal model, not seq2seq"):
        HFSeq2SeqBackend(str(causal))


@pytest.mark.parametrize("arch", ["seq2seq", "causal"])
def test_scores_do_not_depend_on_batch_size(backends, arch):
    one, many = backends[arch]
    a, b = one.loglikelihood(REQUESTS), many.loglikelihood(REQUESTS)
    assert [len(r) for r in a] == [len(c) for _, c in REQUESTS]
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            assert abs(x.logprob - y.logprob) <= 1e-5 * max(1.0, abs(x.logprob))
            assert (x.n_tokens, x.n_bytes, x.is_greedy) == (y.n_tokens, y.n_bytes, y.is_greedy)


def test_seq2seq_encoder_reuse_equals_one_full_pass_per_choice(backends):
    backend = backends["seq2seq"][1]
    tok, model = backend.tokenizer, backend.model
    context, conts = REQUESTS[3]
    got = backend.loglikelihood([(context, conts)])[0]
    for cont, ll in zip(conts, got):
        src = torch.tensor([encode_source(tok, context, "seq2seq", 1024)])
        tgt = torch.tensor([encode_target(tok, cont, 1024)])  # eos appended, as the trainer does
        with torch.no_grad():
            logits = model(input_ids=src, labels=tgt).logits
        expected = torch.log_softmax(logits.double(), -1).gather(-1, tgt.unsqueeze(-1)).sum().item()
        assert ll.logprob == pytest.approx(expected, abs=1e-4)
        assert ll.n_tokens == tgt.shape[1] and ll.n_bytes == len(cont.encode("utf-8"))


@pytest.mark.parametrize("strategy", ["packed", "cache"])
def test_causal_context_reuse_equals_a_plain_forward(tiny_models, strategy):
    backend = load_backend(str(tiny_models[1]), batch_size=32, strategy=strategy)
    tok, model = backend.tokenizer, backend.model
    context, conts = REQUESTS[3]
    got = backend.loglikelihood(REQUESTS)[3]
    for cont, ll in zip(conts, got):
        ctx = encode_source(tok, context, "causal", 1024)
        tgt = encode_target(tok, cont, 1024, add_eos=backend.score_eos)
        ids = torch.tensor([ctx + tgt])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits.double(), -1)[0]
        expected = sum(logp[len(ctx) - 1 + k, t].item() for k, t in enumerate(tgt))
        assert ll.logprob == pytest.approx(expected, abs=1e-4)


def test_lm_eval_convention_moves_trailing_space_and_drops_eos(tiny_models):
    s2s, _ = tiny_models
    b = load_backend(str(s2s), convention="lm-eval")
    ll = b.loglikelihood([("Answer: ", ["yes"])])[0][0]
    assert ll.n_bytes == len(" yes") and ll.n_tokens == len(encode_target(b.tokenizer, " yes", 1024, add_eos=False))


@pytest.mark.parametrize("arch", ["seq2seq", "causal"])
def test_generation_is_batched_deterministic_and_seeded(backends, arch):
    one, many = backends[arch]
    prompts = ["hello", "我们去北京", "สวัสดีครับ วันนี้", "La mutation ajoute une nouvelle"]
    greedy = GenerationParams(max_new_tokens=6)
    assert one.generate(prompts, greedy) == many.generate(prompts, greedy)
    sampled = GenerationParams(max_new_tokens=6, temperature=0.9, top_p=0.8, seed=7)
    assert many.generate(prompts, sampled) == many.generate(prompts, sampled)
    first = many.generate(prompts[:1], GenerationParams(max_new_tokens=6))[0]
    assert many.generate(prompts[:1], GenerationParams(max_new_tokens=6, stop=[first[2:3]]))[0] == \
        (first[: first.find(first[2:3])] if len(first) > 2 else first)


def test_fingerprint_changes_with_weights_and_convention(tiny_models, tmp_path):
    s2s, _ = tiny_models
    a = model_fingerprint(load_backend(str(s2s)))
    assert a == model_fingerprint(load_backend(str(s2s)))
    assert a != model_fingerprint(load_backend(str(s2s), convention="lm-eval"))


def test_unloadable_model_is_one_clear_error(tmp_path):
    with pytest.raises(BackendError, match="cannot load model"):
        load_backend(str(tmp_path / "nope"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(BackendError, match="cannot load model"):
        load_backend(str(tmp_path / "broken"))


# --- OpenAI-compatible endpoint ---------------------------------------------------------------------------------


def _echo_server(calls: list, fail_first: int = 0, logprobs: bool = True):
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) <= fail_first:
            return httpx.Response(503, text="busy")
        body = json.loads(request.content)
        if request.url.path.endswith("/chat/completions"):
            return httpx.Response(200, json={"choices": [{"message": {"content": "chat: " + body["messages"][0]
                                                                      ["content"] + " STOP more"}}]})
        if body.get("echo"):
            words = body["prompt"].split(" ")
            offsets, pos = [], 0
            for w in words:
                offsets.append(pos)
                pos += len(w) + 1
            lp = {"tokens": words, "token_logprobs": [None] + [-1.0] * (len(words) - 1), "text_offset": offsets,
                  "top_logprobs": [None] + [{w: -1.0} for w in words[1:]]}
            return httpx.Response(200, json={"choices": [{"text": body["prompt"],
                                                          "logprobs": lp if logprobs else None}]})
        return httpx.Response(200, json={"choices": [{"text": " completion of " + body["prompt"]}]})

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_openai_generation_and_loglikelihood_from_echo():
    calls: list = []
    b = OpenAIBackend("http://server:8000", model="m", client=_echo_server(calls))
    assert b.base_url == "http://server:8000/v1"
    assert b.generate(["hi"], GenerationParams()) == [" completion of hi"]
    ll = b.loglikelihood([("one two", [" three four", " five"])])[0]
    assert [x.logprob for x in ll] == [-2.0, -1.0] and ll[0].n_tokens == 2 and ll[0].is_greedy
    chat = OpenAIBackend("http://server:8000/v1#m", chat=True, client=_echo_server(calls))
    assert chat.model == "m"
    assert chat.generate(["hi"], GenerationParams(stop=[" STOP"])) == ["chat: hi"]


def test_openai_retries_with_backoff_then_succeeds():
    calls: list = []
    sleeps: list = []
    b = OpenAIBackend("http://s", client=_echo_server(calls, fail_first=2), backoff=0.5, sleep=sleeps.append)
    assert b.generate(["x"], GenerationParams()) == [" completion of x"]
    assert sleeps == [0.5, 1.0] and len(calls) == 3


def test_openai_timeout_is_a_clear_error_after_retries():
    def timeout(request):
        raise httpx.ReadTimeout("slow", request=request)

    b = OpenAIBackend("http://s", client=httpx.Client(transport=httpx.MockTransport(timeout)), max_retries=2,
                      sleep=lambda s: None)
    with pytest.raises(BackendError, match=r"failed after 3 attempts \(timed out\)"):
        b.generate(["x"], GenerationParams())


def test_openai_without_prompt_logprobs_says_so():
    b = OpenAIBackend("http://s", client=_echo_server([], logprobs=False))
    with pytest.raises(BackendError, match="no prompt logprobs"):
        b.loglikelihood([("a", [" b"])])


@pytest.mark.parametrize("arch", ["seq2seq", "causal"])
def test_scores_without_the_output_layer_hook_are_the_same(tiny_models, monkeypatch, arch):
    path = tiny_models[0] if arch == "seq2seq" else tiny_models[1]
    hooked = load_backend(str(path)).loglikelihood(REQUESTS[:2])
    plain = load_backend(str(path))
    monkeypatch.setattr(plain.model, "get_output_embeddings", lambda: None)
    for a, b in zip(hooked, plain.loglikelihood(REQUESTS[:2])):
        for x, y in zip(a, b):
            assert x.logprob == pytest.approx(y.logprob, abs=1e-4) and x.is_greedy == y.is_greedy


def test_lengths_come_from_the_trainers_ayakit_json(tiny_models, tmp_path):
    import shutil

    model = shutil.copytree(tiny_models[0], tmp_path / "m")
    (model / "ayakit.json").write_text(json.dumps({"arch": "seq2seq", "max_source_length": 6,
                                                   "max_target_length": 3}))
    b = load_backend(str(model))
    assert len(b._context_ids("The man turned on the faucet and the water flowed")) == 6
    ll = b.loglikelihood([("x", ["The toilet filled with water."])])[0][0]
    assert ll.n_tokens == 3  # truncated as the trainer truncates targets, eos last
