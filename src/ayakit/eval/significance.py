"""Paired bootstrap of score differences between evaluated models, on the items both answered.

The score of a model mirrors the harness: per (language, prompt) the metric over the language's items; per language
the median over prompts; per task the mean over languages (a tier: over its languages). A difference is computed
only on the items both sides scored (same task, language, prompt and item id); items are resampled with the same
indices for both sides, so what the two models share (item difficulty) cancels. With several seeds per side
(ablations), pairs of runs with the same seed are compared and the seeds are resampled too. A difference is
significant when its 95% interval excludes 0.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ayakit.errors import DataError
from ayakit.eval.metrics import get_metric

N_RESAMPLES = 1000  # mean metrics (accuracy, F1, ...): vectorised
N_RESAMPLES_CORPUS = 200  # corpus metrics (chrF++, spBLEU): one sacrebleu score per resample
LEVEL = 0.95


@dataclass
class TaskItems:
    """One evaluated task of one model: the main metric's per-item statistics, keyed (language, prompt, item)."""

    metric: str
    stats: dict[tuple[str, str, str], list[float]]
    tiers: dict[str, str]  # language -> tier, as the summary recorded it
    unseen_task: bool = False


@dataclass
class Diff:
    """A paired difference (first minus second) with its bootstrap interval, on what both sides share."""

    delta: float | None
    ci: tuple[float, float] | None
    n_items: int
    n_languages: int

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0."""
        return self.ci is not None and (self.ci[0] > 0 or self.ci[1] < 0)


def load_eval(eval_dir: Path) -> dict[str, TaskItems]:
    """Per-item statistics of every task of an evaluation directory (summary.json + <task>.jsonl)."""
    eval_dir = Path(eval_dir)
    summary_path = eval_dir / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{eval_dir}: no summary.json") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{summary_path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    out = {}
    for name, task in summary.get("tasks", {}).items():
        path = eval_dir / f"{name}.jsonl"
        if not path.is_file():
            raise DataError(f"{path}: missing (summary.json lists task {name!r}; per-item results are needed for a "
                            "paired comparison)")
        metric = task["metric"]
        stats = {}
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    stats[(row["language"], str(row["prompt_id"]), str(row["id"]))] = row["stats"][metric]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise DataError(f"{path}:{lineno}: not an ayakit eval row ({exc})") from None
        tiers = {lang: v.get("tier", "unlisted") for lang, v in task.get("by_language", {}).items()}
        out[name] = TaskItems(metric, stats, tiers, bool(task.get("unseen_task")))
    return out


def _pair_arrays(a: TaskItems, b: TaskItems, languages: set[str] | None
                 ) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """language -> prompt -> (stats of a, stats of b), rows aligned on the shared item ids."""
    shared = sorted(set(a.stats) & set(b.stats))
    by_lang: dict[str, dict[str, list[tuple[str, str, str]]]] = {}
    for key in shared:
        if languages is None or key[0] in languages:
            by_lang.setdefault(key[0], {}).setdefault(key[1], []).append(key)
    out = {}
    for lang, prompts in by_lang.items():
        # keep the items every shared prompt has, so one resample of item indices serves all prompts
        ids = set.intersection(*({k[2] for k in keys} for keys in prompts.values()))
        if not ids:
            continue
        order = sorted(ids)
        out[lang] = {p: (np.array([a.stats[(lang, p, i)] for i in order], dtype=float),
                         np.array([b.stats[(lang, p, i)] for i in order], dtype=float)) for p in sorted(prompts)}
    return out


def _score_draws(metric, arrays: dict[str, dict[str, np.ndarray]], idx: dict[str, np.ndarray] | None) -> np.ndarray:
    """Task score (median over prompts of the mean over languages) for each resample (or the point, idx None)."""
    prompts = sorted(set.intersection(*(set(p) for p in arrays.values())))
    per_lang = []
    for lang, by_prompt in arrays.items():
        cols = []
        for p in prompts:
            s = by_prompt[p]
            if idx is None:
                cols.append(np.array([metric.aggregate(s)]))
            elif getattr(metric, "fn", None) is not None:  # a mean metric
                cols.append(s[:, 0][idx[lang]].mean(axis=1) * 100)
            else:
                cols.append(np.array([metric.aggregate(s[row]) for row in idx[lang]]))
        per_lang.append(np.stack(cols, axis=1))  # resamples x prompts
    return np.median(np.mean(np.stack(per_lang), axis=0), axis=1)


def paired_draws(pairs: list[tuple[TaskItems, TaskItems]], languages: set[str] | None = None, seed: int = 0
                 ) -> tuple[float | None, np.ndarray | None, int, int]:
    """Point difference and bootstrap draws (first minus second) over pairs of runs of one task (one pair per seed)."""
    metric = get_metric(pairs[0][0].metric)
    n_res = N_RESAMPLES if getattr(metric, "fn", None) is not None else N_RESAMPLES_CORPUS
    rng = np.random.default_rng(seed)
    points, draws, n_items, langs = [], [], 0, set()
    for a, b in pairs:
        arrays = _pair_arrays(a, b, languages)
        if not arrays:
            continue
        idx = {lang: rng.integers(0, len(next(iter(p.values()))[0]), size=(n_res, len(next(iter(p.values()))[0])))
               for lang, p in arrays.items()}
        side = [{lang: {p: v[i] for p, v in ps.items()} for lang, ps in arrays.items()} for i in (0, 1)]
        points.append(float(_score_draws(metric, side[0], None)[0] - _score_draws(metric, side[1], None)[0]))
        draws.append(_score_draws(metric, side[0], idx) - _score_draws(metric, side[1], idx))
        n_items = max(n_items, sum(len(next(iter(p.values()))[0]) for p in arrays.values()))
        langs |= set(arrays)
    if not points:
        return None, None, 0, 0
    stacked = np.stack(draws)  # seeds x resamples
    if len(points) > 1:  # resample the seeds too
        pick = rng.integers(0, len(points), size=(stacked.shape[1], len(points)))
        total = stacked[pick, np.arange(stacked.shape[1])[:, None]].mean(axis=1)
    else:
        total = stacked[0]
    return float(np.mean(points)), total, n_items, len(langs)


def interval(draws: np.ndarray) -> tuple[float, float]:
    """The percentile interval at LEVEL."""
    tail = (1 - LEVEL) / 2
    lo, hi = np.quantile(draws[np.isfinite(draws)], [tail, 1 - tail])
    return round(float(lo), 4), round(float(hi), 4)


def diff(pairs: list[tuple[TaskItems, TaskItems]], languages: set[str] | None = None, seed: int = 0) -> Diff:
    """The paired difference of one task, optionally on some languages only (a tier)."""
    point, draws, n, n_langs = paired_draws(pairs, languages, seed)
    if point is None:
        return Diff(None, None, 0, 0)
    return Diff(round(point, 4), interval(draws), n, n_langs)


def mean_diff(per_task: list[list[tuple[TaskItems, TaskItems]]], tier: str | None = None, seed: int = 0) -> Diff:
    """The difference of the mean over tasks (each task's languages, or a tier's), paired across tasks by resample."""
    points, draws, n, langs = [], [], 0, 0
    for pairs in per_task:
        keep = None
        if tier is not None:
            keep = {lang for a, b in pairs for lang, t in {**a.tiers, **b.tiers}.items() if t == tier}
            if not keep:
                continue
        p, d, k, nl = paired_draws(pairs, keep, seed)
        if p is None:
            continue
        points.append(p)
        draws.append(d)
        n, langs = n + k, max(langs, nl)
    if not points:
        return Diff(None, None, 0, 0)
    size = min(len(d) for d in draws)
    return Diff(round(statistics.fmean(points), 4), interval(np.mean([d[:size] for d in draws], axis=0)), n, langs)


def score(runs: list[TaskItems], languages: set[str] | None = None, seed: int = 0
          ) -> tuple[float | None, np.ndarray | None]:
    """One side's task score (mean over its runs, e.g. seeds) and its bootstrap draws over items and runs."""
    metric = get_metric(runs[0].metric)
    n_res = N_RESAMPLES if getattr(metric, "fn", None) is not None else N_RESAMPLES_CORPUS
    rng = np.random.default_rng(seed)
    points, draws = [], []
    for run in runs:
        arrays = {lang: {p: a for p, (a, _) in ps.items()} for lang, ps in _pair_arrays(run, run, languages).items()}
        if not arrays:
            continue
        idx = {lang: rng.integers(0, len(next(iter(p.values()))), size=(n_res, len(next(iter(p.values())))))
               for lang, p in arrays.items()}
        points.append(float(_score_draws(metric, arrays, None)[0]))
        draws.append(_score_draws(metric, arrays, idx))
    if not points:
        return None, None
    stacked = np.stack(draws)
    if len(points) > 1:
        pick = rng.integers(0, len(points), size=(stacked.shape[1], len(points)))
        return float(np.mean(points)), stacked[pick, np.arange(stacked.shape[1])[:, None]].mean(axis=1)
    return points[0], stacked[0]


def restrict(run: TaskItems, keys: set[tuple[str, str, str]]) -> TaskItems:
    """A copy of one run limited to the given (language, prompt, item) keys."""
    return TaskItems(run.metric, {k: v for k, v in run.stats.items() if k in keys}, run.tiers, run.unseen_task)
