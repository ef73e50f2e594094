"""Scripts (ISO 15924) of texts, from the packaged table resources/scripts.yaml: the dominant script of a text,
the Unicode scripts a registry script is made of, and which scripts are written without spaces between words."""

from __future__ import annotations

import functools
import re
from importlib import resources

DETECT_CHARS = 200  # detect_script looks at this many characters: enough to outvote digits and names


@functools.cache
def scripts_table() -> dict:
    """The packaged script tables (scripts.yaml): Unicode name prefix -> script, script -> member scripts."""
    import yaml

    return yaml.safe_load(resources.files("ayakit.resources").joinpath("scripts.yaml").read_text(encoding="utf-8"))


def detect_script(text: str) -> str | None:
    """The dominant ISO 15924 script of a text's first DETECT_CHARS characters (None when it has no letters)."""
    counts: dict[str, int] = {}
    for ch in (text or "")[:DETECT_CHARS]:
        if ch.isalpha():
            s = char_script(ch)
            if s:
                counts[s] = counts.get(s, 0) + 1
    if not counts:
        return None
    best = max(counts.items(), key=lambda kv: kv[1])[0]
    if best in ("Hani", "Hira", "Kana") and (counts.get("Hira", 0) or counts.get("Kana", 0)):
        return "Jpan"
    return best


@functools.lru_cache(maxsize=65536)
def char_script(ch: str) -> str | None:
    """The ISO 15924 script of one character, or None for digits, punctuation and symbols."""
    import unicodedata

    try:
        return scripts_table()["unicode_scripts"].get(unicodedata.name(ch).split(" ", 1)[0])
    except ValueError:
        return None


def script_members(script: str) -> frozenset[str]:
    """The Unicode scripts a text in `script` is made of (Hant: Hani; Jpan: Hani, Hira, Kana; Latn: Latn)."""
    return frozenset({script, *scripts_table()["script_members"].get(script, [])})


@functools.cache
def unspaced_ranges() -> dict[str, tuple[tuple[str, str], ...]]:
    """Unicode script written without spaces between words -> its (first, last) character ranges (scripts.yaml)."""
    out: dict[str, tuple[tuple[str, str], ...]] = {}
    for script, ranges in scripts_table()["unspaced_scripts"].items():
        pairs = []
        for cell in ranges:
            lo, _, hi = str(cell).partition("-")
            pairs.append((chr(int(lo, 16)), chr(int(hi or lo, 16))))
        out[script] = tuple(pairs)
    return out


@functools.cache
def unspaced_chars() -> str:
    """The body of a regex character class holding every character of the unspaced scripts (for word patterns)."""
    return "".join(f"{lo}-{hi}" if lo != hi else lo for ranges in unspaced_ranges().values() for lo, hi in ranges)


@functools.cache
def _unspaced_char_re() -> re.Pattern:
    return re.compile(f"[{unspaced_chars()}]")


@functools.lru_cache(maxsize=65536)
def is_unspaced_char(ch: str) -> bool:
    """Is this character written in a script without spaces between words (a CJK ideograph, kana, Thai, ...)?"""
    return _unspaced_char_re().fullmatch(ch) is not None


def unspaced_script(script: str) -> bool:
    """Is an ISO 15924 script written without spaces between words? A composite script counts when all its
    members do (Hans, Jpan: yes; Kore: no)."""
    return all(m in unspaced_ranges() for m in scripts_table()["script_members"].get(script, [script]))


@functools.cache
def _combining_marks() -> str:
    """The body of a regex character class holding every combining mark (Unicode M*) outside the unspaced scripts."""
    import sys
    import unicodedata

    ranges: list[list[int]] = []
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if unicodedata.category(ch)[0] == "M" and not is_unspaced_char(ch):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    return "".join(chr(lo) if lo == hi else f"{chr(lo)}-{chr(hi)}" for lo, hi in ranges)


@functools.cache
def word_run(exclude: str = "") -> str:
    """A regex for one word of a spaced script: word characters with their combining marks (Python's `\\w` does
    not match vowel signs or viramas, so `\\w+` cuts नमस्ते or வணக்கம் apart), minus the class body `exclude`."""
    return f"(?:[^\\W{exclude}]|[{_combining_marks()}])+"
