"""Verdict parsing, pair outcomes and the aggregation, on hand-made verdicts."""

from __future__ import annotations

import pytest

from ayakit.eval.verdicts import load_judge_prompt, pair_outcome, parse_verdict, render_judge
from ayakit.eval.win_rates import summarize, summarize_pairs


@pytest.mark.parametrize("reply,verdict", [
    ("Comparison: B is not in French.\nPreferred: Answer (A)", "A"),
    ("Comparison: A is in English.\nPreferred: 'Answer (B)'", "B"),
    ("Preferred: TIE", "tie"),
    ("**Preferred:** Answer (B)", "B"),
    ("Preferred:\n\nAnswer (A)", "A"),
    ("Preferred: Answer (A)\nOn reflection...\nPreferred: Answer (B)", "B"),  # the last verdict line counts
    ("Preferred: both are equally good", "tie"),
    ("Verdict: Answer (B) is better", "B"),
    ("(A)", "A"),
    ("B", "B"),
    ("Preferred: Answer (A) and Answer (B)", None),  # ambiguous
    ("Answer (A) is much better because it is in the right language and the other one is not.", None),
    ("I think a is good", None),
    ("Preferred: the first one", None),
    ("", None),
    (None, None),
])
def test_parse_verdict(reply: str | None, verdict: str | None) -> None:
    assert parse_verdict(reply) == verdict


@pytest.mark.parametrize("ab,ba,outcome", [
    ("A", "B", "a"), ("B", "A", "b"), ("A", "A", "tie"), ("B", "B", "tie"), ("tie", "tie", "tie"),
    ("A", "tie", "tie"), (None, "A", "invalid"), ("B", None, "invalid"), (None, None, "invalid"),
])
def test_pair_outcome(ab: str | None, ba: str | None, outcome: str) -> None:
    assert pair_outcome(ab, ba) == outcome


def test_render_judge_names_the_language_and_keeps_braces() -> None:
    system, user = render_judge(load_judge_prompt(), "swh", "Sema {first}", "jibu {second}", "la pili")
    assert "Swahili" in system and "Swahili" in user
    assert "Sema {first}" in user and "jibu {second}" in user and user.index("jibu") < user.index("la pili")


def _pair(lang: str, ab: str | None, ba: str | None, len_a: int = 5, len_b: int = 5) -> dict:
    return {"language": lang, "verdict_ab": ab, "verdict_ba": ba, "outcome": pair_outcome(ab, ba),
            "answer_a": "x" * len_a, "answer_b": "y" * len_b}


def test_summary_counts_rates_biases_and_cis() -> None:
    pairs = ([_pair("eng", "A", "B", 10, 5)] * 6 + [_pair("eng", "B", "A", 5, 3)] * 2  # 6 a-wins (longer), 2 b-wins (shorter)
             + [_pair("eng", "A", "A")] * 2  # position flips: ties
             + [_pair("eng", None, "A")])  # invalid
    s = summarize_pairs(pairs, n_boot=500)
    assert (s["pairs"], s["valid"], s["invalid"], s["unparseable_verdicts"]) == (11, 10, 1, 1)
    assert (s["win"], s["tie"], s["loss"]) == pytest.approx((0.6, 0.2, 0.2))
    assert s["win_rate_ties_half"] == pytest.approx(0.7)
    assert s["win_ci95"][0] <= 0.6 <= s["win_ci95"][1] and s["win_ci95"][0] < s["win_ci95"][1]
    assert s["position_flip_rate"] == pytest.approx(2 / 10)
    assert s["longer_answer_wins"] == pytest.approx(6 / 8)
    # first-shown preferred: ab slots A x6, B x2, A x2 (+ the invalid pair's A); ba slots B x6, A x2, A x2
    assert s["first_shown_preferred"] == pytest.approx(13 / 21)


def test_summary_per_language_and_all_invalid() -> None:
    pairs = [_pair("eng", "A", "B")] * 3 + [_pair("swh", None, None)] * 2
    s = summarize(pairs, n_boot=100)
    assert s["overall"]["pairs"] == 5 and set(s["languages"]) == {"eng", "swh"}
    assert s["languages"]["eng"]["win"] == 1.0
    swh = s["languages"]["swh"]
    assert swh["valid"] == 0 and swh["win"] is None and swh["unparseable_verdicts"] == 4


def test_cache_survives_a_line_cut_short(tmp_path) -> None:
    from ayakit.eval.judge import JsonlCache

    path = tmp_path / "c.jsonl"
    cache = JsonlCache(path)
    cache.put("k1", "first")
    cache.put("k2", "second")
    path.write_text(path.read_text()[:-9])  # the last write was interrupted
    again = JsonlCache(path)
    assert again.get("k1") == "first" and again.get("k2") is None
    again.put("k3", "third")
    assert JsonlCache(path).get("k3") == "third" and JsonlCache(path).get("k1") == "first"
