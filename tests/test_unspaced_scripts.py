"""Scripts written without spaces between words: one table (resources/scripts.yaml), and every consumer agrees."""

import unicodedata

import pytest

from ayakit import languages as L
from ayakit import scripts as S
from ayakit.data import filters as F
from ayakit.data.steps.minhash import MultilingualWordTokenizer
from ayakit.data.sentences import join_segments
from ayakit.eval import metrics as M


def _letters(script: str) -> list[str]:
    """Every assigned letter or mark in the script's ranges of the table."""
    out = []
    for lo, hi in S.unspaced_ranges()[script]:
        out += [chr(i) for i in range(ord(lo), ord(hi) + 1) if unicodedata.category(chr(i))[0] in "LM"]
    return out


def test_table_names_the_scripts_and_their_ranges() -> None:
    assert set(S.unspaced_ranges()) == {"Hani", "Hira", "Kana", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"}
    for script in S.unspaced_ranges():
        assert L.unspaced(script) and _letters(script), script
    assert [L.unspaced(s) for s in ("Hans", "Hant", "Jpan", "Kore", "Hang", "Latn", "Arab", "Zzzz")] == \
        [True, True, True, False, False, False, False, False]


@pytest.mark.parametrize("script", ["Hani", "Hira", "Kana", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"])
def test_every_character_consumer_agrees_with_the_table(script: str) -> None:
    letters = _letters(script)
    assert all(map(S.is_unspaced_char, letters))
    text = "ab " + "".join(letters) + " cd"
    tokens = ["ab", *letters, "cd"]
    assert F.words(text) == tokens  # MinHash shingles
    tok = MultilingualWordTokenizer()
    assert tok.word_tokenize(text) == tokens
    assert [text[a:b] for a, b in tok.span_tokenize(text)] == tokens
    for ch in letters:  # MLQA mixed segmentation (QA F1 / EM)
        assert M.mixed_segmentation(f"ab{ch}cd") == ["ab", ch, "cd"], hex(ord(ch))
    from ayakit.safety.scorers import Lexicon, normalize_text

    for ch in letters:  # safety lexicon: a term in an unspaced script matches as a substring
        if unicodedata.category(ch)[0] == "L" and S.is_unspaced_char(normalize_text(ch)):
            lex = Lexicon("und")
            lex.add(ch + ch)
            assert lex.substrings and not lex.bounded, hex(ord(ch))


def test_characters_outside_the_table_are_words() -> None:
    for text in ("Hello world", "Привет мир", "안녕 세상", "नमस्ते दुनिया", "مرحبا بالعالم"):
        assert not any(map(S.is_unspaced_char, text))
        assert M.mixed_segmentation(text) == text.split()


def test_every_language_consumer_agrees_with_the_table() -> None:
    from ayakit.train.tokenizer import words as tokenizer_words

    seen = set()
    for code in L.flores_codes():
        script = code.split("_")[1]
        want = script in {"Hans", "Hant", "Jpan", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"}
        assert L.unspaced(code) == want, code
        assert M.char_level(code) == want, code  # ROUGE / QA F1 per character
        assert (join_segments([["a.", "b."]], code) == "a.b.") == want, code  # translated sentences joined
        if L.in_set(code) and L.default_script(code) == script:  # tokenizer fertility: characters per word
            assert (tokenizer_words("ab cd", code) == 4) == want, code
        if want:
            seen |= L.script_members(script)
    assert set(S.unspaced_ranges()) <= seen  # every script of the table is reached by some FLORES variety


def test_template_literals_agree_with_the_table() -> None:
    from ayakit.data.templating import literals

    for lang in L.languages():
        lit, spaced = literals(lang.code), not L.unspaced(lang.code)
        assert lit["spaces"] == spaced and lit["word_sep"] == (" " if spaced else ""), lang.code


def test_language_codes_of_every_form() -> None:
    for code in ("zho", "zh", "zh-TW", "yue-Hant", "cmn", "jpn", "ja", "tha", "khm", "lao", "mya", "bod"):
        assert L.unspaced(code) and M.char_level(code), code
    for code in ("eng", "kor", "zho-Latn", "hin", "ara"):
        assert not L.unspaced(code) and not M.char_level(code), code
    assert not M.char_level("") and not M.char_level("not a language")


@pytest.mark.parametrize("variety", ["hin_Deva", "tam_Taml", "ben_Beng", "mal_Mlym", "sin_Sinh", "kat_Geor"])
def test_words_keep_their_combining_marks(variety: str, shared_data) -> None:
    """A FLORES word of a spaced script with vowel signs or viramas is one word for ROUGE and MinHash (`\\w+` cut
    नमस्ते into नमस, त)."""
    path = shared_data / "sib200" / "data" / "annotated" / variety / "dev.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    checked = 0
    for line in lines:
        for chunk in line.split("\t")[-1].split():
            if all(unicodedata.category(ch)[0] in "LM" for ch in chunk):
                assert F.words(chunk) == [chunk], chunk
                assert M.tokenize(chunk, variety) == [chunk.lower()], chunk
                checked += 1
    assert checked > 500, checked
