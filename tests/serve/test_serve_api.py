"""The OpenAI-compatible server on loopback, driven by the `openai` client and plain httpx."""

from __future__ import annotations

import concurrent.futures as cf
import json

import httpx
import pytest

openai = pytest.importorskip("openai", reason="the openai client is a dev dependency (pip install -e .[dev])")

PROMPTS = ["Where is the cat?", "Le chat dort sur le lit.", "Paka anakaa kwenye mkeka.", "Hello there",
           "Write a short poem about the sea.", "Maktaba iko wapi?", "Me gusta el té verde.", "J'aime le thé"]


@pytest.fixture(scope="module")
def client(server: str):
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)


def _chat(client, prompt: str, **kw):
    return client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": prompt}], **kw)


def test_models_and_health(server: str, client) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["tiny"]
    health = httpx.get(server + "/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny"


def test_chat_stream_equals_non_stream_and_engine(client, engine) -> None:
    from ayakit.serve.engine import SamplingParams

    full = _chat(client, PROMPTS[0], temperature=0, max_tokens=12)
    assert full.choices[0].message.content == engine.generate([PROMPTS[0]], SamplingParams(max_tokens=12))[0]
    assert full.usage.completion_tokens <= 12 and full.usage.prompt_tokens > 0
    pieces = [c.choices[0].delta.content or "" for c in _chat(client, PROMPTS[0], temperature=0, max_tokens=12,
                                                               stream=True) if c.choices]
    assert len(pieces) > 2  # streamed token by token, not in one piece
    assert "".join(pieces) == full.choices[0].message.content


def test_stop_string_cuts_and_reports_stop(client) -> None:
    text = _chat(client, PROMPTS[1], temperature=0, max_tokens=16).choices[0].message.content
    assert len(text) > 4, "the fixture model should say something"
    stop = text[3:5]
    cut = _chat(client, PROMPTS[1], temperature=0, max_tokens=16, stop=[stop]).choices[0]
    assert cut.message.content == text[: text.index(stop)]
    assert cut.finish_reason == "stop"
    streamed = "".join(c.choices[0].delta.content or "" for c in _chat(
        client, PROMPTS[1], temperature=0, max_tokens=16, stop=[stop], stream=True) if c.choices)
    assert streamed == cut.message.content  # a stop string is never half-streamed


def test_seeded_sampling_is_reproducible(client) -> None:
    a = client.completions.create(model="tiny", prompt=PROMPTS[3], temperature=1.5, seed=7, max_tokens=10)
    b = client.completions.create(model="tiny", prompt=PROMPTS[3], temperature=1.5, seed=7, max_tokens=10)
    assert a.choices[0].text == b.choices[0].text
    assert a.choices[0].finish_reason in ("stop", "length")


def test_completion_logprobs(client) -> None:
    out = client.completions.create(model="tiny", prompt=PROMPTS[2], temperature=0, max_tokens=6, logprobs=2)
    lp = out.choices[0].logprobs
    assert len(lp.tokens) == out.usage.completion_tokens == len(lp.token_logprobs)
    for tok, value, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert value <= 0 and len(top) == 2
        assert max(top, key=top.get) == tok  # greedy: the chosen token is the most likely


def test_concurrent_requests_are_batched_and_unchanged(server: str, client, engine) -> None:
    from ayakit.serve.engine import SamplingParams

    expected = [engine.generate([p], SamplingParams(max_tokens=10))[0] for p in PROMPTS]
    before = httpx.get(server + "/health").json()["batches"]
    with cf.ThreadPoolExecutor(len(PROMPTS)) as pool:
        got = list(pool.map(lambda p: _chat(client, p, temperature=0, max_tokens=10).choices[0].message.content,
                            PROMPTS))
    health = httpx.get(server + "/health").json()
    assert got == expected  # padding and batching do not change greedy outputs
    assert health["max_batch_seen"] > 1
    assert health["batches"] - before < len(PROMPTS)


@pytest.mark.parametrize("body,status,param", [
    ({"prompt": "x", "n": 2}, 400, "n"),
    ({"prompt": "x", "max_tokens": 1000}, 400, "max_tokens"),
    ({"prompt": "cat " * 1200}, 400, "prompt"),
    ({"prompt": ["a", "b"]}, 400, "prompt"),
    ({"prompt": "x", "temperature": 9}, 400, "temperature"),
    ({"prompt": "x", "frequency_penalty": 1}, 400, "frequency_penalty"),
    ({}, 400, "prompt"),
    ({"prompt": "x", "echo": True, "logprobs": 1}, 400, "echo"),  # scoring a prompt needs a causal model
])
def test_bad_completion_requests_are_4xx_in_openai_shape(server: str, body: dict, status: int, param: str) -> None:
    resp = httpx.post(server + "/v1/completions", json=body)
    assert resp.status_code == status
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["param"] == param and err["type"] == "invalid_request_error" and err["message"]


def test_limits_and_malformed_bodies(server: str) -> None:
    too_big = httpx.post(server + "/v1/completions", content=json.dumps({"prompt": "x" * 30000}),
                         headers={"content-type": "application/json"})
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "request_too_large"

    def chunked():  # no content-length: the limit holds for a streamed body too
        yield b'{"prompt": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}'

    streamed = httpx.post(server + "/v1/completions", content=chunked(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "request_too_large"
    broken = httpx.post(server + "/v1/chat/completions", content=b'{"messages": [',
                        headers={"content-type": "application/json"})
    assert broken.status_code == 400 and "error" in broken.json()
    last_assistant = httpx.post(server + "/v1/chat/completions",
                                json={"messages": [{"role": "assistant", "content": "hi"}]})
    assert last_assistant.status_code == 400 and last_assistant.json()["error"]["param"] == "messages"
    missing = httpx.get(server + "/v2/nothing")
    assert missing.status_code == 404 and "error" in missing.json()
    long_chat = httpx.post(server + "/v1/chat/completions",
                           json={"messages": [{"role": "user", "content": "chat " * 1200}]})
    assert long_chat.json()["error"]["code"] == "context_length_exceeded"


def test_render_chat_single_turn_is_the_bare_prompt(engine) -> None:
    from ayakit.serve.app import render_chat
    from ayakit.serve.schemas import Message

    assert render_chat([Message(role="user", content="Hi there")], engine.tokenizer) == "Hi there"
    multi = render_chat([Message(role="system", content="Be brief."), Message(role="user", content="alpha"),
                         Message(role="assistant", content="beta"), Message(role="user", content="gamma")],
                        engine.tokenizer)
    assert multi.startswith("Be brief.") and multi.endswith("gamma") and multi.index("alpha") < multi.index("beta")


def test_echo_logprobs_match_the_eval_backend(tiny_causal) -> None:
    """D's OpenAIBackend scores through `echo`; it must agree with scoring the model in-process."""
    from fastapi.testclient import TestClient

    from ayakit.models.hf import HFCausalBackend
    from ayakit.models.openai import OpenAIBackend
    from ayakit.serve.app import create_app
    from ayakit.serve.engine import Engine

    app = create_app(Engine(tiny_causal, device="cpu"))
    requests = [("The cat sits on", [" the mat.", " a chair"]), ("Where is", [" the library?"])]
    with TestClient(app) as http:
        remote = OpenAIBackend("http://testserver", client=http, max_retries=0).loglikelihood(requests)
        scored = http.post("/v1/completions", json={"prompt": "x", "echo": True, "logprobs": 1, "max_tokens": 0})
        assert scored.status_code == 200 and scored.json()["choices"][0]["text"] == "x"
    local = HFCausalBackend(tiny_causal, convention="lm-eval", device="cpu").loglikelihood(requests)
    for r_row, l_row in zip(remote, local):
        for r, l in zip(r_row, l_row):
            assert r.n_tokens == l.n_tokens
            assert r.logprob == pytest.approx(l.logprob, abs=1e-3)
            assert r.is_greedy == l.is_greedy


def test_causal_model_limits_and_empty_prompt(tiny_causal) -> None:
    from fastapi.testclient import TestClient

    from ayakit.serve.app import create_app
    from ayakit.serve.engine import Engine

    engine = Engine(tiny_causal, device="cpu")
    assert engine.info.max_total_tokens == 1024
    with TestClient(create_app(engine)) as http:
        ok = http.post("/v1/completions", json={"prompt": "", "max_tokens": 3, "temperature": 0})
        assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] <= 3  # bos alone is a prompt
        over = http.post("/v1/completions", json={"prompt": "the cat " * 300, "max_tokens": 500})
        assert over.status_code == 400 and over.json()["error"]["code"] == "context_length_exceeded"


def test_api_key_guards_v1_only(engine) -> None:
    from fastapi.testclient import TestClient

    from ayakit.serve.app import create_app

    with TestClient(create_app(engine, api_key="s3cret")) as http:
        denied = http.get("/v1/models")
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
        assert http.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert http.get("/health").status_code == 200
