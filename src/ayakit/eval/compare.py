"""Models side by side, in the layout of the paper's Table 5 (per task) and Table 7 (per task and resource tier)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ayakit.errors import DataError

TIERS = ("high", "mid", "low")
TIER_LABEL = {"high": "HR", "mid": "MR", "low": "LR"}


@dataclass
class Table:
    """One comparison table: a score per (model, column); the best model per column is its winner."""

    title: str
    columns: list[str]
    rows: list[tuple[str, list[float | None]]] = field(default_factory=list)

    def winners(self) -> list[set[str]]:
        """Per column, the models with the highest score (ties share)."""
        out = []
        for c in range(len(self.columns)):
            scores = [(m, v[c]) for m, v in self.rows if v[c] is not None]
            best = max((s for _, s in scores), default=None)
            out.append({m for m, s in scores if best is not None and s == best})
        return out

    def to_markdown(self) -> str:
        """A Markdown table; winners in bold."""
        win = self.winners()
        lines = [f"**{self.title}**", "", "| model | " + " | ".join(self.columns) + " |",
                 "|---|" + "---:|" * len(self.columns)]
        for model, values in self.rows:
            cells = []
            for c, v in enumerate(values):
                text = "–" if v is None else f"{v:.1f}"
                cells.append(f"**{text}**" if model in win[c] and len(self.rows) > 1 else text)
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def to_rich(self):  # noqa: ANN201 - rich.table.Table, imported lazily
        """A rich table; winners in bold green with a star."""
        from rich.table import Table as RichTable

        win = self.winners()
        table = RichTable(title=self.title)
        table.add_column("model")
        for col in self.columns:
            table.add_column(col, justify="right")
        for model, values in self.rows:
            cells = []
            for c, v in enumerate(values):
                text = "–" if v is None else f"{v:.1f}"
                cells.append(f"[bold green]{text}★[/]" if model in win[c] and len(self.rows) > 1 else text)
            table.add_row(model, *cells)
        return table


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def compare_table(summaries: dict[str, dict]) -> list[Table]:
    """Tables comparing models (name -> summary.json content): per task with unseen / seen averages (Table 5),
    and per task and resource tier (Table 7)."""
    tasks: list[str] = []
    for s in summaries.values():
        for name in s.get("tasks", {}):
            if name not in tasks:
                tasks.append(name)
    unseen = [t for t in tasks if any(s["tasks"].get(t, {}).get("unseen_task") for s in summaries.values())]
    seen = [t for t in tasks if t not in unseen]
    ordered = unseen + seen

    def score(s: dict, task: str, tier: str | None = None) -> float | None:
        t = s.get("tasks", {}).get(task)
        if not t:
            return None
        if tier is None:
            return t.get("score")
        return (t.get("by_tier", {}).get(tier) or {}).get("score")

    per_task = Table("Per task (the paper's Table 5 layout): unseen tasks, then seen; averages over tasks",
                     [*ordered, "avg unseen", "avg seen"])
    per_tier = Table("Per resource tier (the paper's Table 7 layout)",
                     [f"{t} {TIER_LABEL[tier]}" for t in ordered for tier in TIERS] +
                     [f"avg {TIER_LABEL[tier]}" for tier in TIERS])
    for model, s in summaries.items():
        values = [score(s, t) for t in ordered]
        per_task.rows.append((model, [*values, _mean(values[: len(unseen)]), _mean(values[len(unseen):])]))
        tier_values = [score(s, t, tier) for t in ordered for tier in TIERS]
        avgs = [_mean([score(s, t, tier) for t in ordered]) for tier in TIERS]
        per_tier.rows.append((model, [*tier_values, *avgs]))
    # drop tier columns nobody has (e.g. XWinograd has only high-resource languages)
    keep = [c for c in range(len(per_tier.columns)) if any(v[c] is not None for _, v in per_tier.rows)]
    per_tier.columns = [per_tier.columns[c] for c in keep]
    per_tier.rows = [(m, [v[c] for c in keep]) for m, v in per_tier.rows]
    return [per_task, per_tier]


def find_summaries(paths: list[Path]) -> dict[str, dict]:
    """name -> summary for each path: a directory with summary.json, or a run dir with eval/*/summary.json."""
    out: dict[str, dict] = {}
    for path in paths:
        path = Path(path)
        if (path / "summary.json").is_file():
            found = [path / "summary.json"]
        elif path.is_file() and path.name == "summary.json":
            found = [path]
        else:
            found = sorted(path.glob("eval/*/summary.json"))
        if not found:
            raise DataError(f"{path}: no summary.json (expected DIR/summary.json or RUN/eval/*/summary.json)")
        for f in found:
            try:
                summary = json.loads(f.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise DataError(f"{f}:{exc.lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(summary, dict) or "tasks" not in summary:
                raise DataError(f"{f}: not an ayakit eval summary (no 'tasks')")
            run = f.parent.parent
            name = f"{run.parent.name}/{f.parent.name}" if run.name == "eval" else f.parent.resolve().name
            base, n = name, 2
            while name in out:
                name, n = f"{base}#{n}", n + 1
            out[name] = summary
    return out
