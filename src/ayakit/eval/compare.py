"""Models (or ablation variants) side by side: per task, per resource tier and overall, each difference with a paired
bootstrap interval, a winner only where it is significantly better than every other side (the paper's Tables 5, 7).

A side is one evaluation (`ayakit eval compare`) or several runs of one variant with different seeds (`ayakit
ablate --seeds N`). Everything is computed on what all sides share: tasks, languages and items present on one side
only are left out and named in `warnings`.
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ayakit.errors import DataError
from ayakit.eval import significance as sig

TIER_ORDER = ("high", "mid", "low", "unlisted")
WIDTH = 80


@dataclass
class Cell:
    """One side in one row: its score (mean over seeds) with interval, and its difference to the row's best."""

    score: float | None
    ci: tuple[float, float] | None = None
    delta: float | None = None  # this side minus the best side (<= 0); None for the best itself
    delta_ci: tuple[float, float] | None = None


@dataclass
class Row:
    """A task, a tier average or the overall average, compared across sides."""

    key: str  # task name, "tier:<tier>", "heldout_avg" or "avg"
    label: str
    metric: str
    n_items: int
    n_languages: int
    cells: dict[str, Cell]
    best: str | None  # the highest point score
    winner: str | None  # the best, when its interval of difference to every other side excludes 0
    unseen: bool = False
    tasks: list[str] = field(default_factory=list)  # the tasks averaged
    tier: str | None = None  # the tier whose languages are scored; None: all


@dataclass
class Comparison:
    """The rows, the sides' names and seed counts, and what was left out."""

    sides: list[str]
    seeds: dict[str, int]
    rows: list[Row]
    warnings: list[str] = field(default_factory=list)

    def winners(self) -> dict[str, list[str]]:
        """Row key -> the winning side (empty where no difference is significant)."""
        return {r.key: [r.winner] if r.winner else [] for r in self.rows}

    def to_dict(self) -> dict:
        """JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Comparison:
        """The inverse of to_dict."""
        rows = []
        for r in d["rows"]:
            cells = {n: Cell(c["score"], _pair(c["ci"]), c["delta"], _pair(c["delta_ci"])) for n, c in r["cells"].items()}
            rows.append(Row(**{**r, "cells": cells}))
        return cls(d["sides"], d["seeds"], rows, d.get("warnings", []))


def _pair(x: list | tuple | None) -> tuple[float, float] | None:
    return None if x is None else (x[0], x[1])


def context_scores(side: Side, comp: Comparison, seed: int = 0) -> dict[str, float | None]:
    """A side that takes no part in the comparison (the untrained model): its score in each row, same definitions."""
    out: dict[str, float | None] = {}
    for row in comp.rows:
        points = []
        for task in row.tasks:
            runs = [run[task] for run in side if task in run]
            if not runs:
                continue
            keep = None if row.tier is None else {l for r in runs for l, t in r.tiers.items() if t == row.tier}
            if keep is not None and not keep:
                continue
            p, _ = sig.score(runs, keep, seed)
            if p is not None:
                points.append(p)
        out[row.key] = round(sum(points) / len(points), 4) if points else None
    return out


Side = list[dict[str, sig.TaskItems]]  # one evaluation per seed


def find_evals(paths: list[Path]) -> dict[str, Path]:
    """name -> eval directory for each path: a directory with summary.json, or a run dir with eval/*/summary.json."""
    out: dict[str, Path] = {}
    for path in map(Path, paths):
        if path.is_file() and path.name == "summary.json":
            path = path.parent
        found = [path] if (path / "summary.json").is_file() else sorted(p.parent for p in path.glob("eval/*/summary.json"))
        if not found:
            raise DataError(f"{path}: no summary.json (expected DIR/summary.json or RUN/eval/*/summary.json)")
        for d in found:
            name = _label(d)
            base, n = name, 2
            while name in out:
                name, n = f"{base}#{n}", n + 1
            out[name] = d
    return out


def _label(path: Path) -> str:
    """A short, unique-enough name: the path relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _shared_keys(runs: list[sig.TaskItems]) -> set[tuple[str, str, str]]:
    keys = set(runs[0].stats)
    for r in runs[1:]:
        keys &= set(r.stats)
    return keys


def _align(sides: dict[str, Side], warnings: list[str]) -> tuple[list[str], dict[str, Side]]:
    """Tasks all sides have, each run restricted to the items every side has for the same seed index."""
    names = list(sides)
    n_seeds = min(len(s) for s in sides.values())
    if any(len(s) != n_seeds for s in sides.values()):
        warnings.append(f"sides have different numbers of seeds ({ {k: len(v) for k, v in sides.items()} }); "
                        f"compared on the first {n_seeds} of each")
    tag = {n: f"[{i}]" for i, n in enumerate(names, 1)}
    all_tasks = list(dict.fromkeys(t for s in sides.values() for t in s[0]))
    tasks = [t for t in all_tasks if all(t in run for s in sides.values() for run in s[:n_seeds])]
    for t in all_tasks:
        if t not in tasks:
            having = " ".join(tag[n] for n in names if t in sides[n][0])
            warnings.append(f"task {t} is not in every side (only {having}): not compared")
    for t in tasks:
        langs = {n: {k[0] for k in sides[n][0][t].stats} for n in names}
        for lang in sorted(set.union(*langs.values()) - set.intersection(*langs.values())):
            having = " ".join(tag[n] for n in names if lang in langs[n])
            warnings.append(f"{t}: language {lang} only in {having}: left out")
    aligned: dict[str, Side] = {n: [{} for _ in range(n_seeds)] for n in names}
    for task in tasks:
        for k in range(n_seeds):
            keys = _shared_keys([sides[n][k][task] for n in names])
            if not keys:
                warnings.append(f"{task}: no item in common (seed run {k + 1}); not compared")
                continue
            for n in names:
                aligned[n][k][task] = sig.restrict(sides[n][k][task], keys)
    tasks = [t for t in tasks if all(t in run for s in aligned.values() for run in s)]
    return tasks, aligned


def _row(key: str, label: str, metric: str, sides: dict[str, Side], tasks: list[str], tier: str | None,
         seed: int, unseen: bool = False) -> Row | None:
    """Compare the sides on the mean over `tasks` (one task: that task), optionally on one tier's languages."""
    def langs(task: str) -> set[str] | None:
        if tier is None:
            return None
        return {lang for side in sides.values() for run in side for lang, t in run[task].tiers.items() if t == tier}

    cells: dict[str, Cell] = {}
    n_items = n_langs = 0
    for name, side in sides.items():
        points, per_task = [], []
        for task in tasks:
            keep = langs(task)
            if keep is not None and not keep:
                continue
            p, d = sig.score([run[task] for run in side], keep, seed)
            if p is not None:
                points.append(p)
                per_task.append(d)
        if not points:
            return None
        size = min(len(d) for d in per_task)
        mean_draws = sum(d[:size] for d in per_task) / len(per_task)
        cells[name] = Cell(round(sum(points) / len(points), 4), sig.interval(mean_draws))
    best = max(cells, key=lambda n: cells[n].score)
    significant = len(cells) > 1
    for name in cells:
        if name == best:
            continue
        per_task = [[(other[task], mine[task]) for other, mine in zip(sides[name], sides[best])] for task in tasks]
        d = sig.mean_diff(per_task, tier, seed)
        cells[name].delta, cells[name].delta_ci = d.delta, d.ci
        n_items, n_langs = max(n_items, d.n_items), max(n_langs, d.n_languages)
        significant = significant and d.ci is not None and d.ci[1] < 0
    if len(cells) == 1:
        n_items = sum(len(sides[best][0][t].stats) for t in tasks)
    return Row(key, label, metric, n_items, n_langs, cells, best, best if significant else None, unseen, list(tasks),
               tier)


def compare_sides(sides: dict[str, Side], seed: int = 0) -> Comparison:
    """Per task, per tier and overall; winners only where significant."""
    if not sides:
        raise DataError("nothing to compare")
    warnings: list[str] = []
    tasks, aligned = _align(sides, warnings)
    first = aligned[next(iter(aligned))][0]
    unseen = [t for t in tasks if first[t].unseen_task]
    ordered = unseen + [t for t in tasks if t not in unseen]
    rows = []
    for task in ordered:
        row = _row(task, task, first[task].metric, aligned, [task], None, seed, unseen=task in unseen)
        if row:
            rows.append(row)
    tiers = {t for task in ordered for t in first[task].tiers.values()}
    group = unseen or ordered
    for tier in [t for t in TIER_ORDER if t in tiers] + sorted(tiers - set(TIER_ORDER)):
        row = _row(f"tier:{tier}", f"{tier}-resource, mean over {'held-out ' if unseen else ''}tasks", "score",
                   aligned, group, tier, seed)
        if row:
            rows.append(row)
    if len(unseen) > 1:
        row = _row("heldout_avg", "held-out tasks, mean", "score", aligned, unseen, None, seed)
        if row:
            rows.append(row)
    if len(ordered) > 1 and len(unseen) < len(ordered):
        row = _row("avg", "all tasks, mean", "score", aligned, ordered, None, seed)
        if row:
            rows.append(row)
    return Comparison(list(sides), {n: len(s) for n, s in sides.items()}, rows, warnings)


def compare_dirs(paths: list[Path], seed: int = 0) -> Comparison:
    """Compare evaluation directories (or run directories) as found by find_evals."""
    evals = find_evals(paths)
    return compare_sides({name: [sig.load_eval(d)] for name, d in evals.items()}, seed)


# --- rendering ----------------------------------------------------------------------------------------------------


def _num(x: float | None, signed: bool = False) -> str:
    return "–" if x is None else (f"{x:+.1f}" if signed else f"{x:.1f}")


def _ci(ci: tuple[float, float] | None, signed: bool = False) -> str:
    return "" if ci is None else f"[{_num(ci[0], signed)}, {_num(ci[1], signed)}]"


def _verdict(row: Row, name: str) -> str:
    if len(row.cells) < 2:
        return ""
    if name == row.winner:
        return "best, significant"
    if name == row.best:
        tied = any(c.delta == 0 for n, c in row.cells.items() if n != name)
        return "tied for best" if tied else "best, not significant"
    return ""


def to_text(comp: Comparison, width: int = WIDTH) -> str:
    """A vertical layout that fits `width` columns: one block per row, one line per side, names wrapped."""
    lines = []
    seeds = set(comp.seeds.values())
    seed_note = f", {seeds.pop()} seeds each" if len(seeds) == 1 and max(comp.seeds.values()) > 1 else ""
    lines.append(textwrap.fill(f"Paired bootstrap on the items all sides share; 95% intervals{seed_note}. "
                               "Δ: this side minus the best. A winner (*) only where the interval of every "
                               "difference excludes 0.", width))
    for i, name in enumerate(comp.sides, 1):
        lines.extend(textwrap.wrap(f"[{i}] {name}", width, subsequent_indent="    "))
    for row in comp.rows:
        lines.append("")
        tag = " †" if row.unseen else ""
        lines.extend(textwrap.wrap(f"{row.label}{tag} ({row.metric}; languages: {row.n_languages}, items in "
                                   f"common: {row.n_items})", width, subsequent_indent="    "))
        for i, name in enumerate(comp.sides, 1):
            cell = row.cells.get(name)
            if cell is None:
                continue
            mark = "*" if name == row.winner else " "
            delta = "" if cell.delta is None else f"Δ {_num(cell.delta, True)} {_ci(cell.delta_ci, True)}"
            line = f"  [{i}]{mark} {_num(cell.score):>5} {_ci(cell.ci):<14} {delta}".rstrip()
            verdict = _verdict(row, name)
            lines.append((line + ("  " + verdict if verdict else ""))[:width])
    for w in comp.warnings:
        lines.append("")
        lines.extend(textwrap.wrap("warning: " + w, width, subsequent_indent="  "))
    return "\n".join(lines)


def to_markdown(comp: Comparison) -> str:
    """One table per row kind: score [interval] per side, Δ to the best with its interval, winner in bold."""
    out = ["Paired bootstrap on the items all sides share; 95% intervals. Bold: significantly better than every "
           "other side; Δ: difference to the best side.", ""]
    out += [f"- [{i}] {name} ({comp.seeds[name]} seed{'s' if comp.seeds[name] > 1 else ''})"
            for i, name in enumerate(comp.sides, 1)]
    out += ["", "| | " + " | ".join(f"[{i}]" for i in range(1, len(comp.sides) + 1)) + " |",
            "|---|" + "---:|" * len(comp.sides)]
    for row in comp.rows:
        cells = []
        for name in comp.sides:
            c = row.cells.get(name)
            if c is None:
                cells.append("–")
                continue
            text = f"{_num(c.score)} {_ci(c.ci)}"
            if c.delta is not None:
                text += f"<br>Δ {_num(c.delta, True)} {_ci(c.delta_ci, True)}"
            cells.append(f"**{text}**" if name == row.winner else text)
        out.append(f"| {row.label}{' †' if row.unseen else ''} ({row.metric}, n={row.n_items}) | "
                   + " | ".join(cells) + " |")
    if comp.warnings:
        out += ["", *[f"- warning: {w}" for w in comp.warnings]]
    return "\n".join(out) + "\n"
