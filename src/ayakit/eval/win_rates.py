"""Win rates of judged pairs: win / tie / loss shares with bootstrap CIs, invalid pairs, and the judge's position
and length biases, per language and overall."""

from __future__ import annotations

from typing import Any


def _bootstrap(values: list[float], n_boot: int, seed: int) -> tuple[float, float]:
    import numpy as np

    if not values:
        return (float("nan"), float("nan"))
    arr = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), size=(n_boot, len(arr)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def summarize_pairs(pairs: list[dict], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Win / tie / loss with bootstrap CIs, invalid counts and judge-bias measures, for one group of pairs."""
    outcomes = [p["outcome"] for p in pairs]
    valid = [o for o in outcomes if o != "invalid"]
    out: dict[str, Any] = {"pairs": len(pairs), "valid": len(valid), "invalid": len(pairs) - len(valid),
                           "unparseable_verdicts": sum((p["verdict_ab"] is None) + (p["verdict_ba"] is None)
                                                       for p in pairs)}
    for name, hit in (("win", "a"), ("tie", "tie"), ("loss", "b")):
        flags = [1.0 if o == hit else 0.0 for o in valid]
        out[name] = sum(flags) / len(flags) if flags else None
        out[f"{name}_ci95"] = list(_bootstrap(flags, n_boot, seed)) if flags else None
    half = [1.0 if o == "a" else 0.5 if o == "tie" else 0.0 for o in valid]
    out["win_rate_ties_half"] = sum(half) / len(half) if half else None
    out["win_rate_ties_half_ci95"] = list(_bootstrap(half, n_boot, seed)) if half else None
    # Position bias: with both verdicts readable, the preferred model changes when the order is swapped.
    both = [p for p in pairs if p["verdict_ab"] is not None and p["verdict_ba"] is not None]
    decisive_orders = [p for p in both if "tie" not in (p["verdict_ab"], p["verdict_ba"])]
    out["position_flip_rate"] = (sum(p["verdict_ab"] == p["verdict_ba"] for p in decisive_orders)
                                 / len(decisive_orders)) if decisive_orders else None
    slots = [v for p in pairs for v in (p["verdict_ab"], p["verdict_ba"]) if v in ("A", "B")]
    out["first_shown_preferred"] = slots.count("A") / len(slots) if slots else None
    # Length bias: among decisive outcomes between answers of different length, how often the longer one won.
    decided = [p for p in pairs if p["outcome"] in ("a", "b") and len(p["answer_a"]) != len(p["answer_b"])]
    longer = [(p["outcome"] == "a") == (len(p["answer_a"]) > len(p["answer_b"])) for p in decided]
    out["longer_answer_wins"] = sum(longer) / len(longer) if longer else None
    out["length_unit"] = "characters"
    return out


def summarize(pairs: list[dict], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Per-language and overall summaries (overall pools every pair)."""
    langs = sorted({p["language"] for p in pairs})
    return {"overall": summarize_pairs(pairs, n_boot, seed),
            "languages": {lang: summarize_pairs([p for p in pairs if p["language"] == lang], n_boot, seed)
                          for lang in langs}}
