"""Language identification: the dominant script of a text and its language (pycld2, then CLD3).

`verdict(text, language)` says whether a text is in its declared language (a tag such as `srp-Latn`, or a code): "match", "mismatch",
"short" (too short to check) or "unknown" (neither detector is sure). A text in a script the language is
never written in is a mismatch without asking a detector (cheap and strong). pycld2 answers first; where it
says unknown, is unreliable or disagrees, CLD3 (`gcld3`) gets a second say, so a language pycld2 misses
(Latin-script Kurdish) is not thrown away on its word alone. A mismatch needs pycld2 to be sure (or both
detectors to agree); CLD3 alone only ever confirms. A language pycld2 has no label for (most languages outside
the Aya-101) is never a mismatch on a detector's word: only its script is checked.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from importlib import resources

import yaml

from ayakit import languages as L
from ayakit.languages import UnknownLanguageError, get
from ayakit.scripts import char_script

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


def dominant_script(text: str) -> str | None:
    """The Unicode script most letters of a text are written in (None when it has no letters)."""
    counts: Counter[str] = Counter()
    for ch in text:
        if ch.isalpha():
            s = char_script(ch)
            if s:
                counts[s] += 1
    return counts.most_common(1)[0][0] if counts else None


@functools.cache
def accepted_scripts(language: str) -> frozenset[str] | None:
    """The Unicode scripts texts in a language may be written in: the tag's script, or for a bare registry code
    every script of the language; None when the script is unknown (any text passes the script check)."""
    parts = L.parse(language)
    if parts.script:
        scripts: tuple[str, ...] = (parts.script,)
    else:
        try:
            scripts = get(language).scripts
        except UnknownLanguageError:
            scripts = (L.default_script(parts.language, parts.region),)
    if L.UNCODED_SCRIPT in scripts:
        return None
    return frozenset().union(*(L.script_members(s) for s in scripts))


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


@functools.cache
def label_language(label: str) -> str | None:
    """A detector label ('sw', 'zh-Hant', 'iw', 'rw') as an ISO 639-3 language, or None (unknown, not a language)."""
    if not label or label in ("un", "xxx", "und") or label.startswith(("xx-", "zz")):
        return None
    fixed = tables()["label_codes"].get(label)
    try:
        return L.parse(fixed or label).language
    except UnknownLanguageError:
        return None


@functools.cache
def cld2_languages() -> frozenset[str]:
    """The ISO 639-3 languages pycld2 can answer with (its rollup rows too)."""
    import pycld2

    out: set[str] = set()
    for _, label in pycld2.LANGUAGES:
        lang = label_language(label)
        if lang:
            out.update((lang, L.rollup(lang)))
    return frozenset(out)


def _accepts(language: str, det: Detection) -> bool:
    want, got = L.parse(language).language, label_language(det.label)
    if got is None:
        return False
    row = L.rollup(want)
    if got == want or (row in L.registry() and L.rollup(got) == row):
        return True  # the detectors cannot tell varieties of one row apart (yue / zho, prs / pes, nno / nob)
    return det.label in tables()["also_accept"].get(row, ())


def verdict(text: str, language: str, min_letters: int = 20) -> str:
    """Is `text` in registry language `language`? One of match / mismatch / short / unknown."""
    if letters(text) < min_letters:
        return SHORT
    script = dominant_script(text)
    allowed = accepted_scripts(language)
    if script is not None and allowed is not None and script not in allowed:
        return MISMATCH
    known = L.rollup(language) in cld2_languages() or L.parse(language).language in cld2_languages()
    first = detect_cld2(text)
    if first.reliable and _accepts(language, first):
        return MATCH
    second = detect_cld3(text)
    if second is not None and second.reliable and _accepts(language, second):
        return MATCH
    if not known:
        return UNKNOWN  # pycld2 has no label for this language: its answer says nothing against it
    if first.reliable:
        # pycld2 is sure of another language and CLD3 does not vouch for the declared one
        return MISMATCH
    if second is not None and second.reliable and first.label == second.label:
        return MISMATCH
    # CLD3 alone is overconfident on short text (Italian chat lines as Esperanto): not enough to drop a row
    return UNKNOWN
