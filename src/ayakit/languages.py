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
