"""Metrics against sacrebleu and hand-computed cases in Chinese, Thai and Arabic."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu

from ayakit.eval import metrics as M
from ayakit.stats import bootstrap_ci

HYPS = ["The cat sat on the mat.", "Il pleut des cordes aujourd'hui.", "今天天气很好。", "A quick brown fox."]
REFS = ["The cat is sitting on the mat.", "Il pleut beaucoup aujourd'hui.", "今天的天气很好。", "The quick brown fox jumps."]


def test_chrf_pp_equals_sacrebleu():
    expected = sacrebleu.corpus_chrf(HYPS, [REFS], word_order=2).score
    assert M.chrf_pp(HYPS, REFS) == pytest.approx(expected, abs=1e-9)


def test_chrf_bootstrap_resample_equals_sacrebleu_on_the_resample():
    m = M.get_metric("chrf++")
    stats = np.array([m.item_stats(h, [r], "") for h, r in zip(HYPS, REFS)])
    idx = [0, 0, 2, 3]
    expected = sacrebleu.corpus_chrf([HYPS[i] for i in idx], [[REFS[i] for i in idx]], word_order=2).score
    assert m.aggregate(stats[idx]) == pytest.approx(expected, abs=1e-9)


def test_chinese_qa_is_character_level():
    # normalised: 北 京 大 学 vs 北 京 -> 2 common, P = 1/2, R = 1 -> F1 = 2/3 (whitespace splitting would give 0)
    assert M.qa_f1("北京大学", "北京", "zho") == pytest.approx(2 / 3)
    assert M.qa_exact("北京。", "北京", "zho") == 1.0
    assert M.qa_f1("北京大学", "北京", "eng") == 0.0


def test_thai_rouge_l_is_character_level():
    # สวัสดีครับ (10 code points) vs สวัสดีค่ะ (9): LCS สวัสดีค = 7 -> F = 2*7/(10+9)
    assert M.rouge_l("สวัสดีครับ", "สวัสดีค่ะ", "tha") == pytest.approx(14 / 19)


def test_arabic_article_rule_follows_mlqa():
    # MLQA strips every "ال": الكتاب الأحمر -> كتاب أحمر
    assert M.qa_exact("الكتاب الأحمر", "كتاب أحمر", "ara") == 1.0
    # after normalisation: [كتاب, أحمر, جدا] vs [كتاب, أحمر] -> P = 2/3, R = 1 -> F1 = 0.8
    assert M.qa_f1("الكتاب الأحمر جدا!", "كتاب أحمر", "ara") == pytest.approx(0.8)
    assert M.qa_exact("الكتاب", "كتاب", "eng") == 0.0


def test_english_squad_rules():
    assert M.qa_exact("The Eiffel Tower.", "eiffel tower", "eng") == 1.0
    assert M.qa_f1("in the year 1975", "1975", "eng") == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))


def test_rouge_lsum_union_lcs_hand_computed():
    # a 2-sentence case done by hand:
    # ref = [a b c d] [e f]; pred = [a b x] [c d e]; union LCS with ref s1: {a,b} u {c,d} = 4; with s2: {e} = 1
    # hits = 5, |pred| = 6, |ref| = 6 -> F = 5/6
    assert M.rouge_lsum("a b x\nc d e", "a b c d\ne f", "eng") == pytest.approx(5 / 6)
    assert M.rouge_l("a b x c d e", "a b c d e f", "eng") == pytest.approx(5 / 6)


def test_spbleu_absent_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("AYAKIT_FLORES200_SPM", str(tmp_path / "missing.model"))
    monkeypatch.setattr(M, "flores_spm_path", lambda: None)
    with pytest.raises(ValueError, match="spBLEU not computed"):
        M.get_metric("spbleu")


def test_spbleu_with_a_local_sentencepiece_model(monkeypatch, tmp_path):
    import sentencepiece as spm

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(HYPS + REFS) * 20, encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "flores"), vocab_size=40,
                                   character_coverage=1.0, minloglevel=2)
    monkeypatch.setenv("AYAKIT_FLORES200_SPM", str(tmp_path / "flores.model"))
    M._spm.cache_clear()
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "flores.model"))
    pieces = lambda s: " ".join(sp.encode(s, out_type=str))  # noqa: E731
    expected = sacrebleu.corpus_bleu([pieces(h) for h in HYPS], [[pieces(r) for r in REFS]], tokenize="none").score
    assert M.spbleu(HYPS, REFS) == pytest.approx(expected, abs=1e-9)
    M._spm.cache_clear()


def test_bootstrap_ci_is_deterministic_and_brackets_the_mean():
    stats = np.array([[1.0], [0.0], [1.0], [1.0], [0.0], [1.0], [1.0], [0.0]])
    agg = M.get_metric("accuracy").aggregate
    a = bootstrap_ci(stats, agg, seed=3)
    assert a == bootstrap_ci(stats, agg, seed=3)
    assert a[0] <= agg(stats) <= a[1] and a[0] < a[1]


@pytest.mark.parametrize("text, number", [
    ("The answer is 42.", 42.0), ("#### 1,234", 1234.0), ("١٢٣", 123.0), ("उत्तर: ४२", 42.0), ("৩.৫ টাকা", 3.5),
    ("คำตอบคือ ๑๒", 12.0), ("１２３４", 1234.0), ("x = -7", -7.0), ("3,5 kg", 3.5), ("1 234,5", 1234.5),
    ("1.000.000", 1e6), ("12 apples then 15", 15.0), ("٣٫٥", 3.5), ("1,000,000.25", 1000000.25), ("−3", -3.0),
    ("no number", None),
])
def test_final_number_in_any_scripts_digits(text, number):
    from ayakit.eval.metrics import final_number

    assert final_number(text) == number


def test_numeric_match_compares_the_final_numbers():
    from ayakit.eval.metrics import get_metric

    m = get_metric("numeric_match")
    assert m.item_stats("So she has ४२ apples", ["42"], "hin-Deva") == [1.0]
    assert m.item_stats("41", ["42"], "eng-Latn") == [0.0]
    assert m.item_stats("no idea", ["42"], "eng-Latn") == [0.0]


def test_language_rules_follow_tags():
    from ayakit.eval.metrics import char_level, qa_exact, qa_f1

    assert char_level("zho-Hans") and char_level("zho-Hant") and char_level("yue-Hant") and char_level("tha-Thai")
    assert not char_level("eng-Latn")
    assert qa_f1("北京大学", "北京", "zho-Hant") == qa_f1("北京大学", "北京", "zho") > 0
    assert qa_exact("الكتاب", "كتاب", "arb-Arab") == 1.0  # MLQA's Arabic article rule, via the tag's language
    assert qa_exact("the cat", "cat", "eng-Latn-GB") == 1.0
