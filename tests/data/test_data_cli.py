"""`ayakit data` commands: plan (the paper's allocation), build, stats, sample, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ayakit.cli import app
from ayakit.errors import DataError

REPO = Path(__file__).resolve().parents[2]
WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), env=WIDE, catch_exceptions=False)


def test_plan_prints_the_papers_allocation_of_25m():
    result = _invoke("data", "plan", str(REPO / "recipes" / "aya-101.yaml"), "--no-sizes")
    assert result.exit_code == 0, result.output
    for name, exact, short in [("aya_dataset", "2,500,000", "2.5M"), ("aya_templates", "375,000", "375k"),
                               ("xp3x", "3,750,000", "3.75M"), ("data_provenance", "875,000", "875k"),
                               ("aya_translations", "11,875,000", "11.875M"),
                               ("sharegpt_command", "5,625,000", "5.625M")]:
        line = next(ln for ln in result.output.splitlines() if name in ln)
        assert exact in line and short in line, line


def _recipe_file(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "x.jsonl", "w", encoding="utf-8") as fh:
        for i in range(300):
            lang = ["swa", "eng", "yor"][i % 3]
            fh.write(json.dumps({"inputs": f"swali {i}", "targets": f"jibu {i}", "language": lang}) + "\n")
    recipe = {"name": "cli", "data": {"budget": 600, "tasks": 1, "workers": 1, "filters": {"langid": False},
                                      "sources": [{"name": "x", "type": "files", "path": str(src)}]}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def test_build_stats_sample(tmp_path):
    recipe = _recipe_file(tmp_path)
    run = tmp_path / "run"
    result = _invoke("data", "build", str(recipe), "data.budget=900", "--run-dir", str(run))
    assert result.exit_code == 0, result.output
    assert "900 examples" in result.output
    assert yaml.safe_load((run / "recipe.yaml").read_text())["data"]["budget"] == 900  # the resolved recipe
    stats = _invoke("data", "stats", str(run))
    assert stats.exit_code == 0 and "requested" in stats.output and "swh-Latn" in stats.output
    assert "100.00%" in stats.output  # the single source gets all of the budget
    sample = _invoke("data", "sample", str(run), "--language", "sw", "-n", "3")
    assert sample.exit_code == 0
    assert sample.output.count("targets:") == 3 and "swali" in sample.output
    assert "eng-Latn ·" not in sample.output and "swh-Latn ·" in sample.output


def test_errors_are_one_line(tmp_path):
    """A bad recipe and an empty source, through the real entry point: one line on stderr, exit code 2."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "b", "data": {"sources": [{"name": "x", "type": "files", "weight": -1}]}}))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "e.jsonl").write_text("")
    recipe = tmp_path / "empty.yaml"
    recipe.write_text(yaml.safe_dump({"name": "e", "data": {"tasks": 1, "workers": 1, "sources": [
        {"name": "e", "type": "files", "path": str(empty)}]}}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    code = ("import sys; from ayakit.cli import main\n"
            "if __name__ == '__main__':\n    sys.argv[0] = 'ayakit'; main()\n")
    for path, expected in ((bad, "weight"), (recipe, "no examples")):
        proc = subprocess.run([sys.executable, "-c", code, "data", "build", str(path), "--run-dir",
                               str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and expected in lines[0] and "Traceback" not in proc.stderr, proc.stderr


VARIETY_ROWS = [
    ("swa", "Habari yako leo rafiki?", "Nzuri sana, asante."), ("kin", "Amakuru yawe uyu munsi?", "Ni meza cyane."),
    ("yue", "你今日點呀？", "我好好，多謝。"), ("zho-Hant", "你今天好嗎？", "我很好，謝謝。"),
    ("srp_Latn", "Kako si danas?", "Dobro sam, hvala."), ("srp", "Како си данас?", "Добро сам, хвала."),
    ("zho", "你今天好吗？", "我很好，谢谢。"), ("xx-nope", "Hello there?", "Hi."), ("", "No language?", "None."),
    ("tlh", "nuqneH?", "maj."),
]


def _varieties_recipe(tmp_path: Path, **data) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    with open(src / "v.jsonl", "w", encoding="utf-8") as fh:
        for i in range(40):
            for lang, q, a in VARIETY_ROWS:
                fh.write(json.dumps({"inputs": f"{q} {i}", "targets": f"{a} {i}", "language": lang},
                                    ensure_ascii=False) + "\n")
    recipe = {"name": "varieties", "data": {"budget": 400, "tasks": 1, "workers": 1, "filters": {"langid": False},
                                            "languages": ["swa", "kin", "yue", "zho-Hant", "srp-Latn", "fao"],
                                            "sources": [{"name": "v", "type": "files", "path": str(src)}], **data}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def test_build_keeps_varieties_and_says_what_it_dropped(tmp_path):
    """Five requested varieties stay five; every drop and skip is printed, in stats.json and the manifest."""
    recipe, run = _varieties_recipe(tmp_path), tmp_path / "run"
    # a row with no language, or a value that is no language code, is a located error naming the closest codes
    with pytest.raises(DataError, match=r"v\.jsonl:8: unknown language code 'xx-nope' .*closest known: \w+"):
        _invoke("data", "build", str(recipe), "--run-dir", str(run))
    # under data.on_error=skip those rows are counted by reason and printed; every valid code keeps its variety
    result = _invoke("data", "build", str(recipe), "data.on_error=skip", "--run-dir", str(run))
    assert result.exit_code == 0, result.output
    stats = json.loads((run / "data" / "stats.json").read_text())
    assert set(stats["counts"]["language"]) == {"swh-Latn", "kin-Latn", "yue-Hant", "zho-Hant", "srp-Latn"}
    assert stats["counts"]["tier"]["unlisted"] == stats["counts"]["language"]["kin-Latn"]
    assert stats["skipped_rows"] == {"v": {"no language": 40, "not a language code": 40}}
    summary = stats["summary"]
    assert "not a language code" not in summary["dropped"]
    assert summary["dropped"]["outside data.languages"] == {"srp-Cyrl": 40, "zho-Hans": 40, "tlh-Latn": 40}
    assert summary["skipped"] == {"fao": "no source has rows in it"}
    warnings = json.loads((run / "data" / "manifest.json").read_text())["warnings"]
    assert warnings == summary["warnings"] and len(warnings) == 2
    out = " ".join(result.output.split())
    assert "80 bad lines skipped in source v (data.on_error=skip): no language 40, not a language code 40" in out
    assert "dropped 120 rows (outside data.languages): srp-Cyrl 40, tlh-Latn 40, zho-Hans 40" in out
    assert "fao skipped: no source has rows in it" in out
    strict = _invoke("data", "build", str(recipe), "data.on_error=skip", "--run-dir", str(run), "--strict")
    assert strict.exit_code == 1 and "--strict: 2 warning(s)" in strict.output
    # a valid code outside the 101 (tlh, Klingon) is kept as its own variety when selected, tier unlisted
    klingon = _invoke("data", "build", str(recipe), "data.on_error=skip", "data.languages=[tlh]",
                      "--run-dir", str(tmp_path / "tlh"))
    assert klingon.exit_code == 0, klingon.output
    stats = json.loads((tmp_path / "tlh" / "data" / "stats.json").read_text())
    assert stats["counts"]["language"] == {"tlh-Latn": 400} and stats["counts"]["tier"] == {"unlisted": 400}
    # a source repeated more than 10x is named
    heavy = _invoke("data", "build", str(_varieties_recipe(tmp_path, budget=3000, languages=["kin"])),
                    "data.on_error=skip", "--run-dir", str(tmp_path / "heavy"))
    assert heavy.exit_code == 0 and "source v repeated 75.0x (more than 10x)" in " ".join(heavy.output.split())
