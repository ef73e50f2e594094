"""The end of `ayakit data build` says what was skipped, dropped or heavily repeated; plan fails as build does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ayakit.cli import app
from ayakit.errors import DataError
from ayakit.io import read_json
from ayakit.recipe import RecipeError, load_recipe

WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), env=WIDE, catch_exceptions=False)


def _recipe(tmp_path: Path, **data) -> Path:
    big = tmp_path / "big.jsonl"
    with open(big, "w", encoding="utf-8") as fh:
        for i in range(120):
            fh.write(json.dumps({"inputs": f"swali {i}", "targets": f"jibu {i}", "language": "swa"}) + "\n")
        fh.write('{"inputs": "x", "targets": 5, "language": "swa"}\n')
        fh.write('{"inputs": "x", "targets": "y", "language": null}\n')
        fh.write('{"inputs": "cut off\n')
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"inputs": "moja", "targets": "mbili", "language": "swa"}) + "\n")
    recipe = {"name": "sum", "data": {"budget": 240, "tasks": 1, "workers": 1, "filters": {"langid": False},
                                      "sources": [{"name": "big", "type": "files", "path": str(big)},
                                                  {"name": "one", "type": "files", "path": str(one)}], **data}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def test_build_summary_skips_and_repetition(tmp_path: Path):
    run = tmp_path / "run"
    result = _invoke("data", "build", str(_recipe(tmp_path)), "data.on_error=skip", "--run-dir", str(run))
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "3 bad lines skipped in source big (data.on_error=skip): cut-off JSON line 1, no language 1, " \
           "wrong type 1" in out
    assert "source one repeated 120.0x (more than 10x) to fill its share" in out
    stats = read_json(run / "data" / "stats.json")
    assert stats["skipped_rows"] == {"big": {"cut-off JSON line": 1, "no language": 1, "wrong type": 1}}
    assert stats["heavily_repeated"] == {"one": 120.0}
    assert stats["by_source"]["one"] == {"language": {"swh-Latn": 120}, "license": {"unknown": 120}}
    assert stats["by_source"]["big"]["language"] == {"swh-Latn": 120}
    again = " ".join(_invoke("data", "stats", str(run)).output.split())  # `data stats` says the same
    assert "3 bad lines skipped" in again and "one repeated 120.0x" in again
    manifest = read_json(run / "data" / "manifest.json")
    assert any("one repeated 120.0x" in w for w in manifest["warnings"])
    assert any("wrong type 1" in w for w in manifest["warnings"])


def test_stale_temporaries_removed_on_start(tmp_path: Path):
    run = tmp_path / "run"
    recipe = _recipe(tmp_path)
    assert _invoke("data", "build", str(recipe), "data.on_error=skip", "--run-dir", str(run)).exit_code == 0
    stale = [run / "data" / ".shards-00000-of-00001.parquet.k1ll3d.tmp",
             run / "data" / ".work" / "filtered" / "task-00000" / ".bucket-00000.parquet.tmp"]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half a shard")
    # a rerun whose manifest matches (nothing to build) still cleans up; so does a rebuild
    result = _invoke("data", "build", str(recipe), "data.on_error=skip", "--run-dir", str(run))
    assert result.exit_code == 0, result.output
    assert not [p for p in (run / "data").rglob("*.tmp")]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half a shard")
    result = _invoke("data", "build", str(recipe), "data.on_error=skip", "data.budget=250", "--run-dir", str(run))
    assert result.exit_code == 0, result.output
    assert not [p for p in (run / "data").rglob("*.tmp")]


def test_plan_fails_like_build(tmp_path: Path):
    recipe = _recipe(tmp_path)
    with pytest.raises(RecipeError, match="data.languages: .*unknown language code 'qqz'.*closest known"):
        _invoke("data", "plan", str(recipe), "data.languages=[qqz]")
    doc = yaml.safe_load(recipe.read_text())
    doc["data"]["sources"][0]["path"] = str(tmp_path / "nowhere.jsonl")
    recipe.write_text(yaml.safe_dump(doc))
    with pytest.raises(DataError, match="nowhere.jsonl does not exist"):
        _invoke("data", "plan", str(recipe))
    result = _invoke("data", "plan", str(recipe), "--no-sizes")  # from the recipe alone: warned, not read
    assert result.exit_code == 0 and "does not exist: `data build` will fail on it" in " ".join(result.output.split())
    with pytest.raises(RecipeError, match="qqz"):
        _invoke("data", "plan", str(recipe), "--no-sizes", "data.languages=[qqz]")


def test_empty_languages_rejected_when_the_recipe_loads(tmp_path: Path):
    with pytest.raises(RecipeError, match="data.languages: .*empty list selects nothing"):
        load_recipe(_recipe(tmp_path, languages=[]), [])
