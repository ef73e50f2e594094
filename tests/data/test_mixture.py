"""Mixture maths: allocation, dataset shares, temperature, repetition, remainder sampling, bad weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ayakit.data import mixture as M
from ayakit.errors import DataError
from ayakit.recipe import load_recipe, recipe_from_dict

REPO = Path(__file__).resolve().parents[2]


def _recipe(sources, budget=1000, **data):
    return recipe_from_dict({"name": "t", "data": {"budget": budget, "sources": sources, **data}})


def test_aya101_plan_is_the_papers_allocation():
    recipe = load_recipe(REPO / "recipes" / "aya-101.yaml")
    plan = M.plan(recipe, {s.name: None for s in recipe.data.sources})
    assert plan.budget == 25_000_000
    assert list(plan.sources.values()) == [2_500_000, 375_000, 3_750_000, 875_000, 11_875_000, 5_625_000]
    assert plan.total == 25_000_000


@pytest.mark.parametrize("name, weights", [
    ("human-heavy", [25, 4, 20, 6, 30, 15]),
    ("template-heavy", [20, 10, 30, 10, 20, 10]),
])
def test_ablation_recipes_have_the_papers_weights(name, weights):
    recipe = load_recipe(REPO / "recipes" / "ablations" / f"{name}.yaml")
    plan = M.plan(recipe, {s.name: None for s in recipe.data.sources})
    assert list(plan.sources.values()) == [w * 250_000 for w in weights]


def test_largest_remainder_is_exact_and_proportional():
    out = M.largest_remainder(10, {"a": 1, "b": 1, "c": 1})
    assert sum(out.values()) == 10 and sorted(out.values()) == [3, 3, 4]
    out = M.largest_remainder(1_000_003, {"x": 0.7, "y": 0.2, "z": 0.1})
    assert sum(out.values()) == 1_000_003
    assert abs(out["x"] - 700_002.1) < 1


def test_negative_and_all_zero_weights_are_errors():
    with pytest.raises(DataError, match="negative"):
        M.largest_remainder(10, {"a": -1, "b": 2})
    with pytest.raises(DataError, match="all weights are zero"):
        M.largest_remainder(10, {"a": 0, "b": 0})
    # the recipe schema refuses them too, naming the key
    from ayakit.recipe import RecipeError

    with pytest.raises(RecipeError, match="weight"):
        _recipe([{"name": "a", "type": "files", "weight": -1}])
    with pytest.raises(RecipeError, match="all weights are zero"):
        _recipe([{"name": "a", "type": "files", "weight": 0}])


def test_dataset_shares_weights_then_size():
    # listed datasets take their share of the source, the rest split by size
    shares = M.dataset_shares({"dolly": 100, "big": 3000, "small": 1000}, {"dolly": 0.2})
    assert shares["dolly"] == pytest.approx(0.2)
    assert shares["big"] == pytest.approx(0.6) and shares["small"] == pytest.approx(0.2)
    # no weights: proportional to size; all listed: normalised weights
    assert M.dataset_shares({"a": 1, "b": 3}, {}) == {"a": 0.25, "b": 0.75}
    assert M.dataset_shares({"a": 1, "b": 3}, {"A": 1, "b": 1}) == {"a": 0.5, "b": 0.5}
    with pytest.raises(DataError, match="> 1"):
        M.dataset_shares({"a": 1, "b": 3}, {"a": 1.5})
    with pytest.raises(DataError, match="'dolly'.*datasets: a, b"):
        M.dataset_shares({"a": 1, "b": 3}, {"dolly": 0.2})


def test_temperature_flattens_language_shares():
    counts = {"eng": 10000, "swa": 100}
    assert M.temperature_shares(counts, 1.0)["swa"] == pytest.approx(100 / 10100)
    flat = M.temperature_shares(counts, 0.3)
    assert flat["swa"] == pytest.approx(100 ** 0.3 / (10000 ** 0.3 + 100 ** 0.3))
    assert flat["swa"] > 0.15


def test_plan_repeats_small_sources_and_splits_datasets():
    recipe = _recipe([{"name": "big", "type": "files", "weight": 3}, {"name": "small", "type": "files", "weight": 1}],
                     budget=1000)
    plan = M.plan(recipe, {"big": {"x": 5000, "y": 5000}, "small": {"z": 80}})
    assert plan.sources == {"big": 750, "small": 250}
    assert plan.datasets["big"] == {"x": 375, "y": 375}
    z = next(g for g in plan.groups if g.dataset == "z")
    assert (z.copies, z.remainder) == (3, 10)  # 250 = 3 whole passes over 80 + 10 sampled
    assert plan.repetition()["small"] == pytest.approx(250 / 80)


def test_plan_with_temperature_allocates_per_language():
    recipe = _recipe([{"name": "s", "type": "files"}], budget=1000, temperature=0.5)
    plan = M.plan(recipe, {"s": {"d": 10100}}, {"s": {"d": {"eng": 10000, "swa": 100}}})
    by_lang = {g.language: g.allocated for g in plan.groups}
    assert sum(by_lang.values()) == 1000
    assert by_lang["swa"] == round(1000 * 10 / 110)


def test_empty_source_is_an_error_and_skipped_sources_give_up_their_share():
    recipe = _recipe([{"name": "a", "type": "files"}, {"name": "b", "type": "files"}], budget=100)
    with pytest.raises(DataError, match="'b' is empty"):
        M.plan(recipe, {"a": {"x": 10}, "b": {}})
    plan = M.plan(recipe, {"a": {"x": 10}}, skipped={"b": "hub not reachable"})
    assert plan.sources == {"a": 100, "b": 0} and plan.skipped == {"b": "hub not reachable"}


def test_remainder_is_an_exact_sample_without_replacement():
    keys = M.record_keys(3, [f"id{i}" for i in range(1000)])
    for k in (0, 1, 37, 999, 1000):
        assert int(M.below(keys, M.threshold(keys, k)).sum()) == k
    copies = M.copies_per_record(keys, 2, M.threshold(keys, 250))
    assert copies.sum() == 2 * 1000 + 250 and set(np.unique(copies)) == {2, 3}


def test_keys_are_deterministic_and_seeded():
    ids = [f"r{i}" for i in range(5000)]
    a, b, c = M.record_keys(1, ids), M.record_keys(1, ids), M.record_keys(2, ids)
    assert (a == b).all() and not (a == c).any()
    mix, cap = M.derived_keys(a, M.MIX), M.derived_keys(a, M.CAP_LANGUAGE)
    # derived keys are independent: the 20% smallest by one purpose are ~20% of the smallest by another
    low_mix = M.below(mix, M.threshold(mix, 1000))
    low_cap = M.below(cap, M.threshold(cap, 1000))
    assert abs((low_mix & low_cap).sum() - 200) < 60
    # order keys differ per copy
    assert not (M.derived_keys(a, M.ORDER, 0) == M.derived_keys(a, M.ORDER, 1)).any()


@given(st.integers(0, 10**8), st.dictionaries(st.text("abcdef", min_size=1, max_size=3),
                                               st.floats(0.01, 1000), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_largest_remainder_properties(total, weights):
    out = M.largest_remainder(total, weights)
    assert sum(out.values()) == total
    mass = sum(weights.values())
    for k, w in weights.items():
        assert abs(out[k] - total * w / mass) < 1 + 1e-6 * total
