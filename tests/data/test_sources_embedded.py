"""The embedded source: coverage, provenance, held-out families never in training, determinism, held-out items."""

from __future__ import annotations

import functools

import pytest

from ayakit.data.sources import open_source
from ayakit.data.sources.embedded import (families, family_facts, heldout_families, heldout_items,
                                          training_families)
from ayakit.errors import DataError
from ayakit.languages import get, languages, rollup, tag
from ayakit.recipe import recipe_from_dict
from ayakit.records import KINDS

LICENSES = {"Unicode-3.0", "LGPL-2.1", "BSD-3-Clause"}


def _source(seed: int = 1234, **spec):
    recipe = recipe_from_dict({"name": "t", "seed": seed, "data": {"sources": [{"name": "cldr", "type": "embedded",
                                                                                 **spec}]}})
    return open_source(recipe.data.sources[0], recipe)


@functools.cache
def _all_rows(seed: int = 1234) -> tuple[dict, ...]:
    src = _source(seed)
    return tuple(r for b in src.iter_batches() for r in b.to_pylist())


def test_coverage_and_provenance():
    rows = _all_rows()
    langs = {rollup(r["language"]) for r in rows}
    assert len(langs) >= 97, sorted({lang.code for lang in languages()} - langs)
    registry = {lang.code for lang in languages()}
    for r in rows:
        assert rollup(r["language"]) in registry and get(r["language"]).tier in ("high", "mid", "low")
        assert r["language"] == tag(r["language"]) and r["language"].split("-")[1] == r["script"]
        assert r["script"] and r["source"] == "cldr" and r["license"] in LICENSES and r["kind"] in KINDS
        assert r["inputs"] and r["targets"] and r["task"] in training_families() and r["template"]
    assert {r["kind"] for r in rows if r["task"] == "dialogue"} == {"human"}
    assert {r["license"] for r in rows if r["task"] == "number_words"} == {"LGPL-2.1"}
    # code-mixed English prompts for everyone, and prompts written in the target language where templates exist
    fra_templates = {r["template"] for r in rows if r["language"] == "fra-Latn" and r["task"] == "month_name"}
    assert "month_name.fra" in fra_templates and any(".en." in t for t in fra_templates)
    # traditional-Chinese dialogue keeps its script: two varieties
    assert {r["language"] for r in rows if rollup(r["language"]) == "zho" and r["task"] == "dialogue"} == \
        {"zho-Hans", "zho-Hant"}


def test_heldout_families_never_in_training():
    held = set(heldout_families())
    assert held and not held & set(training_families())
    rows = _all_rows()
    assert not {r["task"] for r in rows} & held
    assert not any(r["template"].split(".")[0] in held for r in rows)
    with pytest.raises(DataError, match="held out"):
        _source(families=["weekday_pick"])
    with pytest.raises(DataError, match="unknown family 'nope'"):
        _source(families=["nope"])


def test_deterministic_for_seed_and_options():
    a = _source(7, families=["number_words", "month_name"], languages=["fra", "swa"],
                options={"per_language": 5, "variants": 2})
    rows_a = [r for b in a.iter_batches() for r in b.to_pylist()]
    rows_b = [r for b in _source(7, families=["number_words", "month_name"], languages=["fra", "swa"],
                                 options={"per_language": 5, "variants": 2}).iter_batches() for r in b.to_pylist()]
    assert rows_a == rows_b
    counts = {}
    for r in rows_a:
        counts[(r["task"], r["language"])] = counts.get((r["task"], r["language"]), 0) + 1
    # num2words has no Swahili: that (family, language) is simply absent
    assert counts == {("number_words", "fra-Latn"): 5, ("month_name", "fra-Latn"): 5, ("month_name", "swh-Latn"): 5}
    other = [r for b in _source(8, families=["number_words"], languages=["fra"]).iter_batches() for r in b.to_pylist()]
    assert {r["inputs"] for r in other} != {r["inputs"] for r in rows_a if r["task"] == "number_words"}
    with pytest.raises(DataError, match="unknown embedded option"):
        _source(options={"per_langauge": 3})


def test_heldout_items_shape_and_determinism():
    covered = 0
    for lang in languages():
        items = heldout_items(lang.code, n_prompts=3, max_items=4, seed=0)
        tasks = {i.task for i in items}
        if {"weekday_pick", "month_pick", "month_recall-gen"} <= tasks:
            covered += 1
    assert covered >= 97
    items = heldout_items("swa", n_prompts=5, seed=3)
    assert items == heldout_items("swa", n_prompts=5, seed=3)
    by_id: dict[str, list] = {}
    for it in items:
        by_id.setdefault(it.id, []).append(it)
        assert it.language == "swa"
        if it.task.endswith("-gen"):
            assert it.choices is None and it.targets and it.targets[0]
        else:
            assert it.choices and 3 <= len(it.choices) <= 4 and len(set(it.choices)) == len(it.choices)
            assert it.choices[it.gold] == it.targets[0]
    for group in by_id.values():
        assert len(group) == 5 and len({g.prompt_id for g in group}) == 5 and len({g.inputs for g in group}) == 5
        assert len({tuple(g.choices or ()) for g in group}) == 1
    # weekday items: the gold is a weekday and every distractor a month name, all in the same language
    days = {f["native"] for f in family_facts("weekday_name", "swa")}
    months = {f["native"] for f in family_facts("month_name", "swa")}
    for it in items:
        if it.task == "weekday_pick":
            assert it.choices[it.gold] in days and set(it.choices) - {it.choices[it.gold]} <= months


def test_heldout_facts_are_taught_in_training_with_other_formats():
    rows = [r for r in _all_rows() if r["language"] == "swh-Latn"]
    trained_targets = {r["targets"] for r in rows}
    trained_inputs = {r["inputs"] for r in rows}
    items = heldout_items("swa")
    golds = {it.targets[0] for it in items}
    assert golds <= trained_targets | {w for r in rows for w in r["inputs"].split("'")}
    assert not {it.inputs for it in items} & trained_inputs
    assert all(f.license for f in families().values())
