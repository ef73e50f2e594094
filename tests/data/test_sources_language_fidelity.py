"""Held-out language-fidelity families: the same month or weekday in the named language vs in other languages."""

from __future__ import annotations

import numpy as np

from ayakit.data.sources.embedded import family_facts, heldout_items
from ayakit.data.sources.facts import text_script
from ayakit.eval.metrics import get_metric
from ayakit.languages import languages


def _names_by_language(key: str) -> dict[str, str]:
    out = {}
    for lang in languages():
        for rec in family_facts("month_name", lang.code) + family_facts("weekday_name", lang.code):
            if rec["key"] == key:
                out[lang.code] = rec["native"]
    return out


def test_choices_are_one_fact_in_several_languages_split_by_script() -> None:
    items = [it for it in heldout_items("fra", n_prompts=1, seed=0) if it.task.startswith("language_pick")]
    assert {it.task for it in items} == {"language_pick_script", "language_pick_same"}
    assert len({it.id for it in items if it.task == "language_pick_script"}) == 19  # 12 months + 7 weekdays
    for it in items[:8]:
        key = next(r["key"] for r in family_facts("month_name", "fra") + family_facts("weekday_name", "fra")
                             if r["native"] == it.choices[it.gold])
        names = _names_by_language(key)
        assert it.choices[it.gold] == names["fra"] == it.targets[0] and len(set(it.choices)) == 4
        others = [c for i, c in enumerate(it.choices) if i != it.gold]
        assert all(c in names.values() and c != names["fra"] for c in others)
        same = {text_script(c) == "LATIN" for c in others}
        assert same == ({True} if it.task == "language_pick_same" else {False})


def test_coverage_and_the_generation_family_scores_the_script() -> None:
    covered = {"language_pick_script": 0, "script_recall-gen": 0}
    for lang in languages():
        tasks = {it.task for it in heldout_items(lang.code, n_prompts=1, max_items=1)}
        for t in covered:
            covered[t] += t in tasks
    assert min(covered.values()) >= 97
    (gen,) = [it for it in heldout_items("rus", n_prompts=1, max_items=1) if it.task == "script_recall-gen"]
    assert gen.meta["metric"] == "script_share" and text_script(gen.targets[0]) == "CYRILLIC"


def test_script_share_metric() -> None:
    m = get_metric("script_share")
    assert m.item_stats("janvier", ["январь"], "rus") == [0.0]
    assert m.item_stats("январь", ["январь"], "rus") == [1.0]
    assert m.item_stats("ян 3 va", ["январь"], "rus") == [0.5]  # letters only: digits and spaces do not count
    assert m.item_stats("", ["январь"], "rus") == [0.0]
    assert m.item_stats("十二月", ["十一月"], "zho") == [1.0]
    assert m.aggregate(np.array([[1.0], [0.0]])) == 50.0
