"""`ayakit chat`: streams answers from a local model dir or from a server URL."""

from __future__ import annotations

from typer.testing import CliRunner

from ayakit.cli import app


def test_stream_url_yields_the_served_answer(server: str, engine) -> None:
    from ayakit.serve.cli import stream_url
    from ayakit.serve.engine import SamplingParams

    pieces = list(stream_url(server, [{"role": "user", "content": "Where is the cat?"}], 10, 0.0))
    assert len(pieces) > 1
    assert "".join(pieces) == engine.generate(["Where is the cat?"], SamplingParams(max_tokens=10))[0]


def test_chat_command_against_url_and_local_dir(server: str, tiny_seq2seq, engine) -> None:
    from ayakit.serve.engine import SamplingParams

    expected = engine.generate(["Where is the cat?"], SamplingParams(max_tokens=8))[0]
    local = ["--engine", getattr(engine, "engine", "hf")]  # the local model on the same engine
    for target, extra in ((server, []), (str(tiny_seq2seq), local)):
        result = CliRunner().invoke(app, ["chat", target, "--max-tokens", "8", "--temperature", "0", *extra],
                                    input="Where is the cat?\n/reset\n/exit\n")
        assert result.exit_code == 0, result.output
        assert expected in result.output


def test_chat_reports_an_unreachable_server() -> None:
    from ayakit.serve.loopback import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["chat", url], input="hello\n/exit\n")
    assert result.exit_code == 0 and "error" in result.output


def test_help_renders() -> None:
    for command in ['serve', 'chat']:
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "--help" in result.output, result.output


def test_serve_command_builds_the_app_from_its_options(tiny_seq2seq, monkeypatch) -> None:
    import uvicorn
    from fastapi.testclient import TestClient

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    result = CliRunner().invoke(app, ["serve", str(tiny_seq2seq), "--port", "8123", "--max-tokens", "8",
                                      "--name", "demo-tiny", "--max-batch", "4", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert seen["port"] == 8123 and seen["host"] == "127.0.0.1"
    with TestClient(seen["app"]) as http:
        card = http.get("/v1/models").json()["data"][0]
        assert card["id"] == "demo-tiny" and card["max_tokens"] == 8
        assert http.post("/v1/completions", json={"prompt": "x", "max_tokens": 9}).status_code == 400


def test_chat_drops_the_oldest_turns_when_the_history_outgrows_the_limit(engine, tiny_seq2seq) -> None:
    from ayakit.serve.app import ServeLimits, create_app
    from ayakit.serve.loopback import serve_in_thread

    turns = "".join(f"Where is the library number {i}? I like green tea and rice.\n" for i in range(6))
    too_long = "The cat sits on the mat. " * 20 + "\n"
    limits = ServeLimits(max_prompt_tokens=60, max_tokens=6)
    with serve_in_thread(create_app(engine, limits)) as url:
        for target, extra in ((url, []), (str(tiny_seq2seq), ["--max-prompt-tokens", "60"])):
            result = CliRunner().invoke(app, ["chat", target, "--max-tokens", "6", "--temperature", "0", *extra],
                                        input=turns + too_long + "Hello\n/exit\n")
            assert result.exit_code == 0, result.output
            assert "oldest exchange" in result.output and "/reset" in result.output
            assert "too long for the model" in result.output  # one message alone over the limit
            assert '{"error"' not in result.output and "answered 400" not in result.output
            assert result.output.count("error:") == 1  # only the message that cannot fit at all


def test_a_local_generation_that_fails_is_reported_and_the_chat_goes_on(tiny_seq2seq, monkeypatch) -> None:
    from ayakit.serve.engine import Engine

    def broken(self, requests):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(Engine, "run", broken)
    result = CliRunner().invoke(app, ["chat", str(tiny_seq2seq), "--max-tokens", "4"], input="Hello\n/exit\n")
    assert result.exit_code == 0, result.output
    assert "generation failed: RuntimeError: out of memory" in " ".join(result.output.split())
