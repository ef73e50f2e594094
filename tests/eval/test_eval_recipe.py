"""The recipe's eval section is validated when the recipe loads: suite, task names and language tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from ayakit.recipe import RecipeError, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("override, message", [
    ("eval.suite=aya", "eval.suite: unknown suite 'aya' (did you mean 'aya-mini'?)"),
    ("eval.tasks=[xcopaa]", "eval.tasks: unknown task 'xcopaa' (did you mean 'xcopa'?)"),
    ("eval.tasks=[missing/task.yaml]", "eval.tasks: task file missing/task.yaml does not exist"),
    ("eval.languages=[xx-nope]", "eval.languages: unknown language code 'xx-nope'"),
])
def test_bad_eval_names_fail_at_load(override, message):
    with pytest.raises(RecipeError) as exc:
        load_recipe(RECIPES / "demo.yaml", [override])
    assert message in str(exc.value)


def test_every_shipped_recipe_names_a_real_suite():
    for path in sorted(RECIPES.glob("*.yaml")):
        recipe = load_recipe(path)  # raises on an unknown suite (aya-101.yaml used to name `aya`)
        assert recipe.eval.suite in (None, "aya-mini", "aya-public", "aya-paper"), path


def test_open_language_world_in_the_recipe():
    r = load_recipe(RECIPES / "demo.yaml", ["eval.languages=[swa, kin, yue, zho-Hant, srp-Latn]"])
    assert r.eval.languages == ["swa", "kin", "yue", "zho-Hant", "srp-Latn"]
