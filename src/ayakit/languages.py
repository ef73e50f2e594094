"""Language tags (ISO 639-3 + ISO 15924 script + region, BCP-47 form) and the paper's 101 languages as a named set.

`tag()` turns any code users meet into a normalised tag (`kin-Latn`, `srp-Latn`, `zho-Hant`, `eng-Latn-GB`);
varieties stay distinct. The Aya-101 registry (`get`, `registry`, `languages`) is the set the recipe uses, with
the paper's tiers; `rollup()` merges a variety into its registry row for tables that need the paper's 101 rows.
The script tables are read by ayakit.scripts, the code tables (IANA subtags, FLORES-200) by ayakit.subtags.
"""

from __future__ import annotations

import csv
import difflib
import functools
from dataclasses import dataclass
from importlib import resources

from ayakit.scripts import detect_script, script_members, scripts_table, unspaced_script
from ayakit.subtags import all_spellings, alpha3, flores_codes, iso639_3, script_codes, standard_varieties

TIERS = ("high", "mid", "low", "unlisted")
SET_TIERS = TIERS[:3]  # the tiers a registry language can have
SETS = ("aya-101",)


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
    """A code that names none of the registry's languages (or no language at all).

    With `near`, the message ends with the codes closest to it, looked up only when the message is read: a reader
    that merely counts bad codes does not pay for the search."""

    def __init__(self, message: str, near: str | None = None) -> None:
        super().__init__(message, near)
        self.message, self.near = message, near

    def __str__(self) -> str:
        if self.near is None:
            return self.message
        return f"{self.message}; closest known: {', '.join(closest_codes(self.near))}"


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
    if tier == "unlisted":
        return []
    return [lang for lang in registry().values() if tier is None or lang.tier == tier]


def from_flores(flores_code: str) -> Language:
    """The Language of a FLORES-200 code such as zsm_Latn; unknown codes raise UnknownLanguageError."""
    return get(flores_code)


# ---- tags: any ISO 639-3 language, with its script (and region), varieties kept distinct -------------------

UNCODED_SCRIPT = "Zzzz"  # ISO 15924 for "uncoded script": a language with no known default and no text to look at


@dataclass(frozen=True)
class Parts:
    """A parsed code: ISO 639-3 language, and the script and region the code itself names (None when it names none)."""

    language: str
    script: str | None
    region: str | None


def _clean_script(raw: str | None) -> str | None:
    if raw is None or not str(raw).strip():
        return None
    script = str(raw).strip().title()
    if script not in script_codes():
        raise UnknownLanguageError(f"unknown script {raw!r} (an ISO 15924 code such as Latn, Cyrl, Arab, Hans, Hant)")
    return script


def _language_subtag(raw: str, sub: str) -> tuple[str, str | None]:
    """(ISO 639-3 code, script implied by a deprecated code such as sh) of one language subtag."""
    import langcodes

    sub = sub.lower()
    codes = iso639_3()
    if len(sub) == 3 and sub in codes and "Deprecated" not in codes[sub]:
        return sub, None
    try:
        norm = langcodes.Language.get(sub, normalize=True)
        plain = alpha3(sub)
    except (ValueError, LookupError):
        norm = plain = None
    if norm is not None and norm.language:
        code = norm.to_alpha3()
        if norm.territory and plain in codes:
            return plain, None  # prs -> fa-AF would merge Dari into Persian: keep the variety the code names
        if code in codes:
            return code, norm.script
    if plain in codes and "Deprecated" not in codes[plain]:
        return plain, None
    raise UnknownLanguageError(f"unknown language code {raw!r} (not an ISO 639-3 code)", near=raw)


@functools.lru_cache(maxsize=65536)
def parse(code: str) -> Parts:
    """Split any code users meet (ISO 639-1/3, FLORES `srp_Latn`, BCP-47 `zh-Hant-TW`, an English name) into
    its canonical ISO 639-3 language and the script and region the code names; UnknownLanguageError otherwise."""
    if not isinstance(code, str) or not code.strip():
        raise UnknownLanguageError(f"empty language code {code!r}")
    raw = code.strip()
    pieces = raw.replace("_", "-").split("-")
    if not pieces[0].isalpha() or not 2 <= len(pieces[0]) <= 3:
        return _by_name(raw)
    lang, script = _language_subtag(raw, pieces[0])
    region = None
    for piece in pieces[1:]:
        if len(piece) == 4 and piece.isalpha() and script is None and region is None:
            script = _clean_script(piece)
        elif (len(piece) == 2 and piece.isalpha() or len(piece) == 3 and piece.isdigit()) and region is None:
            region = piece.upper()
        elif len(piece) == 1:
            break  # an extension (-u-..., -x-...): not part of the variety
        elif len(piece) == 4 and piece.isalpha():
            raise UnknownLanguageError(f"language code {raw!r} names two scripts")
    return Parts(standard_varieties().get(lang, lang), script, region)


def _by_name(raw: str) -> Parts:
    """An English language name ("Swahili", "Kinyarwanda") as Parts."""
    key = raw.lower()
    for lang in registry().values():
        if lang.name.lower() == key:
            return parse(lang.code)
    try:
        import langcodes

        found = langcodes.find(raw)
    except (LookupError, ValueError):
        found = None
    if found is not None and found.language:
        return parse(found.to_tag())
    raise UnknownLanguageError(f"unknown language {raw!r}", near=raw)


@functools.lru_cache(maxsize=65536)
def default_script(language: str, region: str | None = None) -> str:
    """The script a language is written in when nothing says otherwise (zho-TW: Hant; unknown: Zzzz)."""
    from langcodes.data_dicts import LIKELY_SUBTAGS

    lang = parse(language).language
    sub = iso639_3().get(lang, {}).get("subtag", lang)
    if region:
        likely = _likely_script(LIKELY_SUBTAGS.get(f"{sub}-{region}"))
        if likely:
            return likely
    reg = _registry_row(lang)
    if reg is not None:
        return reg.script
    for fl in flores_codes():
        if fl.split("_")[0] == lang:
            return fl.split("_")[1]
    suppress = iso639_3().get(lang, {}).get("Suppress-Script")
    if suppress:
        return suppress
    return _likely_script(LIKELY_SUBTAGS.get(sub)) or UNCODED_SCRIPT


def _likely_script(likely: str | None) -> str | None:
    """The script subtag of a CLDR likely-subtags value such as 'rw-Latn-RW'."""
    return next((p for p in (likely or "").split("-")[1:] if len(p) == 4), None)


def _registry_row(language: str) -> Language | None:
    """The registry row whose own language (or its standard variety) this is; None for other varieties."""
    for lang in registry().values():
        if lang.code == language or standard_varieties().get(lang.code) == language:
            return lang
    return None


@functools.lru_cache(maxsize=65536)
def multi_script(language: str) -> bool:
    """Is the language written in more than one script (srp, zho, aze; ace, kas in FLORES), or in an unknown one?"""
    lang = parse(language).language
    row = _registry_row(lang)
    if row is not None and len(row.scripts) > 1 and row.code == lang:
        return True
    if len({fl.split("_")[1] for fl in flores_codes() if fl.split("_")[0] == lang}) > 1:
        return True
    return default_script(lang) == UNCODED_SCRIPT


@functools.lru_cache(maxsize=65536)
def unspaced(tag_or_script: str) -> bool:
    """Is this script (Hans, Jpan, Thai), or the script a language code is written in (zho, yue-Hant, tha, jpn_Jpan),
    one without spaces between words? A composite script counts when all its members do (Jpan yes, Kore no)."""
    raw = tag_or_script.strip()
    if len(raw) == 4 and raw.isalpha() and raw.title() in script_codes():
        script = raw.title()
    else:
        parts = parse(raw)
        script = parts.script or default_script(parts.language, parts.region)
    return unspaced_script(script)


def tag(code: str, *, script: str | None = None, text: str | None = None) -> str:
    """The normalised tag of any code: its script from the code itself, else `script`, else detected from `text`,
    else the language's default script. Every valid ISO 639-3 code is accepted."""
    parts = parse(code)
    chosen = parts.script or _clean_script(script)
    if chosen is None and text:
        found = detect_script(text)
        default = default_script(parts.language, parts.region)
        # Chinese characters say Hani, not which of Hans / Hant: the language's default decides then
        chosen = default if found is None or found in script_members(default) else found
    chosen = chosen or default_script(parts.language, parts.region)
    return "-".join(x for x in (parts.language, chosen, parts.region) if x)


@functools.lru_cache(maxsize=65536)
def matches(selector: str, code_or_tag: str) -> bool:
    """Does a selection (`zho`, `zho-Hant`, `eng-GB`, `srp_Latn`, or a set name: `aya-101`) include this variety? A
    selector without a script takes every script of its language, one without a region every region; `zho` never
    includes `yue`; a set takes every variety of its rows."""
    if selector in SETS:
        return in_set(code_or_tag, selector)
    want, have = parse(selector), parse(code_or_tag)
    if want.language != have.language:
        return False
    have_script = have.script or default_script(have.language, have.region)
    if want.script and want.script != have_script:
        return False
    if want.region and want.region != have.region:
        return False
    if want.region and not want.script:
        return default_script(want.language, want.region) == have_script
    return True


@functools.lru_cache(maxsize=65536)
def rollup(code_or_tag: str) -> str:
    """The aya-101 registry code a variety merges into for the paper's 101-row tables (yue-Hant, zho-Hant -> zho;
    srp-Latn -> srp; ckb, kmr -> kur; prs -> pes; nno -> nor; eng-Latn-GB -> eng); else its bare ISO 639-3 code."""
    lang = parse(code_or_tag).language
    try:
        return get(lang).code
    except UnknownLanguageError:
        return lang


def in_set(code_or_tag: str, name: str = "aya-101") -> bool:
    """Is the variety's language one of the set's rows (or merged into one by the paper)?"""
    _check_set(name)
    return rollup(code_or_tag) in registry()


@functools.lru_cache(maxsize=65536)
def tier(code_or_tag: str) -> str:
    """The paper's resource tier of the row a variety belongs to: high / mid / low, or "unlisted" outside aya-101."""
    lang = parse(code_or_tag).language
    try:
        return get(lang).tier
    except UnknownLanguageError:
        return "unlisted"


@functools.lru_cache(maxsize=65536)
def display_name(code_or_tag: str) -> str:
    """An English name that tells varieties apart: "Serbian (Latin)", "Chinese (Traditional)", "English (UK)"."""
    import langcodes

    parts = parse(code_or_tag)
    base = _name(parts.language)
    details: list[str] = []
    script = parts.script
    if script and (script != default_script(parts.language) or _has_other_scripts(parts.language)) \
            and script != UNCODED_SCRIPT:
        details.append(_script_names().get(script) or langcodes.Language.get(f"und-{script}").script_name())
    if parts.region:
        details.append(_region_names().get(parts.region) or langcodes.Language.get(f"und-{parts.region}").territory_name())
    return f"{base} ({', '.join(details)})" if details else base


def _name(language: str) -> str:
    import langcodes

    row = registry().get(language)
    if row is not None:
        return row.name
    fields = iso639_3().get(language)
    if fields is None:
        return language
    name = langcodes.Language.get(fields["subtag"], normalize=False).language_name()
    name = name if name and not name.startswith("Unknown") else fields["Description"].split(" | ")[0]
    return name.removesuffix(" (individual language)").removesuffix(" (macrolanguage)")


def _has_other_scripts(language: str) -> bool:
    row = registry().get(language)
    return row is not None and len(row.scripts) > 1


@functools.cache
def _script_names() -> dict[str, str]:
    return dict(scripts_table().get("script_names", {}))


@functools.cache
def _region_names() -> dict[str, str]:
    return dict(scripts_table().get("region_names", {}))


def _check_set(name: str) -> None:
    if name not in SETS:
        raise ValueError(f"unknown language set {name!r}; known sets: {', '.join(SETS)}")


def language_set(name: str = "aya-101") -> list[str]:
    """The tags of a named set in table order (aya-101: each registry language in its standard variety)."""
    _check_set(name)
    return [tag(lang.code) for lang in registry().values()]


def closest_codes(raw: str, n: int = 3) -> list[str]:
    """ISO 639-3 codes nearest to raw: the registry's spellings first, then every code and English name."""
    keys = {**all_spellings(), **_index()}  # a registry spelling names its registry row
    found: list[str] = []
    for key in difflib.get_close_matches(raw.lower(), list(keys), n=4 * n, cutoff=0.6):
        if keys[key] not in found:
            found.append(keys[key])
    return found[:n] or closest(raw, n)


@functools.lru_cache(maxsize=4096)
def info(code_or_tag: str) -> Language:
    """A Language row for any code: the aya-101 registry row when the code names that row's own language (or its
    standard variety: swa, swh, srp-Latn, nob), else a row built from the tag (yue, ckb, prs, nno, kin) with its
    tier ("unlisted" outside the set), name, script and FLORES-200 codes."""
    import langcodes

    parts = parse(code_or_tag)
    row = _registry_row(parts.language)
    if row is not None:
        return row
    lang = parts.language
    script = parts.script or default_script(lang, parts.region)
    sub = iso639_3().get(lang, {}).get("subtag", lang)
    native = langcodes.Language.get(sub, normalize=False).autonym()
    return Language(code=lang, name=_name(lang), native_name=native if native and native != sub else _name(lang),
                    tier=tier(lang), scripts=(script,),
                    flores=tuple(c for c in flores_codes() if c.split("_")[0] == lang),
                    iso1=sub if len(sub) == 2 else None, aliases=())


def normalize_any(code: str) -> str:
    """Like normalize, for any language: the registry code of an Aya language (swh_Latn -> swa), else the ISO 639-3
    code of the variety's language (yue, prs, kin). Scripts and regions are not kept: use tag() for those."""
    return info(code).code
