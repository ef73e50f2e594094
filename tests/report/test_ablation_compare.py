"""The ablation comparison: one row per variant, one column per task, winners marked; variant validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ayakit.recipe import RecipeError
from ayakit.report.ablation import UNTRAINED_ROW, build_ablation_report, comparison_text
from ayakit.runner import load_ablation, variant_recipes


def _ablation_file(tmp_path: Path, second_budget: int | None = None) -> Path:
    (tmp_path / "base.yaml").write_text(
        "name: base\ndata:\n  budget: 100\n  sources:\n    - {name: a, type: embedded, weight: 1}\n"
        "    - {name: b, type: embedded, weight: 1}\n", encoding="utf-8")
    extra = f"\n      data.budget: {second_budget}" if second_budget else ""
    path = tmp_path / "ab.yaml"
    path.write_text(
        "name: ab\nbase: base.yaml\noverrides: [eval.baseline=false]\nvariants:\n"
        "  - name: a-heavy\n    overrides:\n      - data.sources.a.weight=0.8\n      - data.sources.b.weight=0.2\n"
        f"  - name: b-heavy\n    overrides:\n      data.sources.a.weight: 0.2\n      data.sources.b.weight: 0.8{extra}\n",
        encoding="utf-8")
    return path


def test_variants_get_their_overrides(tmp_path: Path) -> None:
    ab = load_ablation(_ablation_file(tmp_path))
    recipes = variant_recipes(ab)
    assert [s.weight for s in recipes["a-heavy"].data.sources] == [0.8, 0.2]
    assert [s.weight for s in recipes["b-heavy"].data.sources] == [0.2, 0.8]
    assert recipes["a-heavy"].name == "ab-a-heavy" and recipes["b-heavy"].eval.baseline is False


def test_variants_must_share_the_budget(tmp_path: Path) -> None:
    ab = load_ablation(_ablation_file(tmp_path, second_budget=500))
    with pytest.raises(RecipeError, match="differ in data.budget"):
        variant_recipes(ab)


def test_bad_ablation_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbase: base.yaml\nvariants: [{name: one}]\n")
    with pytest.raises(RecipeError, match="at least two variants"):
        load_ablation(bad)
    bad.write_text("name: x\nbase: base.yaml\nvariant: []\n")
    with pytest.raises(RecipeError, match="unknown keys"):
        load_ablation(bad)


def test_comparison_marks_winners(tmp_path: Path, fake_run: Path) -> None:
    import shutil

    ab = load_ablation(_ablation_file(tmp_path))
    runs = {"a-heavy": fake_run, "b-heavy": tmp_path / "b"}
    shutil.copytree(fake_run, runs["b-heavy"])
    summary = runs["b-heavy"] / "eval" / "trained" / "summary.json"
    s = json.loads(summary.read_text())
    s["tasks"]["xcopa_mini"]["score"] = 99.0  # b wins the held-out task
    s["tasks"]["cldr_month"]["score"] = 1.0  # a wins the seen one
    summary.write_text(json.dumps(s))
    index = build_ablation_report(ab, runs, tmp_path / "out")
    comp = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert comp["tasks"][0] == "xcopa_mini"  # held-out tasks first
    assert comp["winners"]["xcopa_mini"] == ["b-heavy"] and comp["winners"]["cldr_month"] == ["a-heavy"]
    assert comp["winners"]["heldout_avg"] == ["b-heavy"]
    assert all(comp["winners"][f"tier:{t}"] == [] for t in comp["tiers"])  # identical tier scores: no winner
    assert UNTRAINED_ROW in comp["rows"] and UNTRAINED_ROW not in sum(comp["winners"].values(), [])
    md = (tmp_path / "out" / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| b-heavy"))
    assert "**99.0**" in row and "**1.0**" not in row
    text = comparison_text(tmp_path / "out")
    assert "99.0*" in text.splitlines()[-1]
    assert index.is_file() and (tmp_path / "out" / "ablation_tasks.png").is_file()


def test_shipped_ablation_files_load_with_one_budget() -> None:
    repo = Path(__file__).resolve().parents[2]
    for name, groups in (("demo-weightings", {"human-heavy": 25, "translation-heavy": 10, "template-heavy": 20}),
                         ("aya-101-weightings", {"human-heavy": 25, "translation-heavy": 10, "template-heavy": 20})):
        ab = load_ablation(repo / "recipes" / "ablations" / f"{name}.yaml")
        recipes = variant_recipes(ab)
        assert list(recipes) == list(groups)
        for variant, human in groups.items():
            weights = {s.name: s.weight for s in recipes[variant].data.sources}
            # the paper's rows sum to 100 and the human-annotated group gets its share
            assert sum(weights.values()) == pytest.approx(100, abs=0.05)
            human_source = "dialogue" if name == "demo-weightings" else "aya_dataset"
            assert weights[human_source] == human
        assert len({r.data.budget for r in recipes.values()}) == 1
        assert [r.eval.baseline for r in recipes.values()][1:] == [False, False]  # the baseline is evaluated once
