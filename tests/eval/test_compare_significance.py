"""Comparisons with significance: paired bootstrap on shared items, winners only where the interval excludes 0."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ayakit.errors import DataError
from ayakit.eval.compare import compare_dirs, compare_sides, to_markdown, to_text
from ayakit.eval.significance import load_eval

TIERS = {"fra": "high", "swh": "low", "kin": "unlisted"}


def _write_eval(d: Path, correct: dict[str, list[int]], task: str = "xcopa", unseen: bool = True,
                prompts: int = 2) -> Path:
    """An eval dir: one accuracy task whose item i in language L is right when correct[L][i] is 1."""
    d.mkdir(parents=True)
    rows, by_language = [], {}
    for lang, values in correct.items():
        by_language[lang] = {"score": 100 * float(np.mean(values)), "tier": TIERS[lang]}
        for p in range(prompts):
            for i, v in enumerate(values):
                rows.append({"id": f"{lang}-{i}", "language": lang, "prompt_id": f"p{p}", "stats": {"accuracy": [v]}})
    (d / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"model": d.name, "tasks": {task: {"metric": "accuracy", "unseen_task": unseen,
                                                 "by_language": by_language}}}
    (d / "summary.json").write_text(json.dumps(summary))
    return d


def _items(rng: np.random.Generator, p: float, n: int = 200) -> list[int]:
    return [int(x) for x in rng.random(n) < p]


def test_a_clear_difference_has_a_winner(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    good = _write_eval(tmp_path / "good", {"fra": _items(rng, 0.8), "swh": _items(rng, 0.7)})
    bad = _write_eval(tmp_path / "bad", {"fra": _items(rng, 0.4), "swh": _items(rng, 0.3)})
    comp = compare_dirs([good, bad])
    row = next(r for r in comp.rows if r.key == "xcopa")
    assert row.winner is not None and row.winner.endswith("good")
    loser = row.cells[next(n for n in comp.sides if n.endswith("bad"))]
    assert loser.delta < -20 and loser.delta_ci[1] < 0  # the whole interval below 0
    assert row.n_items == 400 and row.n_languages == 2
    tiers = {r.key: r for r in comp.rows if r.key.startswith("tier:")}
    assert set(tiers) == {"tier:high", "tier:low"} and all(r.winner for r in tiers.values())


def test_a_tie_has_no_winner_even_when_one_is_ahead(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    base = _items(rng, 0.5, 60)
    flipped = list(base)
    flipped[0] = 1 - flipped[0]  # one item of 60 differs: 28.1 vs 27.8-like noise
    a = _write_eval(tmp_path / "a", {"fra": base})
    b = _write_eval(tmp_path / "b", {"fra": flipped})
    comp = compare_dirs([a, b])
    row = comp.rows[0]
    assert row.best is not None and row.winner is None
    other = next(n for n in comp.sides if n != row.best)
    lo, hi = row.cells[other].delta_ci
    assert lo <= 0 <= hi
    text = to_text(comp)
    assert "*" not in "".join(line[:6] for line in text.splitlines() if line.startswith("  ["))
    assert "best, not significant" in text


def test_identical_models_tie_everywhere(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    values = {"fra": _items(rng, 0.6, 50), "swh": _items(rng, 0.4, 50)}
    comp = compare_dirs([_write_eval(tmp_path / "a", values), _write_eval(tmp_path / "b", values)])
    assert all(r.winner is None for r in comp.rows)


def test_mismatched_coverage_is_restricted_and_said(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    a = _write_eval(tmp_path / "a", {"fra": _items(rng, 0.9, 100), "swh": _items(rng, 0.9, 100),
                                     "kin": _items(rng, 0.1, 100)})
    b = _write_eval(tmp_path / "b", {"fra": _items(rng, 0.5, 80), "swh": _items(rng, 0.5, 100)})
    comp = compare_dirs([a, b])
    row = comp.rows[0]
    assert row.n_languages == 2 and row.n_items == 180  # kin and 20 fra items only a has are left out
    assert any("kin" in w and "only" in w for w in comp.warnings)
    assert "tier:unlisted" not in {r.key for r in comp.rows}
    assert "warning:" in to_text(comp)


def test_text_fits_80_columns_with_long_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    long = tmp_path / ("very-long-directory-name-" * 4) / "eval" / "trained"
    _write_eval(long, {"fra": _items(rng, 0.7)})
    _write_eval(tmp_path / "short", {"fra": _items(rng, 0.3)})
    comp = compare_dirs([long, tmp_path / "short"])
    text = to_text(comp, 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "very-long-directory-name-very" in text.replace("\n    ", "")  # the name is wrapped, not cut
    md = to_markdown(comp)
    assert "**" in md and "Δ" in md


def test_seeds_are_paired_and_resampled(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    sides = {}
    for name, p in (("hi", 0.75), ("lo", 0.45)):
        sides[name] = [load_eval(_write_eval(tmp_path / f"{name}{s}", {"fra": _items(rng, p, 120)}))
                       for s in range(3)]
    comp = compare_sides(sides)
    row = comp.rows[0]
    assert comp.seeds == {"hi": 3, "lo": 3} and row.winner == "hi"
    lo_cell = row.cells["lo"]
    assert lo_cell.ci[0] < lo_cell.score < lo_cell.ci[1]


def test_missing_per_item_file_is_a_located_error(tmp_path: Path) -> None:
    d = _write_eval(tmp_path / "a", {"fra": [1, 0]})
    (d / "xcopa.jsonl").unlink()
    with pytest.raises(DataError, match="xcopa.jsonl: missing"):
        load_eval(d)
    with pytest.raises(DataError, match="no summary.json"):
        compare_dirs([tmp_path / "nothing"])
