"""`ayakit judge` end to end: two tiny models answer, `ayakit serve` on loopback judges, a rerun costs nothing."""

from __future__ import annotations

import json

import httpx
from typer.testing import CliRunner

from ayakit.cli import app


def _requests(server: str) -> int:
    return httpx.get(server + "/health").json()["requests"]


def test_judge_cli_writes_pairs_and_summary_and_caches(server: str, tiny_seq2seq, tmp_path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"id": "p1", "prompt": "Where is the library?", "language": "eng"},
            {"id": "p2", "prompt": "Write a short poem about the sea.", "language": "en"},
            {"prompt": "Maktaba iko wapi?", "language": "swh"},
            {"id": "p4", "prompt": "Où est la gare ?", "language": "fra"}]  # fra is filtered out below
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "judge"
    args = ["judge", str(tiny_seq2seq), server, "--judge", server, "--prompts", str(prompts),
            "--languages", "eng,swh", "--out", str(out), "--max-new-tokens", "8", "--judge-max-tokens", "12",
            "--bootstrap", "50", "--concurrency", "4"]
    before = _requests(server)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    sent = _requests(server) - before
    assert sent == 3 + 2 * 3  # model B's answers (it is the server too) + two judge calls per pair

    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert [p["id"] for p in pairs][:2] == ["p1", "p2"] and len(pairs) == 3
    assert {p["language"] for p in pairs} == {"eng-Latn", "swh-Latn"}  # language tags
    for p in pairs:
        assert {"id", "language", "prompt", "model_a", "model_b", "answer_a", "answer_b", "verdict_ab",
                "verdict_ba", "outcome"} <= set(p)
        assert p["verdict_ab"] in ("A", "B", "tie", None) and p["outcome"] in ("a", "b", "tie", "invalid")
    summary = json.loads((out / "summary.json").read_text())
    overall = summary["overall"]
    unparseable = sum((p["verdict_ab"] is None) + (p["verdict_ba"] is None) for p in pairs)
    assert overall["unparseable_verdicts"] == unparseable  # counted, never dropped silently
    assert overall["valid"] + overall["invalid"] == overall["pairs"] == 3
    assert set(summary["languages"]) == {"eng-Latn", "swh-Latn"}
    assert (out / "manifest.json").is_file()

    before = _requests(server)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert _requests(server) == before  # everything came from the cache
    assert [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()] == pairs


def test_judge_default_prompts_are_the_embedded_heldout_ones(server: str, tiny_seq2seq, tmp_path) -> None:
    out = tmp_path / "j"
    result = CliRunner().invoke(app, ["judge", str(tiny_seq2seq), str(tiny_seq2seq), "--judge", server,
                                      "--languages", "eng", "--max-items", "2", "--out", str(out),
                                      "--max-new-tokens", "6", "--judge-max-tokens", "8", "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 2 and all(p["language"] == "eng" and p["prompt"] for p in pairs)
    assert all(p["answer_a"] == p["answer_b"] for p in pairs)  # the same model answers the same way


def test_bad_prompt_file_is_one_line_error(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok", "language": "eng"}\n{"prompt": "no language"}\n')
    result = CliRunner().invoke(app, ["judge", "a", "b", "--judge", "http://127.0.0.1:9", "--prompts", str(bad),
                                      "--languages", "eng,fra"])
    assert result.exit_code != 0
    assert "bad.jsonl:2" in str(result.exception)


def test_help_renders() -> None:
    for command in ['judge']:
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "--help" in result.output, result.output
