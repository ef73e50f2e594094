"""The three commands end to end, offline, on a tiny T5 and a tiny data folder; the summary the report reads."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from ayakit.cli import app

torch.set_num_threads(1)
runner = CliRunner()


def _run(*args: str):
    result = runner.invoke(app, ["safety", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def test_three_commands(tiny_t5, tiny_data, tmp_path) -> None:
    out = tmp_path / "safety"
    _run("toxicity", str(tiny_t5), "--data-dir", str(tiny_data), "--out", str(out), "--samples", "2",
         "--max-new-tokens", "6", "--languages", "eng,zho,swh")
    _run("toxicity", str(tiny_t5), "--data-dir", str(tiny_data), "--out", str(out), "--samples", "1",
         "--max-new-tokens", "4", "--prompts", "identity", "--languages", "eng")
    _run("harm", str(tiny_t5), "--data-dir", str(tiny_data), "--out", str(out), "--max-prompts", "3",
         "--benign-prompts", "2", "--max-new-tokens", "6", "--languages", "eng,fra")
    _run("distill", str(tiny_t5), "--data-dir", str(tiny_data), "--out", str(tmp_path / "distill"),
         "--max-prompts", "3", "--max-new-tokens", "8", "--languages", "eng", "--summary-dir", str(out))
    summary = json.loads((out / "summary.json").read_text())
    model = summary["models"]["t5"]
    flores = model["toxicity"]["flores"]
    assert flores["scorer"]["name"] == "lexicon" and flores["samples_per_prompt"] == 2
    assert flores["languages"]["eng"]["covered"] and flores["languages"]["eng"]["prompts"] == 2
    assert flores["languages"]["swa"]["covered"] is False  # no Swahili word list: not covered, not 0
    assert set(model["toxicity"]["identity"]["groups"]["eng"]) >= {"gender:woman", "religion:islam"}
    harm = model["harm"]
    assert harm["detector"]["name"] == "refusal-phrases"
    assert harm["languages"]["eng"]["n"] == 3 and 0 <= harm["languages"]["eng"]["rate"] <= 1
    assert harm["over_refusal"]["languages"]["fra"]["n"] == 2
    assert (out / "split" / "split.parquet").is_file() and harm["split"]["path"] == str(out / "split" / "split.parquet")
    distilled = json.loads((tmp_path / "distill" / "manifest.json").read_text())
    assert distilled["split"]["sha256"] == harm["split"]["sha256"]  # distill used the recorded split
    assert summary["distill"]["counts"]["eng"]["prompts"] == 3
    assert pq.read_table(tmp_path / "distill" / "safety.parquet").num_rows == summary["distill"]["kept"]
    titles = [t["title"] for t in summary["tables"]]
    assert any("Harmful" in t for t in titles) and any("Toxicity" in t for t in titles)
    assert any("distillation" in t for t in titles)


class _Judge(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/chat/completions"
        content = body["messages"][0]["content"]
        verdict = "Yes" if "Crimes" in content else "No"  # harmful on one category only
        data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": verdict},
                                        "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_harm_with_a_judge_endpoint(tiny_t5, tiny_data, tmp_path) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        _run("harm", str(tiny_t5), "--data-dir", str(tiny_data), "--out", str(tmp_path), "--judge", url,
             "--judge-model", "judge", "--max-prompts", "4", "--benign-prompts", "1", "--max-new-tokens", "4",
             "--languages", "eng")
    finally:
        httpd.shutdown()
        httpd.server_close()
    harm = json.loads((tmp_path / "summary.json").read_text())["models"]["t5"]["harm"]
    eng = harm["languages"]["eng"]
    answers = [json.loads(x) for x in (tmp_path / "harm" / "t5" / "answers.jsonl").read_text().splitlines()]
    crimes = sum(1 for a in answers if a["category"].startswith("Crimes"))
    assert harm["detector"]["name"] == "judge" and eng["n"] == 4 and eng["count"] == crimes


def test_clear_errors(tiny_t5, tmp_path, monkeypatch) -> None:
    from ayakit.errors import DataError

    monkeypatch.delenv("AYAKIT_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="data-dir"):
        _run("harm", str(tiny_t5), "--out", str(tmp_path))
    with pytest.raises(DataError, match="--out"):
        _run("toxicity", str(tiny_t5), "--prompts", "identity")


def test_report_section(tmp_path) -> None:
    from ayakit.io import write_json_atomic
    from ayakit.report.artifacts import load_run
    from ayakit.report.safety import safety_section
    from ayakit.safety.summary import update_summary

    assert safety_section(load_run(tmp_path), tmp_path) is None
    split = {"path": "/r/safety/split/split.parquet", "seed": 7, "test_fraction": 0.2}
    update_summary(tmp_path / "safety", ["models", "trained", "harm"], {
        "detector": {"name": "refusal-phrases"}, "split": split,
        "languages": {"eng": {"covered": True, "n": 10, "count": 8, "rate": 0.8, "ci": [0.5, 1.0],
                              "refusal_rate": 0.2},
                      "yor": {"covered": False, "reason": "no phrases"}},
        "over_refusal": {"languages": {"eng": {"n": 5, "count": 1, "rate": 0.2, "ci": [0.0, 0.6]}}}})
    update_summary(tmp_path / "safety", ["models", "safe", "harm"], {
        "detector": {"name": "refusal-phrases"}, "split": split,
        "languages": {"eng": {"covered": True, "n": 10, "count": 1, "rate": 0.1, "ci": [0.0, 0.3]}}})
    write_json_atomic(tmp_path / "eval" / "trained" / "summary.json",
                      {"scale": "0-100", "tasks": {"month_pick": {"score": 40.0, "unseen_task": True}}})
    write_json_atomic(tmp_path / "safe" / "eval" / "trained" / "summary.json",
                      {"scale": "0-100", "tasks": {"month_pick": {"score": 38.5, "unseen_task": True}}})
    write_json_atomic(tmp_path / "safe" / "data" / "stats.json",
                      {"counts": {"kind": {"templated": 970, "safety": 30}, "source": {"calendar": 970, "safety": 30}}})
    (tmp_path / "recipe.yaml").write_text("name: r\nsafety: {distill: {enabled: true, share: 0.03, source_name: safety}}\n")
    sec = safety_section(load_run(tmp_path), tmp_path)
    harm, cost, share = sec.tables[:3]
    assert harm.rows[0] == ["eng (English)", "80.0% [50.0, 100.0]", "10.0% [0.0, 30.0]", "-70.0",
                            "20.0% [0.0, 60.0]", "–"]
    assert harm.rows[1][1] == "not covered"
    assert ["held-out average", "40.0", "38.5", "-1.5"] in cost.rows
    assert ["realised share (kind safety)", "3.0%"] in share.rows
    text = " ".join(sec.paragraphs)
    assert "refusal-phrase detector" in text and "seed 7" in text and "near 100%" in text
    assert not any(t.title.startswith("Harmful prompts") for t in sec.tables)  # shown once, before / after
    from ayakit.report.safety import safety_headline

    assert safety_headline(load_run(tmp_path)) == [
        "harmful rate on held-out XSafety prompts (mean over 1 languages): 80.0% -> 10.0% with the distilled safety data"]
    # distillation turned off since: the second model's files are stale and not shown
    (tmp_path / "recipe.yaml").write_text("name: r\nsafety: {distill: {enabled: false}}\n")
    sec = safety_section(load_run(tmp_path), tmp_path)
    assert sec.tables[0].columns == ["language", "harmful: trained", "over-refusal: trained"]
    assert not any("cost" in t.title or "share" in t.title for t in sec.tables)


def test_no_command_puts_a_held_out_prompt_into_training(tiny_t5, tiny_data, tmp_path) -> None:
    """Distill and harm with other seeds and fractions: a recorded split is used or the command refuses; a model
    trained on a set distilled from another split is measured on that split; a leaked test prompt is refused."""
    from ayakit.safety.split import SplitError, check_disjoint, split_path
    from ayakit.safety.xsafety import read_split

    run = tmp_path / "runs" / "teacher"
    (run / "model").parent.mkdir(parents=True)
    import shutil

    shutil.copytree(tiny_t5, run / "model")
    (run / "recipe.yaml").write_text("name: teacher\n")
    common = ["--data-dir", str(tiny_data), "--max-new-tokens", "4", "--languages", "eng"]
    _run("distill", str(run / "model"), "--out", str(tmp_path / "d1"), "--seed", "1", *common)
    recorded = split_path(run / "safety")
    first = read_split(recorded)
    test = {p.text for p in first if p.split == "test"}
    # another seed: the recorded split is used (the seed only reseeds sampling); nothing held out is answered
    _run("distill", str(run / "model"), "--out", str(tmp_path / "d2"), "--seed", "99", *common)
    for d in ("d1", "d2"):
        trained = set(pq.read_table(tmp_path / d / "safety.parquet").column("inputs").to_pylist())
        answered = {json.loads(x)["prompt"] for x in (tmp_path / d / "rejected.jsonl").read_text().splitlines()}
        assert not (trained | answered) & test
    assert [(p.id, p.split) for p in read_split(recorded)] == [(p.id, p.split) for p in first]
    # another test fraction: refused, for both commands
    with pytest.raises(SplitError, match="test fraction 0.5"):
        _run("distill", str(run / "model"), "--out", str(tmp_path / "d3"), "--test-fraction", "0.5", *common)
    with pytest.raises(SplitError, match="test fraction 0.5"):
        _run("harm", str(run / "model"), "--test-fraction", "0.5", "--max-prompts", "2", *common)
    # a model trained on d1 in another run with another seed: harm adopts the split d1 was distilled with
    student = tmp_path / "runs" / "student"
    shutil.copytree(tiny_t5, student / "model")
    (student / "recipe.yaml").write_text(
        f"name: student\ndata:\n  sources:\n    - {{name: safety, type: files, kind: safety, "
        f"path: {tmp_path / 'd1' / 'safety.parquet'}}}\n")
    _run("harm", str(student / "model"), "--seed", "5", "--max-prompts", "2", "--benign-prompts", "1", *common)
    adopted = read_split(split_path(student / "safety"))
    assert [(p.id, p.split) for p in adopted] == [(p.id, p.split) for p in first]
    # a model whose training data holds a held-out prompt is refused
    leaked = next(p for p in first if p.split == "test")
    (student / "data").mkdir()
    import pyarrow as pa

    pq.write_table(pa.table({"inputs": ["hello", leaked.text]}), student / "data" / "shards-00000.parquet")
    with pytest.raises(SplitError, match="held-out safety prompt"):
        _run("harm", str(student / "model"), "--max-prompts", "2", *common)
    with pytest.raises(SplitError):
        check_disjoint(first, student / "data")


def test_command_defaults_are_the_recipes(monkeypatch) -> None:
    """The paper's sampling is written once (ayakit.recipe.Sampling); the commands' help and values follow it."""
    from ayakit.recipe import Sampling

    monkeypatch.setenv("COLUMNS", "200")
    for cmd in ("harm", "toxicity", "distill"):
        text = " ".join(runner.invoke(app, ["safety", cmd, "--help"]).output.split())
        assert f"the paper's {Sampling().temperature}" in text and f"the paper's {Sampling().top_p}" in text, cmd
    from ayakit.safety.cli import _sampling

    assert _sampling(None, None, None) == Sampling() and _sampling(0.0, None, 3).seed == 3


def test_a_local_model_as_judge(tiny_t5, tiny_data, tmp_path, stand_in) -> None:
    """safety.harm.classifier=judge with a local model directory: its verdicts (here a random model's, mostly
    neither Yes nor No) are counted as unparsed, and the result names the judge."""
    from ayakit.recipe import HarmConfig, Sampling
    from ayakit.safety.harm import LLMJudge
    from ayakit.safety.measure import harm_classifier, measure_harm
    from ayakit.safety.split import ensure_split, select

    cfg = HarmConfig(classifier="judge", judge=str(tiny_t5), per_language=3, benign_per_language=1,
                     max_new_tokens=4)
    assert isinstance(harm_classifier(cfg), LLMJudge)
    prompts, split, status = ensure_split(tmp_path, tiny_data, 1)
    assert status == "made"
    result = measure_harm(stand_in(), select(prompts, ["eng"]), split, cfg, Sampling(), tmp_path, "m")
    eng = result["languages"]["eng"]
    assert result["detector"] == {"name": "judge", "endpoint": str(tiny_t5)}
    assert eng["unparsed"] + (eng["n"] or 0) == 3
    assert json.loads((tmp_path / "summary.json").read_text())["models"]["m"]["harm"]["split"] == split
