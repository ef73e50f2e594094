"""Language identification: the dominant script of a text and its language (pycld2, then CLD3).

`verdict(text, language)` says whether a text is in its declared registry language: "match", "mismatch",
"short" (too short to check) or "unknown" (neither detector is sure). A text in a script the language is
never written in is a mismatch without asking a detector (cheap and strong). pycld2 answers first; where it
says unknown, is unreliable or disagrees, CLD3 (`gcld3`) gets a second say, so a language pycld2 misses
(Latin-script Kurdish) is not thrown away on its word alone. A mismatch needs pycld2 to be sure (or both
detectors to agree); CLD3 alone only ever confirms.
"""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter
from dataclasses import dataclass
from importlib import resources

import yaml

from ayakit.languages import UnknownLanguageError, get

MATCH, MISMATCH, SHORT, UNKNOWN = "match", "mismatch", "short", "unknown"


@dataclass(frozen=True)
class Detection:
    """One detector's answer: a registry code (None: not an Aya language or unknown) and its raw label."""

    code: str | None
    label: str
    reliable: bool


@functools.cache
def tables() -> dict:
    """The packaged langid tables (langid.yaml)."""
    text = resources.files("ayakit.data").joinpath("langid.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@functools.lru_cache(maxsize=65536)
def char_script(ch: str) -> str | None:
    """The ISO 15924 script of one character, or None for digits, punctuation and symbols."""
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return None
    return tables()["unicode_scripts"].get(name.split(" ", 1)[0])


def dominant_script(text: str) -> str | None:
    """The script most letters of a text are written in (None when it has no letters)."""
    counts: Counter[str] = Counter()
    for ch in text:
        if ch.isalpha():
            s = char_script(ch)
            if s:
                counts[s] += 1
    return counts.most_common(1)[0][0] if counts else None


@functools.cache
def accepted_scripts(language: str) -> frozenset[str]:
    """The Unicode scripts a registry language's texts may be written in."""
    members = tables()["script_members"]
    out: set[str] = set()
    for s in get(language).scripts:
        out.add(s)
        out.update(members.get(s, []))
    return frozenset(out)


@functools.cache
def label_code(label: str) -> str | None:
    """A detector label ('sw', 'zh-Hant', 'iw') as a registry code, or None outside the 101."""
    if not label or label in ("un", "xxx", "und") or label.startswith(("xx-", "zz")):
        return None
    fixed = tables()["label_codes"].get(label)
    if fixed:
        return fixed
    try:
        return get(label).code
    except UnknownLanguageError:
        return None


def letters(text: str) -> int:
    """How many letters a text has (the length langid checks against its minimum)."""
    return sum(1 for ch in text if ch.isalpha())


def detect_cld2(text: str) -> Detection:
    """pycld2's best language for a text."""
    import pycld2

    try:
        reliable, _, details = pycld2.detect(text)
    except (pycld2.error, UnicodeEncodeError):
        # pycld2 calls lone surrogates and most C0/C1 control characters invalid UTF-8: drop them and retry once
        cleaned = text.encode("utf-8", "ignore").decode("utf-8")  # drops lone surrogates
        cleaned = "".join(ch if ch.isprintable() or ch in "\t\n" else " " for ch in cleaned)
        reliable, _, details = pycld2.detect(cleaned)
    label = details[0][1] if details else "un"
    return Detection(label_code(label), label, bool(reliable) and label != "un")


@functools.cache
def _cld3():
    try:
        import gcld3
    except ImportError:  # the second detector is optional; without it pycld2 decides alone
        return None
    return gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=2000)


def detect_cld3(text: str) -> Detection | None:
    """CLD3's best language for a text (None when cld3-py is not installed)."""
    model = _cld3()
    if model is None:
        return None
    res = model.FindLanguage(text=text)
    return Detection(label_code(res.language), res.language, bool(res.is_reliable))


def _accepts(language: str, det: Detection) -> bool:
    if det.code == language:
        return True
    return det.label in tables()["also_accept"].get(language, ())


def verdict(text: str, language: str, min_letters: int = 20) -> str:
    """Is `text` in registry language `language`? One of match / mismatch / short / unknown."""
    if letters(text) < min_letters:
        return SHORT
    script = dominant_script(text)
    if script is not None and script not in accepted_scripts(language):
        return MISMATCH
    first = detect_cld2(text)
    if first.reliable and _accepts(language, first):
        return MATCH
    second = detect_cld3(text)
    if second is not None and second.reliable and _accepts(language, second):
        return MATCH
    if first.reliable:
        # pycld2 is sure of another language and CLD3 does not vouch for the declared one
        return MISMATCH
    if second is not None and second.reliable and first.label == second.label:
        return MISMATCH
    # CLD3 alone is overconfident on short text (Italian chat lines as Esperanto): not enough to drop a row
    return UNKNOWN
