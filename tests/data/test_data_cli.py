"""`ayakit data` commands: plan (the paper's allocation), build, stats, sample, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from ayakit.cli import app

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
    assert stats.exit_code == 0 and "requested" in stats.output and "swa" in stats.output
    assert "100.00%" in stats.output  # the single source gets all of the budget
    sample = _invoke("data", "sample", str(run), "--language", "sw", "-n", "3")
    assert sample.exit_code == 0
    assert sample.output.count("targets:") == 3 and "swali" in sample.output
    assert "eng ·" not in sample.output


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
