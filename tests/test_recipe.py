from pathlib import Path

import pytest

from ayakit.recipe import RecipeError, load_recipe

BASE = """
name: t
data:
  budget: 100
  sources:
    - {name: cldr, type: embedded, weight: 2}
    - {name: files, type: files, weight: 1, path: x.jsonl}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_load_and_override(tmp_path: Path) -> None:
    r = load_recipe(write(tmp_path, BASE), ["train.lr=0.001", "data.sources.cldr.weight=5", "data.sources.1.weight=0"])
    assert r.train.lr == 0.001
    assert [s.weight for s in r.data.sources] == [5, 0]
    assert "max_source_length" in r.dump()


def test_unknown_key_is_named_with_suggestion(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"unknown key 'train.lrr' \(did you mean 'lr'\?\)"):
        load_recipe(write(tmp_path, BASE), ["train.lrr=0.1"])
    with pytest.raises(RecipeError, match="unknown key 'data.sources.0.wieght'"):
        load_recipe(write(tmp_path, BASE.replace("weight: 2", "wieght: 2")))


def test_bad_weights(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="greater than or equal to 0"):
        load_recipe(write(tmp_path, BASE), ["data.sources.cldr.weight=-1"])
    with pytest.raises(RecipeError, match="all weights are zero"):
        load_recipe(write(tmp_path, BASE), ["data.sources.cldr.weight=0", "data.sources.files.weight=0"])
    with pytest.raises(RecipeError, match="no item 'nope'"):
        load_recipe(write(tmp_path, BASE), ["data.sources.nope.weight=1"])


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "none.yaml")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(write(tmp_path, "name: [unclosed"))
