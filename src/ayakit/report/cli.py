"""`ayakit report RUN_DIR`: (re)write a run's HTML and Markdown report."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def report_cmd(
    run_dir: Path = typer.Argument(..., help="The run directory (runs/<name>) whose stages' files the report reads."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the report here instead of RUN_DIR/report."),
    rollup: bool = typer.Option(False, "--rollup",
                                help="Merge language varieties into the paper's 101 rows (yue-Hant, zho-Hant -> zho; "
                                     "srp-Latn -> srp; ckb, kmr -> kur; prs -> pes; nno, nob -> nor; eng-GB -> eng) "
                                     "for tables comparable with the paper; the report says what it merged. "
                                     "Default: every variety is its own row."),
) -> None:
    """Write RUN_DIR/report/index.html (self-contained) and report.md with the run's mixture, tokenizer, training
    curves, per-language and per-tier evaluation and the untrained-vs-trained comparison."""
    from ayakit.report import build_report

    index = build_report(run_dir, out, rollup=rollup)
    console = Console()
    console.print(f"report: {index}")
    console.print(f"markdown: {index.with_name('report.md')}")
