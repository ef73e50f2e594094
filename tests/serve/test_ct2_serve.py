"""`ayakit serve --engine ctranslate2`: the same outputs as the HF engine, batches that fail per request, the CLI."""

from __future__ import annotations

import concurrent.futures as cf
import importlib.util
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

pytest.importorskip("ctranslate2", reason="the ctranslate2 engine needs the ctranslate2 package")

PROMPTS = ["The man turned on the faucet.", "Die Katze schläft auf dem", "我们去北京大学。", "Answer: yes",
           "La mutation ajoute une nouvelle variation génétique. El niño come una manzana", "x",
           "Мальчик читает книгу. Девочка пишет письмо.", "الكتاب الأحمر"]


def _ct2_tiny():
    path = Path(__file__).parents[1] / "models" / "ct2_tiny_models.py"
    spec = importlib.util.spec_from_file_location("ayakit_tests_ct2_tiny_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny mT5-style model and a tiny Llama whose greedy outputs vary (not one repeated token)."""
    tiny = _ct2_tiny()
    root = tmp_path_factory.mktemp("ct2-serve-models")
    return {"seq2seq": tiny.build_t5(root / "t5"), "causal": tiny.build_llama(root / "llama")}


def _engines(path: Path):
    from ayakit.serve.ct2_engine import CT2Engine
    from ayakit.serve.engine import Engine

    return (Engine(path, device="cpu", name="m"),
            CT2Engine(path, device="cpu", compute_type="float32", name="m", workers=2, threads=1, notify=lambda _: None))


def _complete(url: str, prompt: str, **kw) -> httpx.Response:
    return httpx.post(url + "/v1/completions", json={"prompt": prompt, "model": "m", **kw}, timeout=120)


@pytest.mark.parametrize("arch", ["seq2seq", "causal"])
def test_greedy_through_the_server_equals_the_hf_engine(varied: dict[str, Path], arch: str) -> None:
    """Concurrent greedy requests served by CTranslate2 (float32) give HF's tokens, texts and log-probabilities."""
    from ayakit.serve.app import ServeLimits, create_app
    from ayakit.serve.engine import GenRequest, SamplingParams
    from ayakit.serve.loopback import serve_in_thread

    hf, ct2 = _engines(varied[arch])
    lengths = [14, 3, 9, 1, 20, 6, 11, 5]  # rows finish at different steps inside one CTranslate2 batch
    expected = [hf.run([GenRequest(hf.encode_prompt(p), SamplingParams(max_tokens=n, logprobs=2))])[0]
                for p, n in zip(PROMPTS, lengths)]
    assert len({c.text for c in expected}) == len(PROMPTS), "the model's outputs should differ per prompt"
    with serve_in_thread(create_app(ct2, ServeLimits(max_batch=8, max_wait_ms=50))) as url:
        with cf.ThreadPoolExecutor(len(PROMPTS)) as pool:
            plain = list(pool.map(lambda pn: _complete(url, pn[0], max_tokens=pn[1], temperature=0),
                                  zip(PROMPTS, lengths)))
            scored = list(pool.map(lambda pn: _complete(url, pn[0], max_tokens=pn[1], temperature=0, logprobs=2),
                                   zip(PROMPTS, lengths)))
        health = httpx.get(url + "/health").json()
    assert health["batching"] == "asynchronous" and health["max_batch_seen"] > 1  # greedy requests shared a batch
    for resp, scored_resp, ref in zip(plain, scored, expected):
        choice = resp.json()["choices"][0]
        assert choice["text"] == ref.text and choice["finish_reason"] == ref.finish_reason
        assert resp.json()["usage"]["completion_tokens"] == ref.completion_tokens
        lp = scored_resp.json()["choices"][0]["logprobs"]
        assert scored_resp.json()["choices"][0]["text"] == ref.text
        assert lp["tokens"] == [t.text for t in ref.tokens]
        assert lp["token_logprobs"] == pytest.approx([t.logprob for t in ref.tokens], abs=1e-4)
        for got, want in zip(lp["top_logprobs"], ref.tokens):
            assert list(got) == [str(name) for name, _ in want.top]  # ids past the tokenizer (mT5's padding): None
            assert list(got.values()) == pytest.approx([v for _, v in want.top], abs=1e-4)


def test_streamed_text_and_stop_strings_equal_the_hf_engine(varied: dict[str, Path]) -> None:
    from fastapi.testclient import TestClient

    from ayakit.serve.app import create_app

    hf, ct2 = _engines(varied["causal"])
    body = {"messages": [{"role": "user", "content": PROMPTS[0]}], "max_tokens": 16, "temperature": 0}
    with TestClient(create_app(hf)) as h, TestClient(create_app(ct2)) as c:
        want = h.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
        assert len(want) > 6
        stop = want[4:6]
        for b in (body, {**body, "stop": [stop]}):
            ref = h.post("/v1/chat/completions", json=b).json()["choices"][0]
            got = c.post("/v1/chat/completions", json=b).json()["choices"][0]
            assert got["message"]["content"] == ref["message"]["content"]
            assert got["finish_reason"] == ref["finish_reason"]
            streams = [_streamed(client, {**b, "stream": True}) for client in (h, c)]
            # token by token, the same pieces as the hf engine (whose stream is the reference: byte-fallback pieces
            # of this random model can decode differently once later bytes arrive)
            assert streams[1] == streams[0] and len(streams[1]) > 3


def _streamed(client, body: dict) -> list[str]:
    import json

    lines = client.post("/v1/chat/completions", json=body).text.splitlines()
    return [json.loads(ln[6:])["choices"][0]["delta"].get("content") or "" for ln in lines
            if ln.startswith("data: {")]


def test_seeded_requests_are_reproducible_under_load(varied: dict[str, Path]) -> None:
    """A seeded request gives the same text alone and among concurrent unseeded and seeded ones."""
    from ayakit.serve.app import create_app
    from ayakit.serve.loopback import serve_in_thread

    _, ct2 = _engines(varied["causal"])
    with serve_in_thread(create_app(ct2)) as url:
        alone = [_complete(url, PROMPTS[i], max_tokens=12, temperature=1.0, seed=s).json()["choices"][0]["text"]
                 for i, s in ((0, 1), (1, 2))]
        assert alone[0] != _complete(url, PROMPTS[0], max_tokens=12, temperature=1.0, seed=3).json()["choices"][0][
            "text"]  # the seed matters
        with cf.ThreadPoolExecutor(6) as pool:
            noise = [pool.submit(_complete, url, p, max_tokens=12, temperature=1.0) for p in PROMPTS[2:6]]
            again = [pool.submit(_complete, url, PROMPTS[i], max_tokens=12, temperature=1.0, seed=s)
                     for i, s in ((0, 1), (1, 2))]
            assert all(f.result().status_code == 200 for f in noise)
            assert [f.result().json()["choices"][0]["text"] for f in again] == alone


def test_a_failing_batch_retries_its_rows_alone_and_only_the_culprit_fails(varied: dict[str, Path],
                                                                            monkeypatch) -> None:
    from ayakit.serve.app import ServeLimits, create_app
    from ayakit.serve.loopback import serve_in_thread

    hf, ct2 = _engines(varied["seq2seq"])
    poison = ct2.backend.strings(ct2.encode_prompt("Answer: yes"))
    real = ct2._submit

    def submit(model, prompts, opts, callback):
        if poison in prompts:
            raise RuntimeError("secret-internal-detail: this prompt breaks the model")
        return real(model, prompts, opts, callback)

    monkeypatch.setattr(ct2, "_submit", submit)
    good = [p for p in PROMPTS if p != "Answer: yes"][:5]
    from ayakit.serve.engine import SamplingParams

    expected = hf.generate(good, SamplingParams(max_tokens=6))
    with serve_in_thread(create_app(ct2, ServeLimits(max_batch=8, max_wait_ms=200))) as url:
        with cf.ThreadPoolExecutor(6) as pool:
            answers = [pool.submit(_complete, url, p, max_tokens=6, temperature=0) for p in good]
            bad = pool.submit(_complete, url, "Answer: yes", max_tokens=6, temperature=0)
            answers = [f.result() for f in answers]
        health = httpx.get(url + "/health").json()
    assert [r.json()["choices"][0]["text"] for r in answers] == expected
    assert bad.result().status_code == 500
    body = bad.result().text
    assert "secret" not in body and "reference" in body
    assert health["requests"] == 6 and health["running"] == 0


def test_echo_logprobs_on_ctranslate2_equal_the_hf_engine(varied: dict[str, Path]) -> None:
    from fastapi.testclient import TestClient

    from ayakit.serve.app import create_app

    hf, ct2 = _engines(varied["causal"])
    body = {"prompt": PROMPTS[4], "echo": True, "logprobs": 3, "max_tokens": 0}
    with TestClient(create_app(hf)) as h, TestClient(create_app(ct2)) as c:
        want = h.post("/v1/completions", json=body).json()["choices"][0]["logprobs"]
        got = c.post("/v1/completions", json=body).json()["choices"][0]["logprobs"]
    assert got["tokens"] == want["tokens"] and got["text_offset"] == want["text_offset"]
    assert got["token_logprobs"][0] is None
    assert got["token_logprobs"][1:] == pytest.approx(want["token_logprobs"][1:], abs=1e-4)
    assert [list(t) for t in got["top_logprobs"][1:]] == [list(t) for t in want["top_logprobs"][1:]]


def _serve_cli(args: list[str], monkeypatch):
    import uvicorn

    from ayakit.cli import app

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda served, **kw: seen.update(app=served, **kw))
    return CliRunner().invoke(app, ["serve", *args]), seen.get("app")


def test_serve_cli_runs_ctranslate2_and_refuses_mismatched_options(varied: dict[str, Path], monkeypatch) -> None:
    from fastapi.testclient import TestClient

    model = str(varied["seq2seq"])
    result, served = _serve_cli([model, "--engine", "ctranslate2", "--compute-type", "int8", "--workers", "3",
                                 "--threads", "1", "--device", "cpu"], monkeypatch)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # rich wraps lines
    assert "ctranslate2 (int8, cpu)" in said and "3 batch(es) at a time" in said
    with TestClient(served) as http:
        assert http.get("/health").json()["batching"] == "asynchronous"
        out = http.post("/v1/completions", json={"prompt": PROMPTS[0], "max_tokens": 4, "temperature": 0})
        assert out.status_code == 200 and out.json()["usage"]["completion_tokens"] == 4
    for args, option in [(["--engine", "ctranslate2", "--dtype", "bfloat16"], "--dtype"),
                         (["--engine", "ctranslate2", "--batching", "continuous"], "--batching"),
                         (["--engine", "ctranslate2", "--compute-type", "float16"], "--engine"),
                         (["--compute-type", "int8"], "--compute-type"),
                         (["--workers", "2"], "--workers"),
                         (["--engine", "vllm"], "--engine")]:
        result, served = _serve_cli([model, *args, "--device", "cpu"], monkeypatch)
        assert result.exit_code != 0 and served is None, args
        assert option in " ".join(result.output.split()), (args, result.output)
    help_text = CliRunner().invoke(__import__("ayakit.cli", fromlist=["app"]).app, ["serve", "--help"]).output
    assert "asynchronous" in help_text and "--compute-type" in help_text and "int8" in help_text


def test_long_requests_never_take_the_worker_kept_for_short_ones(ctranslate2_engine) -> None:
    """Two workers, a steady stream of long requests: the second long one waits, a short one starts at once."""
    import asyncio

    from ayakit.serve.engine import Completion, SamplingParams

    engine = ctranslate2_engine
    ids = engine.encode_prompt("Where is the cat?")
    events: list[str] = []

    async def scenario() -> None:
        batcher = engine.batcher(max_batch=4, max_wait_ms=0)
        assert (batcher.slots, batcher.reserved) == (2, 1)
        await batcher.start()
        try:
            first_started, second_queued = asyncio.Event(), asyncio.Event()

            async def long(name: str, started: asyncio.Event | None) -> None:
                async for event in batcher.submit(ids, SamplingParams(max_tokens=300), stream=True):
                    if started is not None:
                        started.set()
                    events.append(f"{name} token" if not isinstance(event, Completion) else f"{name} done")

            async def second() -> None:
                await first_started.wait()
                second_queued.set()
                await long("long2", None)

            async def short() -> None:
                await second_queued.wait()
                await asyncio.sleep(0)  # long2 is in the queue
                async for event in batcher.submit(ids, SamplingParams(max_tokens=2), stream=False):
                    assert isinstance(event, Completion) and event.completion_tokens == 2
                events.append("short done")

            await asyncio.gather(long("long1", first_started), second(), short())
        finally:
            await batcher.stop()

    asyncio.run(scenario())
    at = events.index("short done")
    assert "long1 done" in events[at:] and "long2 token" not in events[:at]  # short ran beside long1, before long2
    assert events.count("long2 done") == 1
