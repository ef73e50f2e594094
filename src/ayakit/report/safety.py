"""The report's safety section, built from run_dir/safety/summary.json (see ayakit/safety/summary.py for its shape)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ayakit.errors import DataError
from ayakit.report.model import Section, Table
from ayakit.safety.summary import SUMMARY, tables


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def safety_section(run_dir: Path, out_dir: Path) -> Section | None:
    """A Section with the harm, over-refusal, toxicity, identity-group and distillation tables; None without results."""
    path = Path(run_dir) / "safety" / SUMMARY
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    sec = Section("safety", "Safety")
    sec.paragraphs.append(
        "Harmful rates are measured on the held-out XSafety test split (disjoint from the distillation prompts). "
        "Toxicity follows the RealToxicityPrompts protocol: k sampled continuations per prompt, expected maximum "
        "toxicity and the probability of at least one continuation scored above 0.5; a language the scorer does "
        "not cover is shown as not covered. Intervals are 95% bootstrap intervals over prompts.")
    for t in tables(data):  # rebuilt from the data, so an older summary still renders the current tables
        sec.tables.append(Table(t["title"], [str(c) for c in t["columns"]],
                                [[_cell(c) for c in row] for row in t["rows"]], note=t.get("note", "")))
    return sec if sec.tables else None
