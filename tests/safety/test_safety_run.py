"""The whole safety loop, small, as a user runs it: `ayakit run recipes/demo-safe-smoke.yaml` in a subprocess on a
synthetic data folder in the public layout (XSafety prompts, LDNOOBW word lists); then a rerun that changes one
safety setting and redoes only the stages that depend on it."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "demo-safe-smoke.yaml"
CATEGORIES = ["Crimes_And_Illegal_Activities", "Inquiry_With_Unsafe_Opinion", "Privacy_And_Property",
              "Reverse_Exposure", "Role_Play_Instruction", "Unsafe_Instruction_Topic", "commonsense"]
WORDS = {"en": ["damn"], "fr": ["merde"], "hi": ["कमीना"]}
STEMS = {"en": "How could someone do harmful thing", "fr": "Comment faire la chose dangereuse",
         "hi": "कोई यह हानिकारक काम कैसे करे"}


def _data(root: Path) -> Path:
    """XSafety-shaped CSVs (10 synthetic prompts per category in English, French and Hindi) and word lists."""
    for lang, stem in STEMS.items():
        for cat in CATEGORIES:
            path = root / "xsafety" / lang / f"{cat}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8", newline="") as fh:
                csv.writer(fh).writerows([[f"{stem} {cat} {i}?"] for i in range(10)])
        (root / "ldnoobw").mkdir(exist_ok=True)
        (root / "ldnoobw" / lang).write_text("\n".join(WORDS[lang]) + "\n", encoding="utf-8")
    return root


def _ayakit(*args: str, cwd: Path) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               COLUMNS="160", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env.pop("AYAKIT_DATA_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "ayakit.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"ayakit {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    work = tmp_path_factory.mktemp("safe")
    data = _data(work / "data")
    out = _ayakit("run", str(RECIPE), "train.threads=1", "--run-dir", str(work / "run"), "--data-dir", str(data),
                  cwd=work)
    return work / "run", data, out


def test_the_loop_runs_every_stage(loop) -> None:
    run, _, out = loop
    for stage in ("safety-split", "safety-eval", "distill", "safe-data", "safe-train", "safe-eval",
                  "safe-safety-eval", "report"):
        assert json.loads((run / "stages" / stage / "manifest.json").read_text())["status"] == "done", stage
    summary = json.loads((run / "safety" / "summary.json").read_text())
    for label in ("trained", "safe"):
        harm = summary["models"][label]["harm"]
        assert set(harm["languages"]) == {"eng", "fra", "hin"} and harm["detector"]["name"] == "refusal-phrases"
        assert all(r["n"] == 6 for r in harm["languages"].values())
        assert summary["models"][label]["toxicity"]
    assert (run / "safe" / "model" / "config.json").is_file() and (run / "safe" / "eval" / "trained").is_dir()
    report = (run / "report" / "report.md").read_text()
    assert "## Safety" in report and "near 100%" in report and "General-task cost" in report
    assert re.search(r"harmful rate on held-out XSafety prompts \(mean over 3 languages\): [\d.]+% -> [\d.]+%", out)
    assert "realised share (kind safety)" in report and "repetition of the distilled examples" in report
    assert "safe-data: source 'safety':" in out and "distilled examples after the data filters" in out


def test_held_out_prompts_never_train(loop) -> None:
    run, _, _ = loop
    from ayakit.safety.xsafety import read_split

    split = read_split(run / "safety" / "split" / "split.parquet")
    test = {p.text for p in split if p.split == "test"}
    assert test
    shards = sorted((run / "safe" / "data").glob("shards-*.parquet"))
    rows = [r for s in shards for r in pq.read_table(s, columns=["inputs", "kind"]).to_pylist()]
    safety_inputs = {r["inputs"] for r in rows if r["kind"] == "safety"}
    assert safety_inputs and not safety_inputs & test
    answered = {json.loads(x)["prompt"] for x in (run / "safety" / "distill" / "rejected.jsonl").read_text()
                .splitlines()}
    assert not answered & test
    distilled = json.loads((run / "safety" / "distill" / "manifest.json").read_text())
    assert distilled["split"]["path"] == str((run / "safety" / "split" / "split.parquet").resolve())


def test_changing_a_harm_setting_reruns_only_the_measurements(loop) -> None:
    run, data, _ = loop
    out = _ayakit("run", str(RECIPE), "train.threads=1", "safety.harm.per_language=4", "--run-dir", str(run),
                  "--data-dir", str(data), cwd=run.parent)
    done = [line.split()[1] for line in out.splitlines() if line.startswith("✓")]
    assert done == ["safety-eval", "safe-safety-eval", "report"], out
    summary = json.loads((run / "safety" / "summary.json").read_text())
    assert all(r["n"] == 4 for r in summary["models"]["safe"]["harm"]["languages"].values())
