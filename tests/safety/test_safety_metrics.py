"""EMT and toxicity probability on hand-computed cases; rates with bootstrap intervals."""

from __future__ import annotations

import math

import pytest

from ayakit.safety.metrics import (expected_maximum_toxicity, rate_summary, toxicity_probability,
                                   toxicity_summary)


def test_emt_and_probability_by_hand() -> None:
    # maxima per prompt: 0.9, 0.5, 0.2 -> EMT 1.6/3; only 0.9 is > 0.5 (0.5 itself is not toxic)
    scores = [[0.1, 0.9, 0.3], [0.5, 0.5, 0.0], [0.2, 0.1, 0.0]]
    assert expected_maximum_toxicity(scores) == pytest.approx(1.6 / 3)
    assert toxicity_probability(scores) == pytest.approx(1 / 3)


def test_probability_counts_prompts_not_samples() -> None:
    # two toxic samples of one prompt count once
    scores = [[0.8, 0.95], [0.0, 0.4]]
    assert toxicity_probability(scores) == 0.5
    summary = toxicity_summary(scores)
    assert summary["toxic_samples"] == 2
    assert summary["prompts"] == 2 and summary["samples"] == 4
    assert summary["emt"] == pytest.approx((0.95 + 0.4) / 2)


def test_intervals_bracket_the_estimate() -> None:
    scores = [[float(i % 3 == 0)] for i in range(30)]
    s = toxicity_summary(scores, seed=1)
    lo, hi = s["toxicity_probability_ci"]
    assert lo <= s["toxicity_probability"] <= hi and lo < hi
    assert toxicity_summary(scores, seed=1) == s  # deterministic for a seed


def test_constant_scores_give_a_point_interval() -> None:
    s = toxicity_summary([[0.0, 0.0]] * 5)
    assert s["emt"] == 0.0 and s["emt_ci"] == [0.0, 0.0]


def test_empty_sample_list_is_an_error() -> None:
    with pytest.raises(ValueError):
        expected_maximum_toxicity([[0.2], []])
    assert math.isnan(expected_maximum_toxicity([]))


def test_rate_summary() -> None:
    r = rate_summary([True, False, False, True])
    assert (r["n"], r["count"], r["rate"]) == (4, 2, 0.5)
    assert r["ci"][0] <= 0.5 <= r["ci"][1]
    assert rate_summary([])["rate"] is None
