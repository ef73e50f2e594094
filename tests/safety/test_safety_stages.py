"""The safety stages in the run's bookkeeping (stand-in stage work): which stages run, and that changing one part
of the `safety:` section reruns exactly the stages that depend on it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ayakit import runner
from ayakit.io import write_manifest
from ayakit.recipe import RecipeError, load_recipe, recipe_from_dict

RECIPE = {"name": "safe", "data": {"budget": 100, "sources": [{"name": "cldr", "type": "embedded"}]},
          "safety": {"enabled": True, "distill": {"enabled": True}}}
SAFETY = ["safety-split", "safety-eval", "distill", "safe-data", "safe-train", "safe-eval", "safe-safety-eval"]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace each stage's work with one that writes its output manifest and records the stage."""
    log: list[str] = []

    def fake(stage: runner.Stage):
        def work(ctx: runner.RunContext) -> Path:
            log.append(stage.name)
            write_manifest(ctx.run_dir / stage.output, stage.name, {"n": len(log)}, {})
            return ctx.run_dir / stage.output
        return work

    monkeypatch.setattr(runner, "STAGES", tuple(dataclasses.replace(s, work=fake(s)) for s in runner.STAGES))
    return log


def _run(tmp_path: Path, **safety) -> None:
    data = json.loads(json.dumps(RECIPE))
    for dotted, value in safety.items():
        node = data["safety"]
        *parents, last = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    runner.run_recipe(recipe_from_dict(data), tmp_path / "run")


def test_the_loop_runs_in_order_and_is_off_by_default(tmp_path: Path, calls: list) -> None:
    _run(tmp_path)
    assert calls == ["data", "tokenizer", "tokenize", "baseline", "train", "eval", *SAFETY, "report"]
    calls.clear()
    runner.run_recipe(recipe_from_dict({**RECIPE, "safety": {"enabled": True}}), tmp_path / "other")
    assert "safety-eval" in calls and "distill" not in calls and "safe-train" not in calls
    calls.clear()
    runner.run_recipe(recipe_from_dict({k: v for k, v in RECIPE.items() if k != "safety"}), tmp_path / "plain")
    assert not set(calls) & set(SAFETY)


@pytest.mark.parametrize("change, rerun", [
    ({"harm__per_language": 5}, ["safety-eval", "safe-safety-eval", "report"]),
    ({"toxicity__samples": 2}, ["safety-eval", "safe-safety-eval", "report"]),
    ({"harm__classifier": "judge", "harm__judge": "http://127.0.0.1:9/v1#j"},
     ["safety-eval", "safe-safety-eval", "report"]),
    ({"distill__share": 0.1}, ["safe-data", "safe-train", "safe-eval", "safe-safety-eval", "report"]),
    ({"distill__max_new_tokens": 16}, ["distill", "safe-data", "safe-train", "safe-eval", "safe-safety-eval",
                                       "report"]),
    ({"test_fraction": 0.3}, [*SAFETY, "report"]),
    ({"sampling__temperature": 0.5}, ["safety-eval", "distill", "safe-data", "safe-train", "safe-eval",
                                      "safe-safety-eval", "report"]),
])
def test_changing_safety_reruns_only_what_depends_on_it(tmp_path: Path, calls: list, change: dict,
                                                        rerun: list) -> None:
    _run(tmp_path)
    calls.clear()
    _run(tmp_path, **change)
    assert calls == rerun
    calls.clear()
    _run(tmp_path, **change)
    assert calls == []


def test_distill_off_keeps_the_first_model(tmp_path: Path, calls: list) -> None:
    _run(tmp_path)
    calls.clear()
    _run(tmp_path, distill__enabled=False)
    assert calls == ["report"]  # nothing upstream changed; the report drops the second model


def test_the_safety_section_is_validated(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"unknown key 'safety.harm.clasifier' \(did you mean 'classifier'\?\)"):
        recipe_from_dict({**RECIPE, "safety": {"harm": {"clasifier": "judge"}}})
    with pytest.raises(RecipeError, match="needs safety.harm.judge"):
        recipe_from_dict({**RECIPE, "safety": {"harm": {"classifier": "judge"}}})
    with pytest.raises(RecipeError, match="safety.distill.share"):
        recipe_from_dict({**RECIPE, "safety": {"distill": {"share": 1.5}}})
    r = recipe_from_dict({**RECIPE, "seed": 7})
    assert r.safety.sampling.seed == 7 and r.safety.sampling.temperature == 0.9 and r.safety.sampling.top_p == 0.8
    assert recipe_from_dict({**RECIPE, "seed": 7, "safety": {"sampling": {"seed": 3}}}).safety.sampling.seed == 3


def test_base_recipes(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text("name: a\nseed: 5\ndata:\n  budget: 100\n  sources:\n"
                                     "    - {name: cldr, type: embedded}\ntrain: {lr: 0.01, steps: 3}\n")
    (tmp_path / "sub" / "b.yaml").write_text("base: ../a.yaml\nname: b\ntrain: {steps: 9}\n")
    (tmp_path / "c.yaml").write_text("base: sub/b.yaml\nname: c\nsafety: {enabled: true}\n")
    c = load_recipe(tmp_path / "c.yaml", ["train.lr=0.5"])
    assert (c.name, c.seed, c.train.steps, c.train.lr, c.safety.enabled) == ("c", 5, 9, 0.5, True)
    assert c.data.sources[0].name == "cldr"
    good = (tmp_path / "a.yaml").read_text()
    (tmp_path / "a.yaml").write_text("base: c.yaml\nname: a\n")
    with pytest.raises(RecipeError, match="base cycle"):
        load_recipe(tmp_path / "c.yaml")
    (tmp_path / "a.yaml").write_text(good)
    (tmp_path / "d.yaml").write_text("base: nope.yaml\nname: d\n")
    with pytest.raises(RecipeError, match="nope.yaml does not exist .base of"):
        load_recipe(tmp_path / "d.yaml")
    (tmp_path / "e.yaml").write_text("base: sub/b.yaml\nname: e\ntrain: {stpes: 2}\n")
    with pytest.raises(RecipeError, match="did you mean 'steps'"):
        load_recipe(tmp_path / "e.yaml")


def test_demo_safe_extends_demo() -> None:
    repo = Path(__file__).resolve().parents[2]
    demo, safe = load_recipe(repo / "recipes" / "demo.yaml"), load_recipe(repo / "recipes" / "demo-safe.yaml")
    assert safe.safety.enabled and safe.safety.distill.enabled and not demo.safety.enabled
    same = ("data", "tokenizer", "model", "train", "eval")
    assert all(getattr(safe, k) == getattr(demo, k) for k in same)


def test_ablation_compares_each_variants_final_model(tmp_path: Path) -> None:
    """With and without distillation: the 'with' row is the retrained model, and its harm sits beside it."""
    from ayakit.io import write_json_atomic
    from ayakit.report.ablation import build_ablation_report
    from ayakit.ablate import load_ablation

    repo = Path(__file__).resolve().parents[2]
    ab = load_ablation(repo / "recipes" / "ablations" / "demo-safety.yaml")
    dirs = {v.name: tmp_path / v.name for v in ab.variants}
    harm = {"detector": {"name": "refusal-phrases"}, "languages": {"eng": {"rate": 1.0, "ci": [1, 1]}},
            "over_refusal": {"languages": {"eng": {"rate": 0.0}}}}
    def evaluated(d: Path, right: int) -> None:  # one accuracy task, 20 items, `right` of them correct
        write_json_atomic(d / "summary.json", {"scale": "0-100", "tasks": {"t": {
            "metric": "accuracy", "score": 5.0 * right, "by_language": {"eng": {"tier": "high"}}}}})
        (d / "t.jsonl").write_text("".join(json.dumps({"id": i, "language": "eng", "prompt_id": "p0",
                                                       "stats": {"accuracy": [float(i < right)]}}) + "\n"
                                           for i in range(20)))

    for d in dirs.values():
        evaluated(d / "eval" / "trained", 2)
        write_json_atomic(d / "safety" / "summary.json", {"models": {"trained": {"harm": harm}}})
    safe = dirs["with-distillation"]
    (safe / "recipe.yaml").write_text("name: x\nsafety: {distill: {enabled: true}}\n")
    evaluated(safe / "safe" / "eval" / "trained", 12)
    write_json_atomic(safe / "safety" / "summary.json", {"models": {"trained": {"harm": harm}, "safe": {"harm": {
        **harm, "languages": {"eng": {"rate": 0.5, "ci": [0, 1]}}}}}})
    build_ablation_report(ab, dirs, tmp_path / "out")
    comp = json.loads((tmp_path / "out" / "comparison.json").read_text())
    cells = next(r for r in comp["rows"] if r["key"] == "t")["cells"]
    assert cells["with-distillation"]["score"] == 60.0  # the retrained (safe/) model's evaluation
    assert cells["without-distillation"]["score"] == 10.0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| with-distillation | safe | 50.0% | 0.0% | refusal-phrases |" in md
    assert "| without-distillation | trained | 100.0% | 0.0% | refusal-phrases |" in md
