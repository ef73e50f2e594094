"""One request never harms another: poison parameters, bad text, unknown models, internal errors, slow tokenising."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import http.client
import json
import threading
from urllib.parse import urlparse

import httpx
import pytest

GOOD = ["Where is the cat?", "Le chat dort sur le lit.", "Paka anakaa kwenye mkeka.", "Hello there",
        "Write a short poem about the sea.", "Maktaba iko wapi?", "Me gusta el té verde.", "J'aime le thé"]


def _complete(server: str, prompt: str, **kw) -> httpx.Response:
    return httpx.post(server + "/v1/completions", json={"prompt": prompt, "max_tokens": 8, **kw}, timeout=120)


def _poison_stream(server: str, body: dict) -> int:
    with httpx.stream("POST", server + "/v1/completions", json={"prompt": "x", "max_tokens": 8, "stream": True,
                                                                 **body}, timeout=120) as resp:
        text = resp.read().decode()
        assert '"error"' not in text, text
        return resp.status_code


@pytest.mark.parametrize("poison", [{"temperature": 1e-300}, {"top_p": 1e-50},
                                    {"temperature": 1e-300, "top_p": 1e-50, "stream": True}])
def test_a_poison_request_among_eight_good_ones(server: str, engine, poison: dict) -> None:
    from ayakit.serve.engine import SamplingParams

    expected = [engine.generate([p], SamplingParams(max_tokens=8))[0] for p in GOOD]
    with cf.ThreadPoolExecutor(9) as pool:
        good = [pool.submit(_complete, server, p, temperature=0) for p in GOOD]
        if poison.get("stream"):
            bad = pool.submit(_poison_stream, server, {k: v for k, v in poison.items() if k != "stream"})
        else:
            bad = pool.submit(lambda: _complete(server, "x", **poison).status_code)
        answers = [f.result() for f in good]
    assert [r.status_code for r in answers] == [200] * 8
    assert [r.json()["choices"][0]["text"] for r in answers] == expected
    # an underflowing temperature / top_p is honoured (greedy in effect), documented in RowState.choose
    assert bad.result() == 200


@pytest.mark.parametrize("body,param", [
    ({"prompt": "\ud800"}, "prompt"),
    ({"prompt": "fine", "stop": ["\udfff"]}, "stop"),
    ({"prompt": "fine", "model": "\ud83d"}, "model"),
])
def test_lone_surrogates_are_400(server: str, body: dict, param: str) -> None:
    raw = json.dumps(body)  # json.dumps writes a lone surrogate as the escape \ud800, as a client would
    resp = httpx.post(server + "/v1/completions", content=raw, headers={"content-type": "application/json"})
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["param"] == param and ("surrogate" in err["message"] or "unicode" in err["message"])
    chat = httpx.post(server + "/v1/chat/completions", headers={"content-type": "application/json"},
                      content=json.dumps({"messages": [{"role": "user", "content": "a\ud800b"}]}))
    assert chat.status_code == 400 and chat.json()["error"]["param"].startswith("messages")


def test_unknown_model_is_404_in_openai_shape(server: str) -> None:
    resp = _complete(server, "hi", model="gpt-4o")
    assert resp.status_code == 404
    err = resp.json()["error"]
    assert err["param"] == "model" and err["code"] == "model_not_found" and "tiny" in err["message"]
    chat = httpx.post(server + "/v1/chat/completions",
                      json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 404
    assert _complete(server, "hi", model="tiny").status_code == 200
    assert _complete(server, "hi").status_code == 200  # no model named: the one served


def _app_server(engine, limits=None):
    from ayakit.serve.app import create_app
    from ayakit.serve.loopback import serve_in_thread

    return serve_in_thread(create_app(engine, limits))


def test_a_500_carries_no_internals_and_keeps_the_connection(engine, monkeypatch) -> None:
    real = engine.encode_prompt

    def encode(text: str, max_len=None):
        if text == "boom":
            raise RuntimeError("secret-internal-detail /opt/model/weights.bin")
        return real(text, max_len)

    monkeypatch.setattr(engine, "encode_prompt", encode)
    with _app_server(engine) as url:
        parsed = urlparse(url)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        headers = {"content-type": "application/json"}
        conn.request("POST", "/v1/completions", json.dumps({"prompt": "boom", "max_tokens": 2}), headers)
        resp = conn.getresponse()
        body = resp.read().decode()
        assert resp.status == 500
        assert "secret" not in body and "RuntimeError" not in body and "weights" not in body
        assert json.loads(body)["error"]["type"] == "server_error"
        sock = conn.sock
        assert sock is not None  # http.client closes its socket when the server says the connection is done
        conn.request("POST", "/v1/completions", json.dumps({"prompt": "Hello", "max_tokens": 2}), headers)
        again = conn.getresponse()
        assert again.status == 200 and json.loads(again.read())["usage"]["completion_tokens"] <= 2
        assert conn.sock is sock  # the same keep-alive connection served the next request
        conn.close()


def test_tokenising_runs_off_the_event_loop(engine, monkeypatch) -> None:
    real = engine.encode_prompt
    release, entered = threading.Event(), threading.Semaphore(0)

    def slow(text: str, max_len=None):
        if text.startswith("slow"):
            entered.release()
            assert release.wait(60)
        return real(text, max_len)

    monkeypatch.setattr(engine, "encode_prompt", slow)
    with _app_server(engine) as url, cf.ThreadPoolExecutor(3) as pool:
        stuck = [pool.submit(_complete, url, f"slow {i}") for i in range(2)]
        for _ in range(2):
            assert entered.acquire(timeout=60)  # both are being tokenised right now
        try:
            health = httpx.get(url + "/health", timeout=30)  # answered while the tokenising still blocks
            assert health.status_code == 200
            assert not any(f.done() for f in stuck)
        finally:
            release.set()
        assert [f.result().status_code for f in stuck] == [200, 200]


def test_an_oversized_prompt_is_refused_before_tokenising(engine, monkeypatch) -> None:
    from ayakit.serve.app import MAX_CHARS_PER_TOKEN, ServeLimits

    calls = []
    real = engine.encode_prompt
    monkeypatch.setattr(engine, "encode_prompt", lambda text, max_len=None: calls.append(len(text)) or
                        real(text, max_len))
    with _app_server(engine, ServeLimits(max_prompt_tokens=8)) as url:
        resp = _complete(url, "x" * (8 * MAX_CHARS_PER_TOKEN + 1))
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "context_length_exceeded"
        chat = httpx.post(url + "/v1/chat/completions",
                          json={"messages": [{"role": "user", "content": "y" * (8 * MAX_CHARS_PER_TOKEN + 1)}]})
        assert chat.status_code == 400 and chat.json()["error"]["code"] == "context_length_exceeded"
        assert calls == []  # never tokenised
        assert _complete(url, "cat " * 20).json()["error"]["code"] == "context_length_exceeded"  # counted in tokens
        assert calls


@pytest.mark.parametrize("name,mode", [("hf", "continuous"), ("hf", "static"), ("ctranslate2", "asynchronous"),
                                       ("ctranslate2", "static")])
def test_a_short_request_joins_a_running_long_one(request, name: str, mode: str) -> None:
    """Continuous (hf) or asynchronous (ctranslate2, on a free worker): the short request finishes while the long
    one is still decoding; static: it waits for it."""
    from ayakit.serve.engine import Completion, SamplingParams

    engine = request.getfixturevalue(f"{name}_engine")

    long_ids, short_ids = engine.encode_prompt("Where is the cat?"), engine.encode_prompt("Hello")
    order: list[str] = []

    async def scenario() -> None:
        batcher = engine.batcher(max_batch=4, max_wait_ms=0, mode=mode)
        await batcher.start()
        try:
            started = asyncio.Event()

            async def long() -> None:
                async for event in batcher.submit(long_ids, SamplingParams(max_tokens=300), stream=True):
                    started.set()
                    if isinstance(event, Completion):
                        assert event.completion_tokens == 300  # it really ran long (no early end of sequence)
                order.append("long")

            async def short() -> None:
                await started.wait()  # the long request is decoding
                async for _ in batcher.submit(short_ids, SamplingParams(max_tokens=2), stream=False):
                    pass
                order.append("short")

            await asyncio.gather(long(), short())
        finally:
            await batcher.stop()

    asyncio.run(scenario())
    assert order == (["long", "short"] if mode == "static" else ["short", "long"])


def test_a_client_leaving_mid_stream_frees_its_row_and_harms_no_one(server: str, engine) -> None:
    from ayakit.serve.engine import SamplingParams

    expected = [engine.generate([p], SamplingParams(max_tokens=8))[0] for p in GOOD[:4]]
    before = httpx.get(server + "/health").json()

    def leave_early() -> int:
        with httpx.stream("POST", server + "/v1/completions", timeout=120,
                          json={"prompt": GOOD[0], "max_tokens": 24, "stream": True, "temperature": 0}) as resp:
            for _ in resp.iter_lines():
                break  # the first event arrived: go away
            return resp.status_code

    with cf.ThreadPoolExecutor(5) as pool:
        leaver = pool.submit(leave_early)
        good = [pool.submit(_complete, server, p, temperature=0) for p in GOOD[:4]]
        answers = [f.result() for f in good]
    assert leaver.result() == 200
    assert [r.json()["choices"][0]["text"] for r in answers] == expected
    health = httpx.get(server + "/health").json()
    assert health["requests"] - before["requests"] == 5
    for _ in range(200):  # the abandoned row leaves the batch (cancelled) instead of decoding to its end
        if httpx.get(server + "/health").json()["running"] == 0:
            break
        threading.Event().wait(0.05)
    assert httpx.get(server + "/health").json()["running"] == 0
