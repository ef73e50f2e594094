"""`ayakit eval --convention lm-eval` reproduces lm-evaluation-harness's own XCOPA log-likelihoods: its prompt (the
`lm-eval` prompt is chosen by the convention), its split (test), its target delimiter, on both tiny models.

The fixture was recorded once with lm-eval 0.4.13 (tests/eval/record_lm_eval_fixture.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "lm_eval_xcopa.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def real_style_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny models, with tokenizers that add eos (T5) / bos (Llama) themselves, as the fixture's were."""
    from eval_tiny_models import build_models

    return build_models(tmp_path_factory.mktemp("real-style"), special_tokens=True)


@pytest.mark.parametrize("arch", ["seq2seq", "causal"])
def test_cli_lm_eval_convention_reproduces_lm_eval(arch, real_style_models, shared_data, tmp_path):
    from record_lm_eval_fixture import subset
    from typer.testing import CliRunner

    from ayakit.cli import app

    subset(shared_data, tmp_path / "data", FIXTURE["items_per_language"])
    # ayakit's own default split must not be what is scored: make the val files differ from the test files
    for lang in FIXTURE["languages"]:
        val = tmp_path / "data" / "xcopa" / "data" / lang / f"val.{lang}.jsonl"
        val.write_text(val.read_text(encoding="utf-8").replace('"premise": "', '"premise": "X'), encoding="utf-8")
    model = real_style_models[0 if arch == "seq2seq" else 1]
    res = CliRunner().invoke(app, ["eval", str(model), "--tasks", "xcopa", "--convention", "lm-eval", "--prompts",
                                   "1", "--batch-size", "8", "--data-dir", str(tmp_path / "data"),
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (tmp_path / "out" / "xcopa.jsonl").read_text(encoding="utf-8").splitlines()]
    want = FIXTURE["models"][arch]
    assert {r["prompt_id"] for r in rows} == {"lm-eval"}
    ours = {r["id"].split("/", 1)[1]: r["loglikelihoods"] for r in rows}
    assert set(ours) == set(want)  # the same items: the test split, every language
    diff = max(abs(a - b) for k in want for a, b in zip(ours[k], want[k]["loglikelihoods"]))
    assert diff <= 1e-4
    for k, v in want.items():
        theirs = v["loglikelihoods"]
        assert ours[k].index(max(ours[k])) == theirs.index(max(theirs)), k
