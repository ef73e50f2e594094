"""Human evaluation statistics: Cohen's kappa, bootstrap intervals, win rates and agreement with the judge."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from ayakit.annotate import agreement as A
from ayakit.annotate import store
from ayakit.annotate.load import load
from ayakit.annotate.models import Pair, User


def test_cohen_kappa_textbook_values() -> None:
    # 2x2 table [[20, 5], [10, 15]]: p_o = 0.7, p_e = 0.5, kappa = 0.4
    first = ["y"] * 25 + ["n"] * 25
    second = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert A.cohen_kappa(first, second) == pytest.approx(0.4)
    assert A.cohen_kappa(["a", "b"], ["a", "b"]) == pytest.approx(1.0)
    assert A.cohen_kappa(["a", "a"], ["a", "a"]) is None  # chance agreement is 1: undefined
    assert A.cohen_kappa([], []) is None


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_data() -> None:
    small = [(1, 1)] * 6 + [(0, 1)] * 4
    large = small * 20
    lo_s, hi_s = A.bootstrap_ci(small, 2000, 0)
    lo_l, hi_l = A.bootstrap_ci(large, 2000, 0)
    assert lo_s < 0.6 < hi_s and lo_l < 0.6 < hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 2
    assert A.bootstrap_ci(small, 500, 3) == A.bootstrap_ci(small, 500, 3)  # deterministic for a seed


def test_report_on_ratings_made_through_the_app(factory, people, pairs_file, tmp_path) -> None:
    with factory() as s:
        load(s, pairs_file, "compare")
        u = {x.name: x for x in s.scalars(select(User))}
        pairs = {p.external_id.split("|")[-1]: p for p in s.scalars(select(Pair))}
        # d1 (swa; judge: aya): amina prefers aya, shown as B; baraka prefers aya, shown as A -> agree
        store.add_comparison(s, u["amina"], pairs["d1"].id, "mt0", "b")
        store.add_comparison(s, u["baraka"], pairs["d1"].id, "aya", "a")
        # d3 (swa; judge: tie): amina says both good (= judge), baraka prefers mt0 (!= judge)
        store.add_comparison(s, u["amina"], pairs["d3"].id, "aya", "both_good")
        store.add_comparison(s, u["baraka"], pairs["d3"].id, "aya", "b")
        # d2 (ara; judge: aya): amina says the prompt is incomprehensible
        store.add_comparison(s, u["amina"], pairs["d2"].id, "aya", "incomprehensible")
        rep = A.report(s, n_boot=200)
    assert rep["ratings"] == 5 and rep["incomprehensible"] == 1
    rows = {(r["language"]): r for r in rep["win_rates"]}
    assert set(rows) == {"swa", "all"}  # the only ara rating has no outcome
    swa = rows["swa"]
    assert (swa["model"], swa["opponent"], swa["ratings"], swa["pairs"]) == ("aya", "mt0", 4, 2)
    assert (swa["win_rate"], swa["tie_rate"], swa["loss_rate"]) == (0.5, 0.25, 0.25)
    assert swa["ci95"][0] <= 0.5 <= swa["ci95"][1]
    assert swa["judge_win_rate"] == 0.5  # judge: aya on d1, tie on d3
    ia = rep["inter_annotator"]["swa"]
    assert ia["pairs"] == 2 and ia["raw_agreement"] == 0.5
    hj = rep["human_vs_judge"]
    assert hj["swa"] == {"ratings": 4, "agreement": 0.75} and hj["all"]["ratings"] == 4
    # verdicts from a separate judge file replace the loaded ones
    judge = tmp_path / "judge2.jsonl"
    judge.write_text("".join(json.dumps({"id": i, "model_a": "aya", "model_b": "mt0", "preferred": "Answer (B)"})
                             + "\n" for i in ("d1", "d3")), encoding="utf-8")
    with factory() as s:
        rep2 = A.report(s, judge_path=judge, n_boot=200)
    assert rep2["human_vs_judge"]["swa"]["agreement"] == 0.25  # only baraka's d3 choice (mt0) matches
