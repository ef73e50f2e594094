"""`ayakit report --rollup`: merge language varieties into the paper's 101 rows (yue-Hant, zho-Hans -> zho).

The report keeps varieties distinct by default; a rolled-up report says which varieties it merged, and into what.
Counts add up; a merged per-language score is the mean of its varieties' scores weighted by their item counts
(`n`, else equal weights).
"""

from __future__ import annotations

import copy
from typing import Any

from ayakit import languages as L
from ayakit.report.artifacts import RunArtifacts


def _row(code: str) -> str:
    try:
        return L.rollup(code)
    except L.UnknownLanguageError:
        return code


def merge_counts(counts: dict[str, Any], merged: dict[str, set[str]]) -> dict[str, Any]:
    """Language -> count, summed per rollup row; `merged` collects row -> the varieties it took."""
    out: dict[str, Any] = {}
    for code, n in counts.items():
        row = _row(code)
        merged.setdefault(row, set()).add(code)
        if isinstance(n, (int, float)) and not isinstance(n, bool):
            out[row] = out.get(row, 0) + n
    return out


def merge_scores(by_language: dict[str, Any], merged: dict[str, set[str]]) -> dict[str, Any]:
    """Per-language score rows merged per rollup row (weighted by `n` where given)."""
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for code, row in by_language.items():
        if isinstance(row, dict):
            groups.setdefault(_row(code), []).append((code, row))
    out: dict[str, Any] = {}
    for target, rows in groups.items():
        merged.setdefault(target, set()).update(code for code, _ in rows)
        scored = [(r, float(r.get("n") or 1)) for _, r in rows if isinstance(r.get("score"), (int, float))]
        new = dict(rows[0][1])
        new["tier"] = L.tier(target) if target else new.get("tier")
        if scored:
            weight = sum(w for _, w in scored)
            new["score"] = sum(float(r["score"]) * w for r, w in scored) / weight
            if all(r.get("n") is not None for r, _ in scored):
                new["n"] = int(weight)
        if len(rows) > 1:
            new.pop("ci", None)  # an interval of one variety is not the merged row's
        out[target] = new
    return out


def rollup_artifacts(art: RunArtifacts) -> dict[str, list[str]]:
    """Merge the run's mixture counts and evaluation scores to the paper's rows, in place; return row -> the
    varieties merged into it (only rows that took more than one variety)."""
    merged: dict[str, set[str]] = {}
    if art.stats:
        stats = art.stats = copy.deepcopy(art.stats)
        stats["rolled_up"] = True
        counts = stats.get("counts") or {}
        if isinstance(counts.get("language"), dict):
            counts["language"] = merge_counts(counts["language"], merged)
        realised = stats.get("realised") or {}
        if isinstance(realised.get("language"), dict):
            realised["language"] = merge_counts(realised["language"], merged)
        for f in (stats.get("filters") or {}).values():
            if isinstance(f, dict) and isinstance(f.get("by_language"), dict):
                f["by_language"] = merge_counts(f["by_language"], merged)
    for model_id, summary in list(art.evals.items()):
        summary = art.evals[model_id] = copy.deepcopy(summary)
        for task in (summary.get("tasks") or {}).values():
            if isinstance(task, dict) and isinstance(task.get("by_language"), dict):
                task["by_language"] = merge_scores(task["by_language"], merged)
    return {row: sorted(codes) for row, codes in sorted(merged.items()) if len(codes) > 1}


def rollup_note(merged: dict[str, list[str]]) -> str:
    """The sentence a rolled-up report starts its language tables with."""
    if not merged:
        return "Rolled up to the paper's 101 languages (--rollup): no varieties needed merging."
    parts = [f"{', '.join(codes)} -> {row}" for row, codes in merged.items()]
    return ("Rolled up to the paper's 101 languages (--rollup): language varieties are merged into one row each, "
            "counts summed and scores averaged over the varieties (weighted by items): " + "; ".join(parts)
            + ". Every other variety is shown under its row's code.")
