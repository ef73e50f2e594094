"""The report's mixture section: a source x language table, a licence column, and what the build warned about."""

from __future__ import annotations

from pathlib import Path

from ayakit.report.artifacts import RunArtifacts
from ayakit.report.sections import mixture_section


def _stats(n_langs: int) -> dict:
    langs = [f"l{i:02d}" for i in range(n_langs)]
    spread = {c: 10 for c in langs}
    return {"budget": 600, "total": 600, "seed": 1, "requested": {"source": {"spread": 0.5, "mono": 0.5}},
            "realised": {"source": {"spread": 0.5, "mono": 0.5}},
            "counts": {"source": {"spread": 300, "mono": 300}, "language": {**spread, "swh": 300}},
            "repetition": {"spread": 1.0, "mono": 120.0},
            "by_source": {"spread": {"language": spread, "license": {"cc-by-4.0": 200, "apache-2.0": 100}},
                          "mono": {"language": {"swh": 300}, "license": {"Unicode-3.0": 300}}},
            "heavily_repeated": {"mono": 120.0},
            "skipped_rows": {"spread": {"wrong type": 2}}}


def _table(sec, title: str):
    return next(t for t in sec.tables if t.title.startswith(title))


def test_source_language_matrix_and_licences(tmp_path: Path) -> None:
    sec = mixture_section(RunArtifacts(tmp_path, stats=_stats(3)), tmp_path)
    by_source = _table(sec, "By source")
    assert by_source.columns[:2] == ["source", "licence"]
    cells = {r[0]: r[1] for r in by_source.rows}
    assert cells == {"spread": "cc-by-4.0 66.7%, apache-2.0 33.3%", "mono": "Unicode-3.0"}
    matrix = _table(sec, "Source × language")
    assert matrix.columns[0] == "source" and set(matrix.columns[1:]) == {"swh", "l00", "l01", "l02"}
    mono = next(r for r in matrix.rows if r[0] == "mono")
    assert mono[matrix.columns.index("swh")] == "100.0%" and mono[matrix.columns.index("l00")] == "–"
    spread = _table(sec, "Languages of each source")
    assert "mono" in spread.note and "spread" not in spread.note  # the one-language source is flagged
    # what the build warned about, from stats.json even when it has no `summary` (a build before the summary)
    assert ["mono", "120.0×"] in _table(sec, "Sources repeated more than 10x").rows
    assert ["spread", "wrong type", "2"] in _table(sec, "Bad lines skipped").rows
    text = " ".join(sec.paragraphs)
    assert "source mono repeated 120.0x" in text and "source spread (data.on_error=skip): wrong type 2" in text


def test_many_languages_list_each_sources_spread(tmp_path: Path) -> None:
    sec = mixture_section(RunArtifacts(tmp_path, stats=_stats(40)), tmp_path)
    assert not [t for t in sec.tables if t.title.startswith("Source × language")]
    rows = {r[0]: r for r in _table(sec, "Languages of each source").rows}
    assert rows["spread"][1] == "40" and rows["mono"][1] == "1" and rows["mono"][2].startswith("swh 100.0%")


def test_old_stats_without_the_new_keys(tmp_path: Path) -> None:
    stats = _stats(3)
    for key in ("by_source", "heavily_repeated", "skipped_rows"):
        stats.pop(key)
    sec = mixture_section(RunArtifacts(tmp_path, stats=stats), tmp_path)
    assert {r[1] for r in _table(sec, "By source").rows} == {"–"}
