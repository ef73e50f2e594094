"""The engine table end to end: `ayakit eval --engine ctranslate2` against hf on tiny models, options, recipe keys."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("ctranslate2", reason="the ctranslate2 engine needs the ctranslate2 package")
sys.path.insert(0, str(Path(__file__).parent))

from ct2_tiny_models import build_llama, build_t5  # noqa: E402

from ayakit.models import BackendError, GenerationParams, check_engine, engine_label, load_backend  # noqa: E402
from ayakit.models.engines import CT2GenerateHFScore  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("engine-models")
    return {"t5": build_t5(root / "t5"), "llama": build_llama(root / "llama")}


def _rows(out: Path) -> dict[str, list[dict]]:
    return {p.stem: [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]
            for p in sorted(out.glob("*.jsonl"))}


@pytest.mark.parametrize("name", ["t5", "llama"])
def test_eval_cli_with_ctranslate2_gives_hf_greedy_outputs(models: dict, tmp_path: Path, name: str) -> None:
    from typer.testing import CliRunner

    from ayakit.cli import app

    runner = CliRunner()
    outs = {}
    for engine in ("hf", "ctranslate2"):
        outs[engine] = tmp_path / engine
        res = runner.invoke(app, ["eval", str(models[name]), "--suite", "aya-mini", "-l", "sw,en", "--prompts", "1",
                                  "--max-items", "3", "--greedy", "--max-new-tokens", "8", "--batch-size", "4",
                                  "--engine", engine, "--out", str(outs[engine])])
        assert res.exit_code == 0, res.output
    hf, ct = _rows(outs["hf"]), _rows(outs["ctranslate2"])
    assert hf.keys() == ct.keys()
    generated = [k for k, rows in hf.items() if rows and isinstance(rows[0]["prediction"], str)
                 and "loglikelihoods" not in rows[0]]
    assert generated, "no generation task ran: the comparison would be vacuous"
    assert any(r["prediction"] for k in generated for r in hf[k])
    for task in hf:  # generation: the same greedy text; choice tasks: the same (HF) scores
        assert [r["prediction"] for r in ct[task]] == [r["prediction"] for r in hf[task]], task
    summaries = {e: json.loads((outs[e] / "summary.json").read_text()) for e in outs}
    assert summaries["hf"]["engine"] == "hf" and summaries["ctranslate2"]["engine"] == "ctranslate2/float32+hf"
    assert summaries["hf"]["fingerprint"] != summaries["ctranslate2"]["fingerprint"], "results cached per engine"
    for engine, out in outs.items():
        manifest = json.loads((out / "manifest.json").read_text())
        assert json.dumps(manifest).count(summaries[engine]["engine"]) >= 1


def test_split_engine_scores_on_hf_lazily_and_generates_on_ct2(models: dict) -> None:
    backend = load_backend(str(models["t5"]), engine="ctranslate2", batch_size=4, threads=1)
    assert isinstance(backend, CT2GenerateHFScore) and backend._scorer is None
    hf = load_backend(str(models["t5"]), batch_size=4, threads=1)
    params = GenerationParams(max_new_tokens=6)
    prompts = ["Die Katze schläft auf dem", "Answer: yes", "我们去北京大学。"]
    assert backend.generate(prompts, params) == hf.generate(prompts, params)
    assert backend._scorer is None, "generation alone never loads the torch model"
    requests = [(p, [" yes", " no"]) for p in prompts]
    assert backend.loglikelihood(requests) == hf.loglikelihood(requests)
    assert engine_label(backend) == "ctranslate2/float32+hf" and engine_label(hf) == "hf"
    q = load_backend(str(models["t5"]), engine="ctranslate2", compute_type="int8", threads=1)
    assert q.describe() != backend.describe(), "int8 and float32 outputs are cached apart"


def test_engine_options_are_checked(models: dict) -> None:
    with pytest.raises(BackendError, match="unknown engine 'ct2'; expected one of ctranslate2, hf"):
        load_backend(str(models["t5"]), engine="ct2")
    with pytest.raises(BackendError, match="ctranslate2 option"):
        load_backend(str(models["t5"]), compute_type="int8")
    with pytest.raises(BackendError, match="unknown compute type 'fp8'"):
        check_engine("ctranslate2", "fp8")
    check_engine("ctranslate2", "int8")


def test_translate_engine_gives_hf_greedy_ids(models: dict) -> None:
    from ayakit.data.translate import HFTranslator

    hf = HFTranslator(str(models["t5"]), mode="prompt", max_new_tokens=12, device="cpu")
    ct = HFTranslator(str(models["t5"]), mode="prompt", max_new_tokens=12, device="cpu", engine="ctranslate2")
    texts = ["The man turned on the faucet.", "Die Katze schläft auf dem Sofa."]
    assert ct.translate(texts, "eng", "fra") == hf.translate(texts, "eng", "fra")
    assert ct.fingerprint != hf.fingerprint, "translations (ids, resume state) are kept apart per engine"


def test_serve_runs_ctranslate2_and_refuses_unknown_engines(models: dict, monkeypatch) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from ayakit.cli import app

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda served, **kw: seen.update(app=served))
    res = CliRunner().invoke(app, ["serve", str(models["t5"]), "--engine", "ctranslate2", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert type(seen["app"].state.engine).__name__ == "CT2Engine"  # tests/serve checks what it serves
    res = CliRunner().invoke(app, ["serve", str(models["t5"]), "--engine", "ct2"])
    assert res.exit_code != 0 and "not an engine" in res.output and "ctranslate2" in res.output


def test_recipe_eval_engine_keys() -> None:
    from ayakit.models import ENGINES
    from ayakit.recipe import EvalConfig, RecipeError, recipe_from_dict

    assert set(EvalConfig.model_fields["engine"].annotation.__args__) == set(ENGINES)
    base = {"name": "x", "data": {"sources": [{"name": "s", "type": "embedded", "families": ["month_name"]}]}}
    r = recipe_from_dict({**base, "eval": {"engine": "ctranslate2", "compute_type": "int8"}}, where="r.yaml")
    assert (r.eval.engine, r.eval.compute_type) == ("ctranslate2", "int8")
    assert recipe_from_dict(base, where="r.yaml").eval.engine == "hf"
    with pytest.raises(RecipeError, match="r.yaml: eval.engine: .*'hf' or 'ctranslate2'.*got 'ct2'"):
        recipe_from_dict({**base, "eval": {"engine": "ct2"}}, where="r.yaml")
    with pytest.raises(RecipeError, match="eval.compute_type: .*needs engine: ctranslate2"):
        recipe_from_dict({**base, "eval": {"compute_type": "int8"}}, where="r.yaml")


def test_runner_eval_stage_fingerprint_names_a_non_default_engine() -> None:
    from ayakit.recipe import recipe_from_dict
    from ayakit.runner import _eval_settings

    base = {"name": "x", "data": {"sources": [{"name": "s", "type": "embedded", "families": ["month_name"]}]}}
    hf = _eval_settings(recipe_from_dict(base, where="r.yaml"))
    assert "engine" not in hf and "compute_type" not in hf  # runs made before engines keep their fingerprints
    ct = _eval_settings(recipe_from_dict({**base, "eval": {"engine": "ctranslate2"}}, where="r.yaml"))
    q = _eval_settings(recipe_from_dict({**base, "eval": {"engine": "ctranslate2", "compute_type": "int8"}},
                                        where="r.yaml"))
    assert ct["engine"] == "ctranslate2" and q["compute_type"] == "int8" and len({str(hf), str(ct), str(q)}) == 3


def test_ct2_converts_a_tokenizer_without_an_unknown_token(tiny_models: tuple[Path, Path]) -> None:
    """The eval tests' byte-level BPE has no unk token (CTranslate2's config needs one): greedy text still equals hf."""
    prompts = ["The man turned on the faucet.", "我们去北京大学。", "x"]
    params = GenerationParams(max_new_tokens=8)
    for model in tiny_models:
        hf = load_backend(str(model), threads=1, batch_size=4)
        assert hf.tokenizer.unk_token is None or model == tiny_models[1]
        ct = load_backend(str(model), engine="ctranslate2", threads=1, batch_size=4)
        assert ct.generate(prompts, params) == hf.generate(prompts, params)
