"""The report of a run (HTML + Markdown + plots) and the comparison of ablation variants."""

from __future__ import annotations

from pathlib import Path


def build_report(run_dir: Path, out_dir: Path | None = None, rollup: bool = False) -> Path:
    """Write run_dir/report/{index.html, report.md, *.png}; returns the index.html path (rollup: the paper's rows)."""
    from ayakit.report.build import build_report as _build

    return _build(run_dir, out_dir, rollup=rollup)
