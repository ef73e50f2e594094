"""Numbers read off eval summaries and mixture stats: overall and per-tier scores, deltas, the headline lines."""

from __future__ import annotations

from statistics import mean
from typing import Any

from ayakit import languages as L

TIER_ORDER = L.TIERS  # high, mid, low, then "unlisted" (outside the Aya 101: no tier is invented)


def tier_of(code: str, fallback: str | None = None) -> str:
    """A language variety's resource tier (`unlisted` outside the Aya 101); the fallback, else 'unknown', when the
    code names no language."""
    try:
        return L.tier(code)
    except ValueError:
        return fallback or "unknown"


def tasks(summary: dict[str, Any], heldout: bool = False) -> dict[str, dict[str, Any]]:
    """The summary's tasks; with heldout=True only the unseen ones (all of them when none is marked unseen)."""
    all_tasks = {k: v for k, v in (summary.get("tasks") or {}).items() if isinstance(v, dict)}
    if heldout:
        unseen = {k: v for k, v in all_tasks.items() if v.get("unseen_task")}
        return unseen or all_tasks
    return all_tasks


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def overall(summary: dict[str, Any], heldout: bool = True) -> float | None:
    """The mean over tasks of each task's score (the paper's 'Avg' column)."""
    vals = [s for t in tasks(summary, heldout).values() if (s := _num(t.get("score"))) is not None]
    return mean(vals) if vals else None


def by_tier(summary: dict[str, Any], heldout: bool = True) -> dict[str, float]:
    """Per tier, the mean over tasks of each task's tier score."""
    acc: dict[str, list[float]] = {}
    for t in tasks(summary, heldout).values():
        for tier, row in (t.get("by_tier") or {}).items():
            s = _num(row.get("score") if isinstance(row, dict) else row)
            if s is not None:
                acc.setdefault(tier, []).append(s)
    return {tier: mean(acc[tier]) for tier in sorted(acc, key=_tier_key)}


def _tier_key(tier: str) -> int:
    return TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER)


def metric_name(summary: dict[str, Any], heldout: bool = True) -> str:
    """The metric the held-out tasks share ('accuracy'), or 'score' when they differ."""
    names = {str(t.get("metric", "score")) for t in tasks(summary, heldout).values()}
    return names.pop() if len(names) == 1 else "score"


def trained_languages(stats: dict[str, Any] | None) -> dict[str, int]:
    """Language -> number of training examples in the realised mixture."""
    if not stats:
        return {}
    realised = (stats.get("counts") or {}).get("language") or (stats.get("realised") or {}).get("language") or {}
    return {k: v for k, v in realised.items() if isinstance(v, (int, float)) and v > 0}


def digits(summary: dict[str, Any] | None) -> int:
    """Decimals to show: scores on the 0-100 scale get one, fractions three."""
    return 1 if (summary or {}).get("scale") == "0-100" else 3


def arrow(before: float | None, after: float | None, nd: int = 2, label: str = "untrained") -> str:
    """'27.1 -> 61.0 (+33.9)'; one side alone when the other is missing."""
    if before is None and after is None:
        return "n/a"
    if before is None:
        return f"{after:.{nd}f}"
    if after is None:
        return f"{before:.{nd}f} ({label} only)"
    return f"{before:.{nd}f} -> {after:.{nd}f} ({after - before:+.{nd}f})"


def headline(stats: dict[str, Any] | None, baseline: dict[str, Any] | None,
             trained: dict[str, Any] | None, label: str = "untrained") -> list[str]:
    """Three lines: languages trained; held-out score before -> after; the same by tier (label: the baseline's kind)."""
    langs = trained_languages(stats)
    tiers: dict[str, int] = {}
    for code in langs:
        tier = tier_of(code)
        tiers[tier] = tiers.get(tier, 0) + 1
    tier_text = ", ".join(f"{tiers[t]} {t}" for t in sorted(tiers, key=_tier_key))
    lines = [f"languages trained: {len(langs)}" + (f" ({tier_text})" if tier_text else "")]
    ref = trained or baseline
    if ref is None:
        return lines + ["held-out score: not evaluated", "by tier: not evaluated"]
    metric = metric_name(ref)
    nd = 1 if digits(ref) == 1 else 2
    n_tasks = len(tasks(ref, heldout=True))
    b_all = overall(baseline) if baseline else None
    t_all = overall(trained) if trained else None
    lines.append(f"held-out {metric} ({n_tasks} task{'s' if n_tasks != 1 else ''}), {label} -> trained: "
                 f"{arrow(b_all, t_all, nd, label)}")
    b_tier = by_tier(baseline) if baseline else {}
    t_tier = by_tier(trained) if trained else {}
    parts = [f"{t}-resource {arrow(b_tier.get(t), t_tier.get(t), nd, label)}"
             for t in sorted(set(b_tier) | set(t_tier), key=_tier_key)]
    lines.append("by tier: " + ("; ".join(parts) if parts else "n/a"))
    return lines
