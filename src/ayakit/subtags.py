"""The code tables behind language tags: the IANA language subtag registry (shipped with langcodes'
language_data: every ISO 639-3 code, every ISO 15924 script), the standard varieties of macrolanguages and the
FLORES-200 varieties (data files in ayakit.resources)."""

from __future__ import annotations

import csv
import functools
from importlib import resources


@functools.cache
def _subtag_registry() -> dict[str, dict[str, dict[str, str]]]:
    """The IANA language subtag registry (shipped with langcodes' language_data): type -> subtag -> fields."""
    text = resources.files("language_data").joinpath("data", "language-subtag-registry.txt").read_text("utf-8")
    out: dict[str, dict[str, dict[str, str]]] = {}
    for entry in text.split("\n%%\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in entry.splitlines():
            if line.startswith("  ") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = (x.strip() for x in line.split(":", 1))
                fields[key] = f"{fields[key]} | {value}" if key in fields else value
        if "Subtag" in fields and ".." not in fields["Subtag"]:
            out.setdefault(fields.get("Type", ""), {})[fields["Subtag"]] = fields
    return out


def alpha3(subtag: str) -> str:
    import langcodes

    return langcodes.Language.get(subtag, normalize=False).to_alpha3()


@functools.cache
def iso639_3() -> dict[str, dict[str, str]]:
    """Every valid ISO 639-3 code (individual languages and macrolanguages) -> its IANA registry fields."""
    out: dict[str, dict[str, str]] = {}
    for sub, fields in _subtag_registry().get("language", {}).items():
        if fields.get("Scope") in ("special", "collection", "private-use"):
            continue
        code = alpha3(sub) if len(sub) == 2 else sub
        out[code] = {**fields, "subtag": sub}
    return out


@functools.cache
def script_codes() -> frozenset[str]:
    return frozenset(_subtag_registry().get("script", {}))


def _tsv(name: str) -> list[dict[str, str]]:
    with resources.files("ayakit.resources").joinpath(name).open(encoding="utf-8") as fh:
        return list(csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t"))


@functools.cache
def standard_varieties() -> dict[str, str]:
    """Macrolanguage code -> the variety it means (ara -> arb, swa -> swh), and cmn -> zho (the data file)."""
    return {r["code"]: r["standard"] for r in _tsv("standard_varieties.tsv")}


@functools.cache
def flores_codes() -> tuple[str, ...]:
    """The FLORES-200 varieties (`lang_Script`), in the data file's order."""
    text = resources.files("ayakit.resources").joinpath("flores200.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


@functools.cache
def all_spellings() -> dict[str, str]:
    out: dict[str, str] = {}
    for code, fields in iso639_3().items():
        out.setdefault(code, code)
        for name in fields.get("Description", "").split(" | "):
            out.setdefault(name.lower(), code)
    return out
