"""The ablation comparison: one row per variant, one column per task, winners marked; variant validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ayakit.recipe import RecipeError
from ayakit.report.ablation import UNTRAINED_ROW, build_ablation_report, comparison_text
from ayakit.ablate import load_ablation, plan_ablation, variant_recipes


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


def _set_items(eval_dir: Path, task: str, correct: float) -> None:
    rows = [json.loads(x) for x in (eval_dir / f"{task}.jsonl").read_text().splitlines()]
    for i, r in enumerate(rows):
        r["stats"]["accuracy"] = [float(i % 100 < correct * 100)]
    (eval_dir / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_comparison_marks_only_significant_winners(tmp_path: Path, fake_run: Path) -> None:
    import shutil

    ab = load_ablation(_ablation_file(tmp_path))
    runs = {"a-heavy": fake_run, "b-heavy": tmp_path / "b"}
    shutil.copytree(fake_run, runs["b-heavy"])
    a_eval, b_eval = (runs[v] / "eval" / "trained" for v in runs)
    _set_items(a_eval, "xcopa_mini", 0.3)
    _set_items(b_eval, "xcopa_mini", 0.9)  # b clearly wins the held-out task
    _set_items(b_eval, "cldr_month", 0.0)
    _set_items(a_eval, "cldr_month", 0.0)
    rows = [json.loads(x) for x in (b_eval / "cldr_month.jsonl").read_text().splitlines()]
    rows[0]["stats"]["accuracy"] = [1.0]  # one item of 120: a tie, though b is ahead
    (b_eval / "cldr_month.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    index = build_ablation_report(ab, runs, tmp_path / "out")
    comp = json.loads((tmp_path / "out" / "comparison.json").read_text())
    rows = {r["key"]: r for r in comp["rows"]}
    assert comp["rows"][0]["key"] == "xcopa_mini"  # held-out tasks first
    assert rows["xcopa_mini"]["winner"] == "b-heavy"
    assert rows["cldr_month"]["best"] == "b-heavy" and rows["cldr_month"]["winner"] is None
    assert comp["untrained"]["xcopa_mini"] is not None  # context row from the baseline eval
    md = (tmp_path / "out" / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| b-heavy"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1].startswith("**") and "**" not in cells[2]  # xcopa_mini bold; the cldr_month tie is not
    text = comparison_text(tmp_path / "out")
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "best, significant" in text and "best, not significant" in text and UNTRAINED_ROW in text
    assert index.is_file() and (tmp_path / "out" / "ablation_tasks.png").is_file()


def test_plan_shares_one_tokenizer_and_repeats_seeds(tmp_path: Path) -> None:
    ab = load_ablation(_ablation_file(tmp_path))
    plan = plan_ablation(ab, tmp_path / "runs", seeds=3)
    assert plan.seeds == [1234, 1235, 1236] and plan.shared is not None
    for name, runs in plan.runs.items():
        assert [r.seed for r, _ in runs] == plan.seeds
        assert [d.name for _, d in runs] == ["seed-1234", "seed-1235", "seed-1236"]
        assert {r.tokenizer.pretrained for r, _ in runs} == {str((tmp_path / "runs" / "ab" / "_shared" /
                                                                  "tokenizer").resolve())}
    assert [s.weight for s in plan.shared.data.sources] == [1.0, 1.0]  # the base mixture, no variant's weights
    single = plan_ablation(ab, tmp_path / "runs", seeds=1, shared_tokenizer=False)
    assert single.shared is None and all(r.tokenizer.pretrained is None for rs in single.runs.values() for r, _ in rs)
    assert [d.name for _, d in single.runs["a-heavy"]] == ["a-heavy"]


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
