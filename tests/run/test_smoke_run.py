"""The real thing, small: `ayakit run recipes/demo-smoke.yaml` end to end in a subprocess, its report rendered in
headless Chromium, a rerun that skips every stage, and the smoke ablation."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "recipes" / "demo-smoke.yaml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               COLUMNS="120", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("AYAKIT_DATA_DIR", None)  # the smoke run needs nothing but installed packages
    return env


def ayakit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the ayakit CLI as a user would, one torch process at a time."""
    proc = subprocess.run([sys.executable, "-m", "ayakit.cli", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"ayakit {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One smoke run shared by the tests of this module: (run dir, stdout)."""
    work = tmp_path_factory.mktemp("smoke")
    proc = ayakit("run", str(SMOKE), "train.threads=1", "--run-dir", str(work / "run"), cwd=work)
    return work / "run", proc.stdout


def test_smoke_run_writes_every_stage_and_the_headline(smoke: tuple[Path, str]) -> None:
    run_dir, out = smoke
    for rel in ("recipe.yaml", "data/stats.json", "data/manifest.json", "tokenizer/fertility.json",
                "eval/baseline/summary.json", "model/metrics.jsonl", "model/config.json",
                "eval/trained/summary.json", "report/index.html", "report/report.md"):
        assert (run_dir / rel).is_file(), rel
    assert f"report: {run_dir / 'report' / 'index.html'}" in out
    assert re.search(r"languages trained: \d+", out)
    assert re.search(r"held-out \w+ .*: \d+\.\d -> \d+\.\d \([+-]\d+\.\d\)", out)
    assert re.search(r"by tier: (high|mid|low)-resource \d+\.\d -> \d+\.\d", out)
    headline = json.loads((run_dir / "report" / "manifest.json").read_text())["headline"]
    assert all(line in out for line in headline)


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


IMG_CHECK = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src"));
  const pre = document.createElement("pre");
  pre.id = "imgcheck";
  pre.textContent = JSON.stringify({total: imgs.length, broken: broken});
  document.body.appendChild(pre);
});
</script>
"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package `chromium`; .ci/run installs it)")
def test_report_renders_in_headless_chromium(smoke: tuple[Path, str], tmp_path: Path) -> None:
    run_dir, _ = smoke
    report = tmp_path / "report"
    shutil.copytree(run_dir / "report", report)
    html = (report / "index.html").read_text(encoding="utf-8")
    assert "<script" not in html and "<link" not in html  # self-contained: the check script is ours only
    (report / "check.html").write_text(html.replace("</body>", IMG_CHECK + "</body>"), encoding="utf-8")
    dom = _chromium("--virtual-time-budget=10000", "--dump-dom", (report / "check.html").as_uri(),
                    profile=tmp_path / "profile1")
    found = re.search(r'<pre id="imgcheck">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"the page did not finish loading:\n{dom.stderr[-2000:]}"
    result = json.loads(found.group(1).replace("&quot;", '"'))
    assert result["total"] >= 5 and result["broken"] == [], result
    shot = tmp_path / "report-screenshot.png"
    _chromium("--window-size=1280,2400", "--hide-scrollbars", f"--screenshot={shot}",
              (run_dir / "report" / "index.html").as_uri(), profile=tmp_path / "profile2")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"report screenshot: {shot}")


def test_rerun_skips_every_stage(smoke: tuple[Path, str]) -> None:
    run_dir, _ = smoke
    proc = ayakit("run", str(SMOKE), "train.threads=1", "--run-dir", str(run_dir), cwd=run_dir.parent)
    assert proc.stdout.count("unchanged, skipped") == 7, proc.stdout  # data .. report, tokenize included
    proc = ayakit("report", str(run_dir), cwd=run_dir.parent)
    assert "index.html" in proc.stdout


def test_smoke_ablation(tmp_path: Path) -> None:
    ablation = REPO / "recipes" / "ablations" / "demo-weightings.yaml"
    # two of the three variants keep the test short; the full ablation runs the same code for each variant
    proc = ayakit("ablate", str(ablation), "train.threads=1", "eval.baseline=false", "--base", str(SMOKE),
                  "--only", "human-heavy", "--only", "template-heavy", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    root = tmp_path / "runs" / "demo-weightings"
    comp = json.loads((root / "comparison.json").read_text())
    assert set(comp["variants"]) == {"human-heavy", "template-heavy"}
    assert comp["sides"] == ["human-heavy", "template-heavy"] and comp["untrained"] is None  # eval.baseline=false
    stats = {v: json.loads((root / v / "data" / "stats.json").read_text()) for v in comp["variants"]}
    share = {v: s["realised"]["source"]["dialogue"] for v, s in stats.items()}
    assert share["human-heavy"] > share["template-heavy"]  # the weights reached the mixture
    shared_tok = (root / "_shared" / "tokenizer").resolve()
    for v in comp["variants"]:  # one tokenizer for every variant, so the same initial model
        recipe = (root / v / "recipe.yaml").read_text()
        assert f"pretrained: {shared_tok}" in recipe
    for row in comp["rows"]:  # a winner only where every difference's interval excludes 0
        others = [c for n, c in row["cells"].items() if n != row["best"]]
        if row["winner"] is not None:
            assert all(c["delta_ci"][1] < 0 for c in others)
        else:
            assert any(c["delta_ci"] is None or c["delta_ci"][1] >= 0 for c in others)
    assert (root / "index.html").is_file() and (root / "report.md").is_file()
    assert max(len(line) for line in proc.stdout.splitlines() if line.startswith("  [")) <= 80
    assert "Paired bootstrap" in proc.stdout

