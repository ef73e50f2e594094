"""The README's "Your own data and models" recipe is a valid recipe, and its files source reads mapped columns."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from ayakit.data.sources import open_source
from ayakit.recipe import recipe_from_dict

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_recipe_reads_your_own_files(tmp_path: Path, monkeypatch) -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Your own data and models", 1)[1].split("\n## ", 1)[0]
    doc = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    (tmp_path / "mydata").mkdir()
    (tmp_path / "mydata" / "calendar.jsonl").write_text(
        json.dumps({"question": "Month 1 in Swahili?", "answer": "Januari", "lang": "swh"}) + "\n")
    (tmp_path / "mydata" / "more.csv").write_text("question,answer,lang\nMonth 1 in French?,janvier,fra\n"
                                                  "Month 1 in English?,January,eng\n")
    monkeypatch.chdir(tmp_path)
    recipe = recipe_from_dict(doc)
    assert recipe.model.arch == "causal" and recipe.data.languages == ["eng", "swh", "yor"]
    spec = next(s for s in recipe.data.sources if s.type == "files")
    rows = [r for b in open_source(spec, recipe).iter_batches() for r in b.to_pylist()]
    assert sorted((r["inputs"], r["targets"], r["language"]) for r in rows) == [
        ("Month 1 in English?", "January", "eng-Latn"), ("Month 1 in Swahili?", "Januari", "swh-Latn")]
    assert {r["license"] for r in rows} == {"CC-BY-4.0"} and {r["kind"] for r in rows} == {"human"}
