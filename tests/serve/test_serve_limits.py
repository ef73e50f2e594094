"""Prompt limits come from the model: T5 has no hard limit (the operator's setting wins), position tables do."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ayakit.cli import app


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory: pytest.TempPathFactory, tiny_seq2seq: Path) -> Path:
    """The tiny T5 as the demo recipe saves it: trained on prompts of at most 64 tokens."""
    import shutil

    out = tmp_path_factory.mktemp("demo-like") / "model"
    shutil.copytree(tiny_seq2seq, out)
    (out / "ayakit.json").write_text(json.dumps({"arch": "seq2seq", "max_source_length": 64}))
    return out


def _serve_app(args: list[str], monkeypatch):
    """The app `ayakit serve ARGS` would run (uvicorn.run captured)."""
    import uvicorn

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    result = CliRunner().invoke(app, ["serve", *args, "--device", "cpu"])
    return result, seen.get("app")


def test_t5_limit_is_not_the_training_length(demo_like: Path, monkeypatch) -> None:
    from ayakit.serve.engine import Engine

    info = Engine(demo_like, device="cpu").info
    assert info.trained_prompt_tokens == 64 and info.hard_prompt_tokens is None
    assert info.max_prompt_tokens == 1024
    result, served = _serve_app([str(demo_like), "--max-prompt-tokens", "2048"], monkeypatch)
    assert result.exit_code == 0, result.output
    assert "trained on prompts of at most 64 tokens" in result.output
    from fastapi.testclient import TestClient

    with TestClient(served) as http:
        card = http.get("/v1/models").json()["data"][0]
        assert card["max_prompt_tokens"] == 2048 and card["trained_prompt_tokens"] == 64  # never clamped to 64
        long = http.post("/v1/completions", json={"prompt": "Where is the library? " * 30, "max_tokens": 2})
        assert long.status_code == 200 and long.json()["usage"]["prompt_tokens"] > 64


def test_a_limit_over_the_position_table_is_refused(tiny_causal: Path, monkeypatch) -> None:
    from ayakit.serve.app import ServeLimits, create_app
    from ayakit.serve.engine import Engine

    engine = Engine(tiny_causal, device="cpu")
    assert engine.info.hard_prompt_tokens == 1024
    with pytest.raises(ValueError, match="1024"):
        create_app(engine, ServeLimits(max_prompt_tokens=5000))
    result, served = _serve_app([str(tiny_causal), "--max-prompt-tokens", "5000"], monkeypatch)
    assert result.exit_code != 0 and served is None
    assert "--max-prompt-tokens" in result.output and "1024" in result.output


def test_judge_against_a_local_serve_of_a_demo_size_model(demo_like: Path, tmp_path: Path, monkeypatch) -> None:
    """Judge prompts are hundreds of tokens; a server of a model trained on 64-token prompts must take them."""
    from ayakit.eval.judge import load_judge_prompt, render_judge
    from ayakit.serve.loopback import serve_in_thread

    result, served = _serve_app([str(demo_like), "--name", "demo-judge", "--max-tokens", "16"], monkeypatch)
    assert result.exit_code == 0, result.output
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"id": "p1", "prompt": "Write a short poem about the sea.", "language": "eng"},
            {"id": "p2", "prompt": "Where is the library?", "language": "eng"}]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with serve_in_thread(served) as url:
        system, user = render_judge(load_judge_prompt(), "eng", rows[0]["prompt"], "a" * 300, "b" * 300)
        from ayakit.serve.engine import Engine

        n_tokens = len(Engine(demo_like, device="cpu").encode_prompt(system + "\n\n" + user, 1 << 30))
        assert n_tokens > 64  # the judge's prompt is far over the training length
        out = tmp_path / "judge"
        judged = CliRunner().invoke(app, ["judge", str(demo_like), url, "--judge", url, "--prompts", str(prompts),
                                          "--languages", "eng", "--out", str(out), "--max-new-tokens", "8",
                                          "--judge-max-tokens", "8", "--bootstrap", "20"])
        assert judged.exit_code == 0, judged.output
        requests = httpx.get(url + "/health").json()["requests"]
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 2 and all(p["judge_ab"] is not None for p in pairs)
    assert requests == 2 + 2 * 2  # model B's answers + two judge calls per pair, none refused
