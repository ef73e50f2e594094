"""The paper-style comparison of ablation variants (Tables 5 and 7): one row per variant, one column per task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ayakit.io import read_json, write_json_atomic, write_manifest, write_text_atomic
from ayakit.report import plots
from ayakit.report.artifacts import BASELINE, TRAINED, load_run
from ayakit.report.model import Figure, Report, Section, Table
from ayakit.report.render import to_html, to_markdown
from ayakit.report.safety import distilled
from ayakit.report.scores import TIER_ORDER, by_tier, digits, metric_name, overall, tasks
from ayakit.report.sections import _counts, fmt, pct

COMPARISON = "comparison.json"
UNTRAINED_ROW = "(untrained)"
SAFE_DIR = "safe"  # a run with safety distillation trains a second model there: the variant's final model


def final_dir(run_dir: Path) -> Path:
    """Where a variant's final model's files are: run_dir/safe when the run distilled a safety source."""
    safe = Path(run_dir) / SAFE_DIR
    recipe = load_run(run_dir).recipe
    return safe if distilled(recipe) and (safe / "eval" / TRAINED / "summary.json").is_file() else Path(run_dir)


def _safety_table(run_dirs: dict[str, Path]) -> Table | None:
    """Mean harmful rate and over-refusal of each variant's final model (its safety stages' results)."""
    rows = []
    for v, d in run_dirs.items():
        path = Path(d) / "safety" / "summary.json"
        if not path.is_file():
            continue
        models = read_json(path).get("models") or {}
        label = "safe" if final_dir(d) != Path(d) else "trained"
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


def _winners(values: dict[str, float | None], nd: int = 3) -> list[str]:
    """The rows with the best (highest) value at the shown precision, ties included; none for fewer than two rows."""
    present = {k: round(v, nd) for k, v in values.items() if v is not None}
    if len(present) < 2:
        return []
    best = max(present.values())
    winners = [k for k, v in present.items() if v == best]
    return [] if len(winners) == len(present) else winners  # a column where all tie has no winner


def compare(summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Scores per variant and task, the held-out average, per-tier averages and the winners of each column."""
    task_names: list[str] = []
    for s in summaries.values():
        for name in tasks(s):
            if name not in task_names:
                task_names.append(name)
    ref = next(iter(summaries.values()), {})
    unseen = {n for n, t in tasks(ref).items() if t.get("unseen_task")}
    task_names.sort(key=lambda n: (n not in unseen, n))
    rows = {}
    for variant, s in summaries.items():
        rows[variant] = {"tasks": {n: (tasks(s).get(n) or {}).get("score") for n in task_names},
                         "heldout_avg": overall(s, heldout=True), "by_tier": by_tier(s, heldout=True)}
    trained = [v for v in rows if v != UNTRAINED_ROW]
    nd = digits(ref)
    winners = {n: _winners({v: rows[v]["tasks"][n] for v in trained}, nd) for n in task_names}
    winners["heldout_avg"] = _winners({v: rows[v]["heldout_avg"] for v in trained}, nd)
    tiers = [t for t in TIER_ORDER if any(t in rows[v]["by_tier"] for v in rows)]
    for t in tiers:
        winners[f"tier:{t}"] = _winners({v: rows[v]["by_tier"].get(t) for v in trained}, nd)
    return {"tasks": task_names, "unseen": sorted(unseen), "tiers": tiers, "digits": digits(ref),
            "metrics": {n: (tasks(ref).get(n) or {}).get("metric", "score") for n in task_names},
            "metric": metric_name(ref) if ref else "score", "rows": rows, "winners": winners}


def comparison_tables(comp: dict[str, Any]) -> list[Table]:
    """The results table (tasks + held-out average) and the per-tier table, winners in bold."""
    names = list(comp["rows"])
    nd = comp.get("digits", 3)
    cols = [f"{n}{' †' if n in comp['unseen'] else ''} ({comp['metrics'][n]})" for n in comp["tasks"]]
    rows, bold = [], set()
    for i, v in enumerate(names):
        r = comp["rows"][v]
        rows.append([v, *[fmt(r["tasks"][n], nd) for n in comp["tasks"]], fmt(r["heldout_avg"], nd)])
        for j, n in enumerate([*comp["tasks"], "heldout_avg"], start=1):
            if v in comp["winners"].get(n, []):
                bold.add((i, j))
    results = Table("Results per task", ["variant", *cols, f"held-out avg ({comp['metric']})"], rows, bold=bold,
                    note="† held-out (unseen) task. Bold: the best variant in the column (ties all bold, none when all tie); "
                         "the untrained row is context, never a winner.")
    rows, bold = [], set()
    for i, v in enumerate(names):
        r = comp["rows"][v]
        rows.append([v, *[fmt(r["by_tier"].get(t), nd) for t in comp["tiers"]]])
        for j, t in enumerate(comp["tiers"], start=1):
            if v in comp["winners"].get(f"tier:{t}", []):
                bold.add((i, j))
    tiers = Table("Held-out score by resource tier", ["variant", *[f"{t}-resource" for t in comp["tiers"]]], rows,
                  bold=bold, note="Mean over held-out tasks of each task's per-tier score.")
    return [results, tiers]


def _mixture_table(run_dirs: dict[str, Path]) -> Table | None:
    kinds: dict[str, dict[str, float]] = {}
    for v, d in run_dirs.items():
        stats_path = final_dir(d) / "data" / "stats.json"
        if stats_path.is_file():
            kinds[v] = _counts(read_json(stats_path), "kind")
    if not kinds:
        return None
    cols = sorted({k for c in kinds.values() for k in c})
    rows = [[v, *[pct(c.get(k, 0.0), sum(c.values())) for k in cols]] for v, c in kinds.items()]
    return Table("Realised mixture by kind", ["variant", *cols], rows,
                 note="The paper's groups: human annotated, templated, translated.")


def build_ablation_report(ablation: Any, run_dirs: dict[str, Path], out_dir: Path) -> Path:
    """Write out_dir/{comparison.json, report.md, index.html, *.png}; returns index.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries: dict[str, dict[str, Any]] = {}
    first = next(iter(run_dirs.values()))
    base = load_run(first).evals.get(BASELINE)
    if base:
        summaries[UNTRAINED_ROW] = base
    for v, d in run_dirs.items():
        trained = load_run(final_dir(d)).evals.get(TRAINED)
        if trained:
            summaries[v] = trained
    comp = compare(summaries)
    comp["name"] = ablation.name
    comp["variants"] = {v.name: {"description": v.description, "overrides": v.overrides,
                                 "run_dir": str(run_dirs[v.name])} for v in ablation.variants}
    sec = Section("comparison", "Comparison", paragraphs=[ablation.description] if ablation.description else [])
    sec.tables = comparison_tables(comp)
    win = comp["winners"].get("heldout_avg") or []
    if win:
        sec.paragraphs.append(f"Best held-out average: {', '.join(win)}.")
    trained_rows = [v for v in comp["rows"] if v != UNTRAINED_ROW]
    if comp["tasks"] and trained_rows:
        sec.figures.append(Figure(plots.grouped_bars(
            out_dir / "ablation_tasks.png", comp["tasks"],
            {v: [comp["rows"][v]["tasks"][n] or 0.0 for n in comp["tasks"]] for v in comp["rows"]},
            ylabel=f"score ({comp['metric']})", title=f"{ablation.name}: score per task and variant",
            xlabel="task").name, "Each variant's score per task."))
    variants = Section("variants", "Variants", tables=[Table(
        "What each variant changes", ["variant", "description", "overrides", "run"],
        [[v.name, v.description, "; ".join(v.overrides), str(run_dirs[v.name])] for v in ablation.variants])])
    mix = _mixture_table(run_dirs)
    if mix:
        variants.tables.append(mix)
    safety = _safety_table(run_dirs)
    if safety:
        sec.tables.append(safety)
    report = Report(title=f"ayakit ablation: {ablation.name}",
                    subtitle=f"{len(ablation.variants)} variants"
                    + (f" of {ablation.base.name}" if ablation.base else "") + ", one budget and seed",
                    headline=comparison_text(None, comp).splitlines(), sections=[sec, variants])
    write_json_atomic(out_dir / COMPARISON, comp)
    index = write_text_atomic(out_dir / "index.html", to_html(report))
    write_text_atomic(out_dir / "report.md", to_markdown(report))
    write_manifest(out_dir, "ablation", inputs={"variants": comp["variants"]},
                   outputs={"index.html": "index.html", "report.md": "report.md", "comparison": COMPARISON})
    return index


def comparison_text(out_dir: Path | None, comp: dict[str, Any] | None = None) -> str:
    """The comparison as a fixed-width text table for the terminal (winners marked with *)."""
    comp = comp or read_json(Path(out_dir) / COMPARISON)
    cols = [*comp["tasks"], "heldout_avg"]
    header = ["variant", *[c + (" †" if c in comp["unseen"] else "") for c in comp["tasks"]], "held-out avg"]
    lines = [header]
    for v, r in comp["rows"].items():
        vals = [*(r["tasks"][n] for n in comp["tasks"]), r["heldout_avg"]]
        lines.append([v, *[fmt(x, comp.get("digits", 3)) + ("*" if v in comp["winners"].get(c, []) else " ")
                           for x, c in zip(vals, cols)]])
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in lines)
