"""Facts for the embedded task families, read from installed packages: Unicode CLDR (babel), num2words, chatterbot-corpus.

Each extractor returns a list of records (dicts) for one language; every record has a stable `key`. A value that
CLDR does not really have for a language (babel falls back to the root locale: `M01`, `2021 M03 14`) is left out,
so thin locales yield fewer facts rather than placeholders.
"""

from __future__ import annotations

import functools
import random
import unicodedata
from collections.abc import Callable
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from babel import Locale, UnknownLocaleError, localedata

from ayakit.languages import get

Facts = list[dict[str, Any]]


@functools.cache
def catalog() -> dict[str, Any]:
    """The parsed families.yaml (families, licences, and the fact tables)."""
    text = resources.files("ayakit.data.templates").joinpath("families.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@functools.cache
def cldr_locale(language: str) -> Locale | None:
    """The babel Locale of a registry language, or None when CLDR has no locale for it."""
    lang = get(language)
    override = catalog().get("cldr_locales", {}).get(lang.code)
    for cand in (override, lang.iso1, lang.code):
        if cand and localedata.exists(cand):
            try:
                return Locale.parse(cand)
            except (UnknownLocaleError, ValueError):
                continue
    return None


@functools.cache
def _root() -> Locale:
    return Locale.parse("root")


@functools.cache
def _english() -> Locale:
    return Locale.parse("en")


def _real(value: str | None, root_value: str | None) -> bool:
    return bool(value) and value != root_value


def _seeded(seed: int, language: str, family: str) -> random.Random:
    return random.Random(f"{seed}:{language}:{family}")


def _names(table: Any, root: Any) -> dict[int, str]:
    """Stand-alone wide names, falling back to the format context where the stand-alone one is the root's."""
    alone, fmt = table["stand-alone"]["wide"], table["format"]["wide"]
    root_alone, root_fmt = root["stand-alone"]["wide"], root["format"]["wide"]
    out = {}
    for i in alone:
        value = alone[i] if _real(alone.get(i), root_alone.get(i)) else fmt.get(i)
        if _real(value, root_fmt.get(i)) and _real(value, root_alone.get(i)):
            out[i] = value
    return out


def months(language: str, seed: int = 0, n: int = 0) -> Facts:
    """The 12 native month names (stand-alone form) with their number and English name."""
    loc = cldr_locale(language)
    if loc is None:
        return []
    native = _names(loc.months, _root().months)
    root = _root().months["stand-alone"]["wide"]
    english = _english().months["stand-alone"]["wide"]
    out = [{"key": f"month{i}", "number": i, "english": english[i], "native": native[i]}
           for i in range(1, 13) if _real(native.get(i), root.get(i))]
    return out if len(out) == 12 else []


def weekdays(language: str, seed: int = 0, n: int = 0) -> Facts:
    """The 7 native weekday names (stand-alone form), Monday = 1, with their English names."""
    loc = cldr_locale(language)
    if loc is None:
        return []
    native = _names(loc.days, _root().days)
    root = _root().days["stand-alone"]["wide"]
    english = _english().days["stand-alone"]["wide"]
    out = [{"key": f"day{i + 1}", "number": i + 1, "english": english[i], "native": native[i]}
           for i in range(7) if _real(native.get(i), root.get(i))]
    return out if len(out) == 7 else []


def month_or_weekday(language: str, seed: int = 0, n: int = 0) -> Facts:
    """Native month and weekday names, each flagged is_month (for yes/no questions)."""
    out = [{"key": f"m{f['number']}", "word": f["native"], "english": f["english"], "is_month": True}
           for f in months(language)]
    out += [{"key": f"d{f['number']}", "word": f["native"], "english": f["english"], "is_month": False}
            for f in weekdays(language)]
    return out if len(out) == 19 else []


def countries(language: str, seed: int = 0, n: int = 0) -> Facts:
    """Native names of the catalogue's countries, where CLDR names them in this language."""
    loc = cldr_locale(language)
    if loc is None:
        return []
    en = _english().territories
    return [{"key": code, "english": en[code], "native": loc.territories[code]}
            for code in catalog()["countries"] if loc.territories.get(code)]


def language_names(language: str, seed: int = 0, n: int = 0) -> Facts:
    """Native names of the catalogue's languages, where CLDR names them in this language."""
    loc = cldr_locale(language)
    if loc is None:
        return []
    en = _english().languages
    return [{"key": code, "english": en[code], "native": loc.languages[code]}
            for code in catalog()["language_names"] if loc.languages.get(code)]


def _formatted(language: str, seed: int, n: int, family: str,
               make: Callable[[random.Random], tuple[dict[str, Any], Callable[[Locale], str]]],
               root_is_missing: bool = True) -> Facts:
    """n random values formatted by CLDR in this language; with root_is_missing, values formatted exactly the root
    locale's way (a sign CLDR lacks the data: '2021 M03 14', '+3 d') are left out."""
    loc = cldr_locale(language)
    if loc is None:
        return []
    rng = _seeded(seed, language, family)
    out: Facts = []
    seen: set[str] = set()
    for _ in range(n * 3):
        if len(out) >= n:
            break
        record, fmt = make(rng)
        try:
            value = fmt(loc)
            root_value = fmt(_root())
        except (KeyError, ValueError, AttributeError):
            continue
        key = "|".join(str(record[k]) for k in sorted(record))
        if key in seen or not value or (root_is_missing and value == root_value):
            continue
        seen.add(key)
        out.append({"key": key, **record, "native": value})
    return out


def decimals(language: str, seed: int = 0, n: int = 12) -> Facts:
    """Plain numbers and the language's way of writing them (grouping, decimal separator, digits)."""
    from babel.numbers import format_decimal

    def make(rng: random.Random):
        x = round(rng.uniform(1000, 9_999_999), rng.choice((0, 2, 3)))
        plain = f"{x:.3f}".rstrip("0").rstrip(".")
        return {"number": plain}, lambda loc: format_decimal(x, locale=loc, numbering_system="default")

    # the root pattern (#,##0.###) is what many locales really use: equal to root is not missing here
    return _formatted(language, seed, n, "decimals", make, root_is_missing=False)


def dates(language: str, seed: int = 0, n: int = 12) -> Facts:
    """ISO dates and their long form in the language."""
    from babel.dates import format_date

    def make(rng: random.Random):
        d = date(1990, 1, 1) + timedelta(days=rng.randrange(0, 365 * 40))
        return {"iso": d.isoformat()}, lambda loc: format_date(d, "long", locale=loc)

    return _formatted(language, seed, n, "dates", make)


def currencies(language: str, seed: int = 0, n: int = 12) -> Facts:
    """Amounts in a currency, formatted the language's way."""
    from babel.numbers import format_currency

    codes = catalog()["currencies"]

    def make(rng: random.Random):
        amount = round(rng.uniform(1, 5000), 2)
        code = rng.choice(codes)
        return ({"amount": f"{amount:.2f}", "currency": code},
                lambda loc: format_currency(amount, code, locale=loc))

    return _formatted(language, seed, n, "currencies", make)


def units(language: str, seed: int = 0, n: int = 12) -> Facts:
    """Quantities with a unit, spelled out the language's (long) way."""
    from babel.units import format_unit, get_unit_name

    names = catalog()["units"]

    def make(rng: random.Random):
        value = rng.randrange(2, 100)
        unit = rng.choice(names)
        english = get_unit_name(unit, length="long", locale="en") or unit
        return ({"value": value, "unit": english.lower()},
                lambda loc: format_unit(value, unit, length="long", locale=loc))

    return _formatted(language, seed, n, "units", make)


def relative_times(language: str, seed: int = 0, n: int = 12) -> Facts:
    """Offsets such as 'in 3 days' / '2 hours ago' in the language."""
    from babel.dates import format_timedelta

    kinds = catalog()["relative_units"]

    def make(rng: random.Random):
        unit = rng.choice(sorted(kinds))
        amount = rng.randint(*kinds[unit])
        sign = rng.choice((1, -1))
        delta = timedelta(**{unit: amount * sign})
        english = f"in {amount} {unit}" if sign > 0 else f"{amount} {unit} ago"
        return ({"english": english},
                lambda loc: format_timedelta(delta, add_direction=True, locale=loc))

    return _formatted(language, seed, n, "relative_times", make)


def lists(language: str, seed: int = 0, n: int = 6) -> Facts:
    """Native weekday names, joined by the language's list pattern (CLDR list formatting)."""
    from babel.lists import format_list

    loc = cldr_locale(language)
    days = weekdays(language)
    if loc is None or not days:
        return []
    rng = _seeded(seed, language, "lists")
    out: Facts = []
    for i in range(n):
        k = rng.randrange(2, 5)
        items = [d["native"] for d in rng.sample(days, k)]
        out.append({"key": f"list{i}:" + "|".join(items), "items": items, "native": format_list(items, locale=loc)})
    return out


@functools.cache
def _num2words_code(language: str) -> str | None:
    from num2words import CONVERTER_CLASSES

    lang = get(language)
    code = catalog().get("num2words_languages", {}).get(lang.code) or lang.iso1
    return code if code in CONVERTER_CLASSES else None


def number_words(language: str, seed: int = 0, n: int = 12) -> Facts:
    """Numbers spelled out in words by num2words, where it covers the language."""
    from num2words import num2words

    code = _num2words_code(language)
    if code is None:
        return []
    rng = _seeded(seed, language, "number_words")
    out: Facts = []
    seen: set[int] = set()
    for _ in range(n * 3):
        if len(out) >= n:
            break
        x = rng.choice((rng.randrange(0, 20), rng.randrange(20, 100), rng.randrange(100, 1000),
                        rng.randrange(1000, 100000)))
        if x in seen:
            continue
        seen.add(x)
        try:
            words = num2words(x, lang=code)
        except (NotImplementedError, KeyError, ValueError, TypeError, IndexError, AttributeError):
            continue
        if words:
            out.append({"key": str(x), "number": x, "native": words})
    return out


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster


@functools.cache
def _chatterbot_pairs(code: str) -> tuple[tuple[str, str, str, str], ...]:
    """(key, prompt, reply, script) pairs of consecutive dialogue turns of one registry language."""
    try:
        import chatterbot_corpus
    except ImportError:
        return ()
    root = Path(chatterbot_corpus.__file__).parent / "data"
    out: list[tuple[str, str, str, str]] = []
    for folder, (lang, script) in sorted(catalog()["chatterbot_languages"].items()):
        if lang != code:
            continue
        for path in sorted((root / folder).glob("*.yml")):
            try:
                doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
            except (yaml.YAMLError, UnicodeDecodeError):
                continue
            for ci, conv in enumerate(doc.get("conversations") or []):
                turns = [t.strip() for t in conv if isinstance(t, str) and t.strip()] if isinstance(conv, list) else []
                for ti in range(len(turns) - 1):
                    out.append((f"{folder}/{path.stem}/{ci}/{ti}", turns[ti], turns[ti + 1], script))
    return tuple(out)


def dialogue_turns(language: str, seed: int = 0, n: int = 0) -> Facts:
    """Human-written dialogue turns and the reply that follows each (chatterbot-corpus)."""
    pairs = _chatterbot_pairs(get(language).code)
    return [{"key": k, "prompt": p, "reply": r, "script": s} for k, p, r, s in pairs]


def weekday_pick(language: str, seed: int = 0, n: int = 0) -> Facts:
    """One item per weekday: the weekday among 3 native month names (choice order fixed by the seed)."""
    days, mons = weekdays(language), months(language)
    if not days or not mons:
        return []
    rng = _seeded(seed, language, "weekday_pick")
    out: Facts = []
    for d in days:
        distractors = _similar_length(d["native"], [m["native"] for m in mons], 3, rng)
        out.append(_choice_item(f"day{d['number']}", d["native"], distractors, rng,
                                number=d["number"], english=d["english"]))
    return [item for item in out if item]


def month_pick(language: str, seed: int = 0, n: int = 0) -> Facts:
    """One item per month: its native name among 3 other native month names."""
    mons = months(language)
    if not mons:
        return []
    rng = _seeded(seed, language, "month_pick")
    out: Facts = []
    for m in mons:
        others = [o["native"] for o in mons if o["number"] != m["number"]]
        out.append(_choice_item(f"month{m['number']}", m["native"], _similar_length(m["native"], others, 3, rng), rng,
                                number=m["number"], english=m["english"]))
    return [item for item in out if item]


def text_script(text: str) -> str:
    """The Unicode script most of a text's letters belong to (first word of their Unicode names: LATIN, CJK...)."""
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            if name:
                counts[name.split()[0]] = counts.get(name.split()[0], 0) + 1
    return max(counts, key=counts.get) if counts else ""


@functools.cache
def _calendar_names() -> dict[str, dict[str, tuple[str, str]]]:
    """key (month1..12, day1..7) -> language -> (native name, its script), over every registry language."""
    from ayakit.languages import languages

    out: dict[str, dict[str, tuple[str, str]]] = {}
    for lang in languages():
        for rec in months(lang.code) + weekdays(lang.code):
            out.setdefault(rec["key"], {})[lang.code] = (rec["native"], text_script(rec["native"]))
    return out


def _language_pick(language: str, seed: int, same_script: bool) -> Facts:
    """One item per month and weekday: its name in `language` among the SAME fact in 3 other languages."""
    code = get(language).code
    family = "language_pick_same" if same_script else "language_pick_script"
    rng = _seeded(seed, code, family)
    names = _calendar_names()
    out: Facts = []
    for rec in months(code) + weekdays(code):
        gold, script = names[rec["key"]][code]
        pool = sorted({name for other, (name, scr) in names[rec["key"]].items()
                       if other != code and name != gold and (scr == script) == same_script})
        if len(pool) < 3:
            continue
        item = _choice_item(rec["key"], gold, _similar_length(gold, pool, 3, rng), rng,
                            english=rec["english"], script=script)
        if item:
            out.append(item)
    return out


def language_pick_script(language: str, seed: int = 0, n: int = 0) -> Facts:
    """Language fidelity across scripts: a month or weekday name in the language among the same name in 3
    languages written in other scripts."""
    return _language_pick(language, seed, same_script=False)


def language_pick_same(language: str, seed: int = 0, n: int = 0) -> Facts:
    """Language fidelity within a script: the name among the same name in 3 other languages of the same script
    (empty for a language whose script too few others share)."""
    return _language_pick(language, seed, same_script=True)


def calendar_names(language: str, seed: int = 0, n: int = 0) -> Facts:
    """The 12 month and 7 weekday names of a language (with their English names), for generation tasks."""
    return months(language) + weekdays(language) if months(language) and weekdays(language) else []


def _similar_length(gold: str, pool: list[str], k: int, rng: random.Random) -> list[str]:
    """k distractors drawn from the 2k of the pool closest in length to the gold answer, so that a model's bias
    for short (or long) strings cannot pick the answer on its own."""
    ranked = sorted(pool, key=lambda w: (abs(len(w) - len(gold)), rng.random()))
    return rng.sample(ranked[: 2 * k], k)


def _choice_item(key: str, gold: str, distractors: list[str], rng: random.Random, **extra: Any) -> dict[str, Any]:
    """A choice record; empty when two choices are the same string (the item could not be scored)."""
    choices = [gold, *distractors]
    rng.shuffle(choices)
    if len(set(choices)) < len(choices):
        return {}
    return {"key": key, "choices": choices, "gold": choices.index(gold), **extra}


EXTRACTORS: dict[str, Callable[..., Facts]] = {
    f.__name__: f for f in (months, weekdays, month_or_weekday, countries, language_names, decimals, dates,
                            currencies, units, relative_times, lists, number_words, dialogue_turns,
                            weekday_pick, month_pick, language_pick_script, language_pick_same,
                            calendar_names)
}
