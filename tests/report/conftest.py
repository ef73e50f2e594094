"""A fake run directory in the stages' file formats (generated in code, not committed binaries)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ayakit import languages as L

LANGS = ["eng", "fra", "swh", "yor", "hin", "zho"]


def _summary(model: str, seed: int, lift: float) -> dict:
    rng = random.Random(seed)
    tasks = {}
    for task, chance in (("xcopa_mini", 50.0), ("cldr_month", 25.0)):
        by_language = {}
        for code in LANGS:
            tier = L.get(code).tier
            score = min(100.0, chance + lift * rng.random())
            by_language[code] = {"score": score, "ci": [max(0, score - 10), min(100, score + 10)], "n": 20,
                                 "tier": tier, "by_prompt": {"p0": score}}
        by_tier = {}
        for tier in ("high", "mid", "low"):
            vals = [v["score"] for v in by_language.values() if v["tier"] == tier]
            if vals:
                s = sum(vals) / len(vals)
                by_tier[tier] = {"score": s, "ci": [s - 5, s + 5], "n_languages": len(vals)}
        score = sum(v["score"] for v in by_language.values()) / len(by_language)
        tasks[task] = {"metric": "accuracy", "kind": "choice", "unseen_task": task == "xcopa_mini", "score": score,
                       "ci": [score - 4, score + 4], "chance": chance, "by_language": by_language,
                       "by_tier": by_tier}
    return {"model": model, "fingerprint": "abc", "suite": "aya-mini", "scale": "0-100", "tasks": tasks,
            "by_tier": {}, "notes": ["fixture"]}


def write_item_rows(eval_dir: Path, summary: dict, seed: int, n: int = 20) -> None:
    """Per-item rows (<task>.jsonl) whose accuracy per language is close to the summary's score."""
    rng = random.Random(seed)
    for task, t in summary["tasks"].items():
        rows = []
        for code, v in t["by_language"].items():
            for i in range(n):
                ok = float(rng.random() * 100 < v["score"])
                rows.append({"id": f"{code}-{i}", "language": code, "prompt_id": "p0", "stats": {t["metric"]: [ok]}})
        (eval_dir / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_fake_run(run_dir: Path) -> Path:
    """A run directory with recipe, data stats, fertility, metrics and two eval summaries."""
    (run_dir / "data").mkdir(parents=True)
    (run_dir / "tokenizer").mkdir()
    (run_dir / "model").mkdir()
    (run_dir / "recipe.yaml").write_text("name: fake\ndescription: a fixture run\nseed: 1\n"
                                         "data:\n  budget: 600\n  sources: [{name: cldr, type: embedded}]\n"
                                         "report:\n  top_languages: 2\n", encoding="utf-8")
    lang_counts = {c: 100 for c in LANGS}
    stats = {"budget": 600, "total": 600, "seed": 1, "requested": {"source": {"cldr": 0.7, "bible": 0.3}},
             "realised": {"source": {"cldr": 0.72, "bible": 0.28}},
             "counts": {"source": {"cldr": 432, "bible": 168}, "kind": {"templated": 432, "translated": 168},
                        "language": lang_counts, "dataset": {"months": 300, "days": 132, "verses": 168}},
             "repetition": {"source": {"cldr": 1.0, "bible": 2.5}},
             "filters": {"langid": {"removed": 7, "by_language": {"yor": 5, "swh": 2}}},
             "available": {"cldr": {"months": 900}}, "skipped_sources": [], "errors": []}
    (run_dir / "data" / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    fert = {"languages": {c: {"tokens_per_char": 0.3 + 0.05 * i, "tokens_per_word": 1.2 + 0.1 * i,
                              "tier": L.get(c).tier, "n": 50} for i, c in enumerate(LANGS)},
            "tiers": {"high": {"tokens_per_char": 0.35, "tokens_per_word": 1.3, "n": 3}}}
    (run_dir / "tokenizer" / "fertility.json").write_text(json.dumps(fert), encoding="utf-8")
    lines = [{"step": s, "loss": 5.0 / (1 + s / 10), "lr": 1e-3, "tokens_per_s": 1000.0, "examples_seen": s * 8,
              "split": "train"} for s in range(1, 41)]
    lines += [{"step": s, "val_loss": 5.5 / (1 + s / 10), "split": "validation"} for s in (10, 20, 30, 40)]
    (run_dir / "model" / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    (run_dir / "model" / "manifest.json").write_text(json.dumps({"stage": "train", "outputs": {"steps": 40},
                                                                 "packing": {"efficiency": 0.93}}), encoding="utf-8")
    for model, seed, lift in (("baseline", 1, 10.0), ("trained", 2, 50.0)):
        d = run_dir / "eval" / model
        d.mkdir(parents=True)
        summary = _summary(model, seed, lift)
        (d / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
        write_item_rows(d, summary, seed)
    return run_dir


@pytest.fixture
def fake_run(tmp_path: Path) -> Path:
    """A fixture run directory in tmp_path."""
    return write_fake_run(tmp_path / "runs" / "fake")
