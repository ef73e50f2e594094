"""Regenerate src/ayakit/resources/native_names.tsv from Unicode CLDR (through babel)."""

import csv
from pathlib import Path

from babel import Locale, UnknownLocaleError

from ayakit.languages import languages

# CLDR locale ids where they differ from ISO 639-1 / 639-3
LOCALE = {"twi": "ak", "fil": "fil", "ceb": "ceb", "nso": "nso", "pes": "fa", "msa": "ms", "nor": "no", "zho": "zh"}

out = Path(__file__).resolve().parents[1] / "src/ayakit/resources/native_names.tsv"
rows = []
for lang in languages():
    name = ""
    for loc in (LOCALE.get(lang.code), lang.iso1, lang.code):
        if not loc:
            continue
        try:
            name = Locale.parse(loc).get_display_name(loc) or ""
        except (UnknownLocaleError, ValueError):
            continue
        if name:
            break
    rows.append((lang.code, name))
with out.open("w", encoding="utf-8", newline="") as fh:
    w = csv.writer(fh, delimiter="\t", lineterminator="\n")
    w.writerow(["code", "native_name"])
    w.writerows(rows)
print(f"{sum(1 for _, n in rows if n)}/{len(rows)} native names -> {out}")
