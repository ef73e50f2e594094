"""The 101 Aya languages and the one function that turns any language code into one of them."""

from __future__ import annotations

import csv
import difflib
import functools
from dataclasses import dataclass
from importlib import resources

TIERS = ("high", "mid", "low")


@dataclass(frozen=True)
class Language:
    """One row of the registry: an Aya training language."""

    code: str  # ISO 639-3, as the Aya datasets spell it
    name: str
    native_name: str
    tier: str  # high / mid / low, as the paper's Table 11
    scripts: tuple[str, ...]  # ISO 15924, the first is the default
    flores: tuple[str, ...]  # FLORES-200 codes, the first is the standard variety
    iso1: str | None
    aliases: tuple[str, ...]

    @property
    def script(self) -> str:
        return self.scripts[0]


class UnknownLanguageError(ValueError):
    """A code that names none of the registry's languages."""


def _split(cell: str) -> tuple[str, ...]:
    return tuple(p for p in (cell or "").split(",") if p)


@functools.cache
def registry() -> dict[str, Language]:
    """All languages keyed by ISO 639-3 code, in table order."""
    native = _native_names()
    out: dict[str, Language] = {}
    with resources.files("ayakit.resources").joinpath("languages.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            out[row["code"]] = Language(
                code=row["code"],
                name=row["name"],
                native_name=native.get(row["code"]) or row["name"],
                tier=row["tier"],
                scripts=_split(row["scripts"]),
                flores=_split(row["flores"]),
                iso1=row["iso1"] or None,
                aliases=_split(row["aliases"]),
            )
    return out


def _native_names() -> dict[str, str]:
    path = resources.files("ayakit.resources").joinpath("native_names.tsv")
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8") as fh:
        return {r["code"]: r["native_name"] for r in csv.DictReader(fh, delimiter="\t")}


@functools.cache
def _index() -> dict[str, str]:
    """Every spelling we accept (lower-cased) -> registry code."""
    idx: dict[str, str] = {}
    for lang in registry().values():
        keys = [lang.code, *lang.aliases, *lang.flores, lang.name]
        if lang.iso1:
            keys.append(lang.iso1)
        for key in keys:
            idx.setdefault(key.lower(), lang.code)
    return idx


def normalize(code: str) -> str:
    """Map any language code users meet (ISO 639-1/3, FLORES, BCP-47, macro-language member) to a registry code."""
    return get(code).code


def get(code: str) -> Language:
    """The registry Language for any accepted spelling of a code; UnknownLanguageError names the closest ones."""
    if not isinstance(code, str) or not code.strip():
        raise UnknownLanguageError(f"empty language code {code!r}")
    raw = code.strip()
    idx = _index()
    key = raw.lower().replace("-", "_")
    for candidate in (key, key.split("_")[0]):
        if candidate in idx:
            return registry()[idx[candidate]]
    via = _via_langcodes(raw)
    if via and via in idx:
        return registry()[idx[via]]
    raise UnknownLanguageError(f"unknown language code {raw!r}; closest known: {', '.join(closest(raw))}")


def _via_langcodes(raw: str) -> str | None:
    """Fall back on langcodes for BCP-47 tags and deprecated or bibliographic codes."""
    try:
        import langcodes

        tag = langcodes.standardize_tag(raw, macro=True)
        lang = langcodes.Language.get(tag)
        if not lang.language:
            return None
        alpha3 = lang.to_alpha3()
        return alpha3.lower() if alpha3 else lang.language.lower()
    except (ValueError, LookupError, ImportError):
        return None


def closest(raw: str, n: int = 3) -> list[str]:
    """Registry codes whose spellings (code, aliases, names) are nearest to raw."""
    idx = _index()
    found = difflib.get_close_matches(raw.lower(), list(idx), n=12, cutoff=0.3)
    out: list[str] = []
    for key in found:
        code = idx[key]
        if code not in out:
            out.append(code)
    return out[:n] or ["eng"]


def languages(tier: str | None = None) -> list[Language]:
    """Languages in table order, optionally only one resource tier."""
    if tier is not None and tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
    return [lang for lang in registry().values() if tier is None or lang.tier == tier]


def tier(code: str) -> str:
    """The resource tier of any accepted code."""
    return get(code).tier


def from_flores(flores_code: str) -> Language:
    """The Language of a FLORES-200 code such as zsm_Latn; unknown codes raise UnknownLanguageError."""
    return get(flores_code)


# --- interim: replaced by the langs branch (minimal versions of the tag API the eval stage codes against) ------
TIERS = ("high", "mid", "low", "unlisted")  # noqa: F811 - the tag API's tiers


def detect_script(text: str) -> str | None:
    """The dominant ISO 15924 script of a text."""
    import unicodedata

    names = {"LATIN": "Latn", "CYRILLIC": "Cyrl", "ARABIC": "Arab", "GREEK": "Grek", "HEBREW": "Hebr",
             "DEVANAGARI": "Deva", "BENGALI": "Beng", "TAMIL": "Taml", "TELUGU": "Telu", "KANNADA": "Knda",
             "MALAYALAM": "Mlym", "GUJARATI": "Gujr", "GURMUKHI": "Guru", "ORIYA": "Orya", "SINHALA": "Sinh",
             "THAI": "Thai", "LAO": "Laoo", "KHMER": "Khmr", "MYANMAR": "Mymr", "GEORGIAN": "Geor",
             "ARMENIAN": "Armn", "ETHIOPIC": "Ethi", "HANGUL": "Hang", "HIRAGANA": "Jpan", "KATAKANA": "Jpan",
             "CJK": "Hani", "TIBETAN": "Tibt", "TIFINAGH": "Tfng", "NKO": "Nkoo", "OL": "Olck", "THAANA": "Thaa"}
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            script = names.get(unicodedata.name(ch, "").split(" ")[0])
            if script:
                counts[script] = counts.get(script, 0) + 1
    return max(counts, key=counts.get) if counts else None


def tag(code: str, *, script: str | None = None, text: str | None = None) -> str:
    """Normalise any language code (ISO 639-1/3, FLORES, BCP-47, English name) into a tag such as srp-Latn."""
    import langcodes

    raw = (code or "").strip().replace("_", "-")
    try:
        lang = langcodes.Language.get(raw, normalize=False)
        lang3 = lang.to_alpha3() if lang.language and langcodes.tag_is_valid(raw) else None
    except (ValueError, LookupError):
        lang, lang3 = None, None
    if lang3 is None:
        lang = None
        lang3 = get(code).code  # aliases and English names of the registry; UnknownLanguageError otherwise
    chosen = (lang.script if lang is not None else None) or script or (detect_script(text) if text else None)
    if not chosen:
        try:
            chosen = langcodes.Language.get(raw).maximize().script if lang is not None else None
        except (ValueError, LookupError):
            chosen = None
        if lang3 in registry() and (lang is None or chosen is None):
            chosen = registry()[lang3].script
        chosen = chosen or "Latn"
    region = lang.territory if lang is not None else None
    return "-".join(p for p in (lang3, chosen, region) if p)


def rollup(code_or_tag: str) -> str:
    """The Aya-101 registry code a tag merges into for the paper's tables; else its bare ISO 639-3 code."""
    base = tag(code_or_tag).split("-")[0]
    try:
        return get(base).code
    except UnknownLanguageError:
        return base


def tier(code_or_tag: str) -> str:  # noqa: F811 - the tag API's tier: 'unlisted' outside the set
    """'high' | 'mid' | 'low' for the Aya-101 languages (after rollup), 'unlisted' otherwise."""
    code = rollup(code_or_tag)
    return registry()[code].tier if code in registry() else "unlisted"


def display_name(code_or_tag: str) -> str:
    """A readable name of a tag, e.g. 'Serbian (Latin)'."""
    import langcodes

    return langcodes.Language.get(tag(code_or_tag)).display_name()


def language_set(name: str = "aya-101") -> list[str]:
    """The tags of a named set, table order."""
    if name != "aya-101":
        raise ValueError(f"unknown language set {name!r}; known: aya-101")
    return [f"{lang.code}-{lang.script}" for lang in registry().values()]
