"""Human evaluation: win rates per language with bootstrap CIs, inter-annotator agreement, agreement with the judge.

Conventions (documented so numbers can be compared with the paper's §4.3.1 / Table 16):
- A rating's outcome is named by model: the preferred model, "tie" (both good / both bad) or none (an
  incomprehensible prompt, left out of win rates and of human-vs-judge agreement).
- Win rate of `model` against `opponent` = wins / rated comparisons (ties count as not won); tie and loss rates
  are given beside it. The 95% interval is a percentile bootstrap that resamples pairs (all ratings of a
  resampled pair come along), so several ratings of one pair are not counted as independent.
- Inter-annotator agreement uses pairs rated by two or more people: the first two ratings (in time) of each pair
  form the rater-1 / rater-2 columns, over five labels (model_a wins, model_b wins, both good, both bad,
  incomprehensible); Cohen's kappa = (p_o - p_e) / (1 - p_e) with p_e from the two columns' marginals.
- Human vs judge: each human rating with an outcome, on a pair the judge rated, agrees when both name the same
  model or both say tie (the paper: 70-77%).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ayakit.annotate.load import judge_winner, pair_key, read_rows
from ayakit.annotate.models import Comparison, Pair
from ayakit.errors import DataError

ALL = "all"


@dataclass
class Rating:
    """One human comparison in model terms."""

    pair: str  # pair key
    language: str
    model_a: str
    model_b: str
    label: str  # model_a | model_b | both_good | both_bad | incomprehensible (relative to the pair's columns)
    winner: str | None  # model name, "tie", or None
    judge: str | None  # the judge's winner on this pair, when known


def to_label(choice: str, shown_a: str, model_a: str) -> str:
    """A screen choice (a / b / both_good / ...) as a label relative to the pair's model_a / model_b columns."""
    if choice in ("a", "b"):
        a_is_model_a = shown_a == model_a
        return "model_a" if (choice == "a") == a_is_model_a else "model_b"
    return choice


def ratings(session: Session, judge: dict[str, str] | None = None) -> list[Rating]:
    """All human comparisons, oldest first; judge verdicts from `judge` (pair key -> winner) or the loaded pairs."""
    out = []
    stmt = select(Comparison, Pair).join(Pair, Pair.id == Comparison.pair_id).order_by(Comparison.created_at,
                                                                                       Comparison.id)
    for cmp, pair in session.execute(stmt):
        label = to_label(cmp.choice, cmp.shown_a, pair.model_a)
        winner = {"model_a": pair.model_a, "model_b": pair.model_b, "both_good": "tie", "both_bad": "tie"}.get(label)
        verdict = judge.get(pair.external_id) if judge is not None else None
        out.append(Rating(pair.external_id, pair.language, pair.model_a, pair.model_b, label, winner,
                          verdict if verdict is not None else pair.judge_winner))
    return out


def load_judge(path: str | Path) -> dict[str, str]:
    """Pair key -> judge winner from an `ayakit judge` JSONL/Parquet file (rows without a verdict are skipped)."""
    out: dict[str, str] = {}
    for where, row in read_rows(Path(path)):
        missing = [c for c in ("id", "model_a", "model_b") if row.get(c) in (None, "")]
        if missing:
            raise DataError(f"{where}: missing {', '.join(missing)}")
        winner = judge_winner(where, row)
        if winner is not None:
            out[pair_key(row)] = winner
    if not out:
        raise DataError(f"{path}: no judge verdicts found (expected a winner/verdict/preferred column)")
    return out


def bootstrap_ci(per_item: list[tuple[int, int]], n_boot: int, seed: int, level: float = 0.95
                 ) -> tuple[float, float]:
    """Percentile bootstrap CI of sum(wins) / sum(n), resampling items; per_item = [(wins, n), ...]."""
    wins = np.array([w for w, _ in per_item], dtype=float)
    ns = np.array([n for _, n in per_item], dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(per_item), size=(n_boot, len(per_item)))
    totals = ns[idx].sum(axis=1)
    rates = np.divide(wins[idx].sum(axis=1), totals, out=np.zeros(n_boot), where=totals > 0)
    lo, hi = np.quantile(rates, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def win_rates(rows: list[Rating], n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Per (model_a, model_b) matchup and language (and over all languages): human and judge win rates of model_a."""
    groups: dict[tuple[str, str, str], list[Rating]] = defaultdict(list)
    for r in rows:
        if r.winner is None:
            continue
        groups[(r.model_a, r.model_b, r.language)].append(r)
        groups[(r.model_a, r.model_b, ALL)].append(r)
    out = []
    for (model, opponent, lang), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                                 kv[0][2] == ALL, kv[0][2])):
        per_pair: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        counts = Counter()
        for r in group:
            won = r.winner == model
            per_pair[r.pair][0] += won
            per_pair[r.pair][1] += 1
            counts["win" if won else "tie" if r.winner == "tie" else "loss"] += 1
        n = len(group)
        lo, hi = bootstrap_ci([tuple(v) for v in per_pair.values()], n_boot, seed)
        judged = {r.pair: r.judge for r in group if r.judge is not None}
        judge_win = (sum(w == model for w in judged.values()) / len(judged)) if judged else None
        out.append({"model": model, "opponent": opponent, "language": lang, "pairs": len(per_pair), "ratings": n,
                    "win_rate": counts["win"] / n, "tie_rate": counts["tie"] / n, "loss_rate": counts["loss"] / n,
                    "ci95": [lo, hi], "judge_pairs": len(judged), "judge_win_rate": judge_win})
    return out


def cohen_kappa(first: list[str], second: list[str]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items (None when chance agreement is 1)."""
    n = len(first)
    if n == 0:
        return None
    p_o = sum(a == b for a, b in zip(first, second)) / n
    c1, c2 = Counter(first), Counter(second)
    p_e = sum(c1[k] * c2[k] for k in set(c1) | set(c2)) / (n * n)
    if p_e >= 1.0:
        return None
    return (p_o - p_e) / (1 - p_e)


def inter_annotator(rows: list[Rating]) -> dict[str, dict]:
    """Raw agreement and Cohen's kappa on doubly-rated pairs, per language and over all."""
    by_pair: dict[str, list[Rating]] = defaultdict(list)
    for r in rows:
        by_pair[r.pair].append(r)
    cols: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for group in by_pair.values():
        if len(group) < 2:
            continue
        for lang in (group[0].language, ALL):
            cols[lang][0].append(group[0].label)
            cols[lang][1].append(group[1].label)
    out = {}
    for lang in sorted(cols, key=lambda k: (k == ALL, k)):
        first, second = cols[lang]
        out[lang] = {"pairs": len(first), "raw_agreement": sum(a == b for a, b in zip(first, second)) / len(first),
                     "kappa": cohen_kappa(first, second)}
    return out


def human_vs_judge(rows: list[Rating]) -> dict[str, dict]:
    """Share of human ratings whose outcome matches the judge's on the same pair, per language and over all."""
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        if r.winner is None or r.judge is None:
            continue
        for lang in (r.language, ALL):
            hits[lang][0] += r.winner == r.judge
            hits[lang][1] += 1
    return {lang: {"ratings": n, "agreement": agree / n}
            for lang, (agree, n) in sorted(hits.items(), key=lambda kv: (kv[0] == ALL, kv[0]))}


def report(session: Session, judge_path: str | Path | None = None, n_boot: int = 1000, seed: int = 0) -> dict:
    """The whole human-evaluation report as a JSON-able dict."""
    judge = load_judge(judge_path) if judge_path else None
    rows = ratings(session, judge)
    return {
        "ratings": len(rows),
        "incomprehensible": sum(r.label == "incomprehensible" for r in rows),
        "win_rates": win_rates(rows, n_boot, seed),
        "inter_annotator": inter_annotator(rows),
        "human_vs_judge": human_vs_judge(rows),
        "settings": {"bootstrap": n_boot, "seed": seed, "judge": str(judge_path) if judge_path else None},
    }
