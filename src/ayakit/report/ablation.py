"""The paper-style comparison of ablation variants (Tables 5 and 7): one row per variant, one column per task, each
difference to the best variant with a paired bootstrap interval; a winner only where it is significant."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from ayakit.eval.compare import Comparison, compare_sides, context_scores, to_text
from ayakit.eval.significance import load_eval
from ayakit.io import read_json, write_json_atomic, write_manifest, write_text_atomic
from ayakit.report import plots
from ayakit.report.model import Figure, Report, Section, Table
from ayakit.report.render import to_html, to_markdown
from ayakit.report.artifacts import TRAINED, load_run
from ayakit.report.safety import distilled
from ayakit.report.sections import _counts, pct

COMPARISON = "comparison.json"
UNTRAINED_ROW = "(untrained)"
SAFE_DIR = "safe"  # a run with safety distillation trains a second model there: the variant's final model


def final_dir(run_dir: Path) -> Path:
    """Where a variant's final model's files are: run_dir/safe when the run distilled a safety source."""
    safe = Path(run_dir) / SAFE_DIR
    recipe = load_run(run_dir).recipe
    return safe if distilled(recipe) and (safe / "eval" / TRAINED / "summary.json").is_file() else Path(run_dir)


def _safety_table(run_dirs: dict[str, list[Path]]) -> Table | None:
    """Mean harmful rate and over-refusal of each variant's final model (its safety stages' results), first seed."""
    rows = []
    for v, dirs in run_dirs.items():
        d = dirs[0]
        path = d / "safety" / "summary.json"
        if not path.is_file():
            continue
        models = read_json(path).get("models") or {}
        label = "safe" if final_dir(d) != d else "trained"
        harm = (models.get(label) or {}).get("harm") or {}
        rates = [r["rate"] for r in (harm.get("languages") or {}).values() if r.get("rate") is not None]
        over = [r["rate"] for r in ((harm.get("over_refusal") or {}).get("languages") or {}).values()
                if r.get("rate") is not None]
        rows.append([v, label, pct(sum(rates), len(rates)), pct(sum(over), len(over)),
                     (harm.get("detector") or {}).get("name", "–")])
    if not rows:
        return None
    return Table("Safety of each variant's final model", ["variant", "model", "harmful rate (mean over languages)",
                                                          "over-refusal", "harm classifier"], rows,
                 note="Held-out XSafety prompts of each run's recorded split; 'safe': the model retrained with the "
                      "distilled safety source.")


def _cell(score: float | None, ci: Any = None) -> str:
    if score is None:
        return "–"
    return f"{score:.1f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def comparison_tables(comp: Comparison, untrained: dict[str, float | None] | None = None) -> list[Table]:
    """Scores per task and average (winners in bold), the differences to the best, and the per-tier scores."""
    task_rows = [r for r in comp.rows if not r.key.startswith("tier:")]
    tier_rows = [r for r in comp.rows if r.key.startswith("tier:")]
    tables = []
    for title, rows, note in (
            ("Results per task", task_rows, "† held-out (unseen) task. Score [95% interval over items"
             + (" and seeds" if max(comp.seeds.values()) > 1 else "") + "]; bold: significantly better than every "
             "other variant (paired bootstrap; none where the intervals of the differences include 0). The untrained "
             "row is context, never a winner."),
            ("Held-out score by resource tier", tier_rows, "Mean over held-out tasks of each task's score on the "
             "tier's languages; bold as above.")):
        if not rows:
            continue
        cols = ["variant", *[f"{r.label}{' †' if r.unseen else ''} ({r.metric})" for r in rows]]
        body, bold = [], set()
        if untrained:
            body.append([UNTRAINED_ROW, *[_cell(untrained.get(r.key)) for r in rows]])
        for name in comp.sides:
            i = len(body)
            body.append([name, *[_cell(r.cells[name].score, r.cells[name].ci) if name in r.cells else "–"
                                 for r in rows]])
            bold |= {(i, j) for j, r in enumerate(rows, 1) if r.winner == name}
        tables.append(Table(title, cols, body, note=note, bold=bold))
    cols = ["variant", *[r.label for r in comp.rows]]
    body = []
    for name in comp.sides:
        cells = []
        for r in comp.rows:
            c = r.cells.get(name)
            if c is None:
                cells.append("–")
            elif c.delta is None:
                cells.append("best" + (" (significant)" if r.winner == name else ""))
            else:
                cells.append(f"{c.delta:+.1f} [{c.delta_ci[0]:+.1f}, {c.delta_ci[1]:+.1f}]")
        body.append([name, *cells])
    tables.append(Table("Difference to the best variant", cols, body,
                        note="Paired bootstrap on the items every variant answered: 95% interval of each variant "
                             "minus the best. An interval that includes 0 is a tie at this sample size."))
    return tables


def _mixture_table(run_dirs: dict[str, list[Path]]) -> Table | None:
    kinds: dict[str, dict[str, float]] = {}
    for v, dirs in run_dirs.items():
        stats_path = dirs[0] / "data" / "stats.json"
        if stats_path.is_file():
            kinds[v] = _counts(read_json(stats_path), "kind")
    if not kinds:
        return None
    cols = sorted({k for c in kinds.values() for k in c})
    rows = [[v, *[pct(c.get(k, 0.0), sum(c.values())) for k in cols]] for v, c in kinds.items()]
    return Table("Realised mixture by kind", ["variant", *cols], rows,
                 note="The paper's groups: human annotated, templated, translated.")


def _sides(run_dirs: dict[str, list[Path]], which: str, notes: list[str]) -> dict[str, list]:
    out = {}
    for v, dirs in run_dirs.items():
        if which == TRAINED:  # the variant's final model: the safety-retrained one when the run distilled
            dirs = [final_dir(d) for d in dirs]
        runs = [load_eval(d / "eval" / which) for d in dirs if (d / "eval" / which / "summary.json").is_file()]
        if len(runs) < len(dirs):
            notes.append(f"{v}: {len(dirs) - len(runs)} of {len(dirs)} runs have no {which} evaluation")
        if runs:
            out[v] = runs
    return out


def build_ablation_report(ablation: Any, run_dirs: dict[str, list[Path] | Path], out_dir: Path,
                          notes: list[str] | None = None) -> Path:
    """Write out_dir/{comparison.json, report.md, index.html, *.png}; run_dirs: variant -> its runs (one per
    seed). Returns index.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dirs = {v: [Path(d) for d in (ds if isinstance(ds, list) else [ds])] for v, ds in run_dirs.items()}
    notes = list(notes or [])
    comp = compare_sides(_sides(run_dirs, TRAINED, notes))
    first = next(iter(run_dirs))
    baseline = _sides({first: run_dirs[first]}, "baseline", [])
    untrained = context_scores(baseline[first], comp) if baseline else None
    data = comp.to_dict()
    data.update(name=ablation.name, untrained=untrained, notes=notes,
                variants={v.name: {"description": v.description, "overrides": v.overrides,
                                   "run_dirs": [str(d) for d in run_dirs.get(v.name, [])]}
                          for v in ablation.variants if v.name in run_dirs})
    sec = Section("comparison", "Comparison", paragraphs=[ablation.description] if ablation.description else [])
    sec.paragraphs += notes + [f"warning: {w}" for w in comp.warnings]
    sec.tables = comparison_tables(comp, untrained)
    avg = next((r for r in comp.rows if r.key == "heldout_avg"), None) or next(
        (r for r in comp.rows if r.key == "avg"), None)
    if avg is not None:
        sec.paragraphs.append(f"Best {avg.label}: {avg.winner} (significant)." if avg.winner else
                              f"No variant is significantly best on the {avg.label} (highest: {avg.best}).")
    task_rows = [r for r in comp.rows if not r.key.startswith("tier:") and r.tasks and len(r.tasks) == 1]
    if task_rows:
        series = {v: [r.cells[v].score or 0.0 for r in task_rows] for v in comp.sides}
        if untrained:
            series = {UNTRAINED_ROW: [untrained.get(r.key) or 0.0 for r in task_rows], **series}
        sec.figures.append(Figure(plots.grouped_bars(
            out_dir / "ablation_tasks.png", [r.key for r in task_rows], series, ylabel="score",
            title=f"{ablation.name}: score per task and variant", xlabel="task").name, "Each variant's score per task."))
    variants = Section("variants", "Variants", tables=[Table(
        "What each variant changes", ["variant", "description", "overrides", "runs"],
        [[v.name, v.description, "; ".join(v.overrides), ", ".join(str(d) for d in run_dirs.get(v.name, []))]
         for v in ablation.variants])])
    mix = _mixture_table(run_dirs)
    if mix:
        variants.tables.append(mix)
    safety = _safety_table(run_dirs)
    if safety:
        sec.tables.append(safety)
    seeds = max(comp.seeds.values())
    report = Report(title=f"ayakit ablation: {ablation.name}",
                    subtitle=f"{len(comp.sides)} variants" + (f" of {ablation.base.name}" if ablation.base else "")
                    + f", one budget, {seeds} seed{'s' if seeds > 1 else ''} each",
                    headline=to_text(comp).splitlines(), sections=[sec, variants])
    write_json_atomic(out_dir / COMPARISON, data)
    index = write_text_atomic(out_dir / "index.html", to_html(report))
    write_text_atomic(out_dir / "report.md", to_markdown(report))
    write_manifest(out_dir, "ablation", inputs={"variants": data["variants"]},
                   outputs={"index.html": "index.html", "report.md": "report.md", "comparison": COMPARISON})
    return index


def comparison_text(out_dir: Path, width: int = 80) -> str:
    """The comparison for the terminal (fits `width` columns; winners marked with *), with the untrained row."""
    data = read_json(Path(out_dir) / COMPARISON)
    comp = Comparison.from_dict(data)
    text = to_text(comp, width)
    untrained = data.get("untrained") or {}
    if untrained:
        shown = ", ".join(f"{r.key} {untrained[r.key]:.1f}" for r in comp.rows if untrained.get(r.key) is not None)
        text += "\n\n" + "\n".join(textwrap.wrap(f"{UNTRAINED_ROW}: {shown}", width))
    for note in data.get("notes") or []:
        text += "\n" + "\n".join(textwrap.wrap(f"note: {note}", width))
    return text
