"""The report builder on a fixture run: files, content, self-containedness, error messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ayakit.errors import DataError
from ayakit.report import build_report
from ayakit.report.scores import by_tier, headline, overall


def test_report_writes_html_markdown_and_every_image(fake_run: Path) -> None:
    index = build_report(fake_run)
    out = fake_run / "report"
    assert index == out / "index.html"
    html = index.read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    images = set(re.findall(r'<img src="([^"]+)"', html))
    assert {"loss.png", "mixture_languages.png", "fertility.png", "baseline_vs_trained.png",
            "eval_xcopa_mini.png", "mixture_sources.png"} <= images
    for name in images:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # self-contained: no external scripts, styles or fonts
    assert not re.search(r"<script|<link|@import|https?://", html)
    # the Markdown shows the same images and sections
    assert images == set(re.findall(r"\]\(([^)]+\.png)\)", md))
    for title in ("Baseline vs trained", "Evaluation", "Training mixture", "Tokenizer fertility", "Training",
                  "Resolved recipe"):
        assert f"<h2>{title}</h2>" in html and f"## {title}\n" in md
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "report" and sorted(manifest["outputs"]["images"]) == sorted(images)


def test_headline_reports_before_after_by_tier(fake_run: Path) -> None:
    base = json.loads((fake_run / "eval" / "baseline" / "summary.json").read_text())
    trained = json.loads((fake_run / "eval" / "trained" / "summary.json").read_text())
    stats = json.loads((fake_run / "data" / "stats.json").read_text())
    lines = headline(stats, base, trained)
    assert lines[0].startswith("languages trained: 6 (")
    # held-out = the task marked unseen (xcopa_mini) only
    b, a = overall(base), overall(trained)
    assert b == pytest.approx(base["tasks"]["xcopa_mini"]["score"])
    assert f"{b:.1f} -> {a:.1f} ({a - b:+.1f})" in lines[1]
    tiers = by_tier(trained)
    assert set(tiers) == {"high", "mid", "low"} & set(tiers)
    for tier in tiers:
        assert f"{tier}-resource" in lines[2]


def test_delta_and_winner_marked_in_comparison(fake_run: Path) -> None:
    build_report(fake_run)
    md = (fake_run / "report" / "report.md").read_text(encoding="utf-8")
    table = md.split("### Per task")[1].split("###")[0]
    row = next(line for line in table.splitlines() if line.startswith("| xcopa_mini"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "accuracy"
    before, after = float(cells[4]), float(cells[5])
    assert cells[6].strip("*") == f"{after - before:+.1f}"
    assert cells[6].startswith("**") == (after > before)


def test_partial_run_and_safety_extension(tmp_path: Path) -> None:
    run = tmp_path / "partial"
    (run / "safety").mkdir(parents=True)
    (run / "safety" / "summary.json").write_text(json.dumps(
        {"tables": [{"title": "Toxicity", "columns": ["language", "toxic share"], "rows": [["eng", 0.01]]}]}))
    index = build_report(run)
    html = index.read_text(encoding="utf-8")
    assert "Toxicity" in html and "0.010" in html  # a generic table: numbers as they are
    assert "languages trained: 0" in html


def test_bad_summary_is_a_one_line_error_naming_the_file(fake_run: Path) -> None:
    (fake_run / "eval" / "trained" / "summary.json").write_text("{not json")
    with pytest.raises(DataError, match=r"eval/trained/summary.json:1: not valid JSON"):
        build_report(fake_run)


def test_missing_run_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(tmp_path / "nope")


def _variety_run(run: Path) -> Path:
    """The fixture run with the mixture and eval results of five varieties (two of them Chinese, one unlisted)."""
    tags = ["swh-Latn", "kin-Latn", "yue-Hant", "zho-Hant", "srp-Latn"]
    stats_path = run / "data" / "stats.json"
    stats = json.loads(stats_path.read_text())
    stats["counts"]["language"] = {t: 100 + 10 * i for i, t in enumerate(tags)}
    stats["filters"] = {"langid": {"removed": 3, "by_language": {"kin-Latn": 3}}}
    stats["summary"] = {"dropped": {"text in another language": {"kin-Latn": 3},
                                    "not a language code": {"xx-nope": 4}},
                        "skipped_rows": {"v": {"no language": 2, "not a language code": 5}},
                        "skipped": {"fao": "no source has rows in it"}, "repeated": {"bible": 12.5},
                        "warnings": ["4 rows dropped, not a language code: source v: xx-nope 4",
                                     "7 bad lines skipped in source v (data.on_error=skip): not a language code 5, "
                                     "no language 2",
                                     "fao skipped: no source has rows in it"]}
    stats_path.write_text(json.dumps(stats))
    for model in ("baseline", "trained"):
        path = run / "eval" / model / "summary.json"
        summary = json.loads(path.read_text())
        for task in summary["tasks"].values():
            task["by_language"] = {t: {"score": 40.0 + 10 * i, "n": 10 * (i + 1), "tier": "x"}
                                   for i, t in enumerate(tags)}
        path.write_text(json.dumps(summary))
    return run


def test_report_keeps_varieties_distinct_with_unlisted_tiers(fake_run: Path) -> None:
    md = (build_report(_variety_run(fake_run)).with_name("report.md")).read_text(encoding="utf-8")
    table = md.split("Per language variety (5)")[1].split("\n\n")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split("|")[1].strip() for r in rows] == [
        "srp-Latn (Serbian (Latin))", "zho-Hant (Chinese (Traditional))", "yue-Hant (Cantonese)",
        "kin-Latn (Kinyarwanda)", "swh-Latn (Swahili)"]
    assert [r.split("|")[2].strip() for r in rows] == ["high", "high", "high", "unlisted", "low"]
    assert "Rolled up" not in md
    # the build's summary: drops per reason and language, skips, repeats, warnings
    assert "| not a language code | 4 | xx-nope | 4 |" in md
    assert "| v | not a language code | 5 |" in md and "| v | no language | 2 |" in md
    assert "| fao | no source has rows in it |" in md and "| bible | 12.5× |" in md
    assert "Build warnings (3): 4 rows dropped" in md


def test_report_rollup_merges_to_the_papers_rows_and_says_so(fake_run: Path) -> None:
    run = _variety_run(fake_run)
    index = build_report(run, rollup=True)
    md = index.with_name("report.md").read_text(encoding="utf-8")
    assert "## Languages rolled up" in md
    assert "yue-Hant, zho-Hant -> zho" in md and "(--rollup)" in md
    assert "Per language, rolled up to the paper's rows (4)" in md  # zho took two varieties
    assert "| zho (Chinese) | high | zho | 250 |" in md
    assert json.loads((index.parent / "manifest.json").read_text())["inputs"]["rollup"] is True
    from ayakit.report.artifacts import load_run
    from ayakit.report.rollup import rollup_artifacts

    art = load_run(run)
    merged = rollup_artifacts(art)
    assert merged == {"zho": ["yue-Hant", "zho-Hant"]}
    zho = art.evals["trained"]["tasks"]["xcopa_mini"]["by_language"]["zho"]
    assert zho["score"] == pytest.approx((60 * 30 + 70 * 40) / 70) and zho["n"] == 70 and zho["tier"] == "high"
    assert art.stats["counts"]["language"]["kin"] == 110


def test_a_pretrained_start_is_labelled_pretrained_not_untrained(fake_run: Path) -> None:
    recipe = fake_run / "recipe.yaml"
    recipe.write_text(recipe.read_text(encoding="utf-8") + "model: {name_or_path: google/mt5-small}\n",
                      encoding="utf-8")
    build_report(fake_run)
    md = (fake_run / "report" / "report.md").read_text(encoding="utf-8")
    assert "pretrained -> trained" in md and "| pretrained |" in md.replace("  ", " ")
    assert "untrained" not in md
