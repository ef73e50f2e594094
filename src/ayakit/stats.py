"""Statistics every stage reports with (eval, safety): bootstrap confidence intervals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap_ci(stats: np.ndarray, aggregate: Callable[[np.ndarray], float], n_resamples: int = 1000,
                 seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """A percentile bootstrap (1 - alpha) confidence interval over items (rows), deterministic for a seed."""
    stats = np.asarray(stats, dtype=float)
    if len(stats) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(stats), size=(n_resamples, len(stats)))
    values = np.array([aggregate(stats[row]) for row in idx])
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))
