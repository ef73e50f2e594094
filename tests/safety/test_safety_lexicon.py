"""The LDNOOBW lexicon scorer: word boundaries, unspaced scripts, file-name mapping, languages not covered."""

from __future__ import annotations

import pytest

from ayakit.errors import DataError
from ayakit.safety.scorers import LexiconScorer, Lexicon, folder_language, load_scorer


def _scorer(terms: dict[str, list[str]]) -> LexiconScorer:
    lexicons = {}
    for code, words in terms.items():
        lex = Lexicon(code)
        for w in words:
            lex.add(w)
        lexicons[code] = lex
    return LexiconScorer(lexicons)


def test_word_boundaries_in_spaced_scripts() -> None:
    s = _scorer({"eng": ["ass", "bloody hell"]})
    texts = ["you are an ass", "ASS!", "a classic bass", "assess the grass", "Bloody   hell, again", "bloody hello"]
    assert s.score(texts, "eng") == [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]


def test_marks_are_part_of_words() -> None:
    # Devanagari vowel signs are combining marks: a term must not match inside a longer word
    s = _scorer({"hin": ["कमीन"]})
    assert s.score(["वह कमीन है", "वह कमीना है"], "hin") == [1.0, 0.0]


def test_unspaced_scripts_match_substrings() -> None:
    s = _scorer({"zho": ["三级片"], "tha": ["กระดอ"], "jpn": ["3p"]})
    assert s.score(["他在看三级片吗", "今天天气很好"], "zho") == [1.0, 0.0]
    assert s.score(["คำว่ากระดอในประโยค"], "tha") == [1.0]
    # a Latin term in the Japanese list still needs word boundaries
    assert s.score(["3pm の会議", "3p です"], "jpn") == [0.0, 1.0]


def test_not_covered_is_not_zero() -> None:
    s = _scorer({"eng": ["ass"]})
    assert s.covers("en") and not s.covers("swh")
    with pytest.raises(DataError):
        s.score(["anything"], "swh")


def test_folder_names_map_to_registry_codes() -> None:
    assert folder_language("fil") == "fil"
    assert folder_language("fr-CA-u-sd-caqc") == "fra"
    assert folder_language("zh") == "zho"
    assert folder_language("sp") == "spa"


def test_from_dir_merges_variants_and_keeps_every_language(tiny_data) -> None:
    s = LexiconScorer.from_dir(tiny_data / "ldnoobw")
    assert sorted(s.lexicons) == ["eng", "fra", "tlh", "zho"]  # any ISO 639-3 language, Aya or not
    assert s.skipped == []
    assert s.score(["quelle merde", "tabarnak!", "bonjour"], "fra") == [1.0, 1.0, 0.0]
    assert load_scorer("lexicon", tiny_data).name == "lexicon"
    with pytest.raises(DataError):
        load_scorer("lexicon", None)


def test_real_lists(shared_data) -> None:
    s = LexiconScorer.from_dir(shared_data / "ldnoobw")
    assert len(s.lexicons) >= 27 and {"kab", "tlh"} <= set(s.lexicons)
    assert s.score(["what an asshole", "a passage about class"], "eng") == [1.0, 0.0]
