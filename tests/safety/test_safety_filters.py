"""The paper's distillation filters: 20 to 1000 characters, longest repeated substring at most length / 2.1."""

from __future__ import annotations

from ayakit.safety.distill import echoes_preamble, filter_reason, longest_repeated_substring, preamble


def _brute_lrs(text: str) -> int:
    best = 0
    for i in range(len(text)):
        for j in range(i + 1, len(text)):
            k = 0
            while j + k < len(text) and text[i + k] == text[j + k]:
                k += 1
            best = max(best, k)
    return best


def test_longest_repeated_substring() -> None:
    assert longest_repeated_substring("") == 0
    assert longest_repeated_substring("abcdef") == 0
    assert longest_repeated_substring("banana") == 3  # "ana", overlapping
    assert longest_repeated_substring("aaaa") == 3
    for text in ("mississippi", "I can't. I can't. I can't.", "抱歉，我不能。抱歉，我不能。", "abcabcabcx"):
        assert longest_repeated_substring(text) == _brute_lrs(text)


def test_length_bounds() -> None:
    assert filter_reason("x" * 0) == "too_short"
    assert filter_reason("Sorry, I can't help.") is None  # exactly 20 characters, all distinct enough
    assert len("Sorry, I can't help.") == 20
    assert filter_reason("Sorry, I can't help") == "too_short"  # 19
    ok = " ".join(f"w{i}" for i in range(300))[:1000]
    assert len(ok) == 1000 and filter_reason(ok) is None
    assert filter_reason(ok + "z") == "too_long"


def test_repetition_threshold() -> None:
    # length 42, limit 42 / 2.1 = 20: a repeated 20-character piece passes, 21 does not
    base = "abcdefghijklmnopqrst"  # 20 distinct characters
    text = base + "XY" + base
    assert len(text) == 42 and longest_repeated_substring(text) == 20
    assert filter_reason(text) is None
    text21 = base + "u" + base + "u"
    assert longest_repeated_substring(text21) == 21 and len(text21) == 42
    assert filter_reason(text21) == "repetitive"
    assert filter_reason("I cannot do that. " * 5) == "repetitive"


def test_preamble_echo() -> None:
    eng = preamble("eng")
    assert eng and echoes_preamble("Sure. " + eng[10:90], "eng")
    assert not echoes_preamble("I do not assist with requests like this one.", "eng")
