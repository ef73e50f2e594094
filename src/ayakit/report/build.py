"""Build runs/<name>/report/: index.html, report.md and the PNGs they show."""

from __future__ import annotations

from pathlib import Path

from ayakit.io import fingerprint, write_manifest, write_text_atomic
from ayakit.report import sections as S
from ayakit.report.artifacts import BASELINE, TRAINED, load_run
from ayakit.report.model import Report, Section
from ayakit.report.render import to_html, to_markdown
from ayakit.report.rollup import rollup_artifacts, rollup_note
from ayakit.report.safety import safety_headline, safety_section
from ayakit.report.scores import headline


def build_report(run_dir: Path, out_dir: Path | None = None, rollup: bool = False) -> Path:
    """Write the report of a run (default: run_dir/report/) and return the path of its index.html; with rollup,
    language varieties are merged into the paper's 101 rows and the report says so."""
    run_dir = Path(run_dir)
    art = load_run(run_dir)
    merged = rollup_artifacts(art) if rollup else None
    out = Path(out_dir) if out_dir else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):  # plots of an earlier report that this one may not redraw
        old.unlink()
    secs = [s for build in S.BUILDERS if (s := build(art, out)) is not None]
    if merged is not None:
        secs.insert(0, Section("rollup", "Languages rolled up", paragraphs=[rollup_note(merged)]))
    if (safety := safety_section(art, out)) is not None:
        secs.append(safety)
    if (recipe := S.recipe_section(art, out)) is not None:
        secs.append(recipe)
    title = (art.recipe.get("report") or {}).get("title") or f"ayakit run: {art.name}"
    report = Report(title=title, subtitle=str(art.recipe.get("description") or ""),
                    headline=headline(art.stats, art.evals.get(BASELINE), art.evals.get(TRAINED), art.baseline_label)
                    + safety_headline(art),
                    sections=secs)
    index = write_text_atomic(out / "index.html", to_html(report))
    write_text_atomic(out / "report.md", to_markdown(report))
    images = sorted(p.name for p in out.glob("*.png"))
    write_manifest(out, "report", inputs={"run_dir": str(run_dir), "evals": sorted(art.evals), "rollup": rollup,
                                          "stats": fingerprint(art.stats), "recipe": fingerprint(art.recipe)},
                   outputs={"index.html": index.name, "report.md": "report.md", "images": images},
                   headline=report.headline)
    return index
