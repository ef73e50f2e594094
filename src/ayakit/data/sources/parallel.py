"""Public parallel data as translation instructions in both directions (X->eng and eng->X), training split only.

`flores`: FLORES-200 text, in the SIB-200 layout (`sib200/data/annotated/<flores_code>/{train,dev,test}.tsv`,
columns index_id, category, text; rows parallel through index_id; `train.tsv` is read) or the official layout
(`flores200_dataset/{dev,devtest}/<code>.{dev,devtest}`, line-aligned; `dev` is read). Kind human (the text is
human-translated), dataset flores200, licence CC-BY-SA-4.0.
`tatoeba`: LASER's Tatoeba test sets (`tatoeba/data/tatoeba/v1/tatoeba.<xxx>-eng.{xxx,eng}`, line-aligned);
`tatoeba_split` partitions each pair's line indexes into train and held-out, and only the train lines are read
here, so evaluation can use exactly the complementary lines. Kind human, licence CC-BY-2.0-FR.

Both take their folder from `path:` (the data dir or the dataset's own folder) or the recipe's data dir
(`data_dir` / $AYAKIT_DATA_DIR). Options: `optional: true` (a missing folder yields nothing and sets
`Source.skipped_reason` instead of failing), `per_language: N` (at most N sentence pairs per language),
`directions: [to_eng, from_eng]` (default both), `variants: K` (templates per pair and direction, default 1);
tatoeba also `heldout_fraction` (default 0.5).

Languages: without a selection (data.languages or the source's `languages`), the Aya-101 languages (FLORES: the
first variety of each the data has); with one, every variety in the data it selects (FLORES `yue_Hant`,
`srp_Latn`, Tatoeba `kab`...). Tatoeba languages outside the default set are counted as not selected.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ayakit.data.sources.base import Source, make_source, skipped_source
from ayakit.data.templating import TemplateError, load_templates, render
from ayakit.errors import DataError
from ayakit import languages as L
from ayakit.languages import UnknownLanguageError, languages
from ayakit.recipe import Recipe, SourceSpec

DIRECTIONS = ("to_eng", "from_eng")


def _root(spec: SourceSpec, recipe: Recipe) -> Path | None:
    if spec.path:
        return Path(spec.path).expanduser()
    return recipe.resolved_data_dir()


def _first_dir(candidates: list[Path], marker: str) -> Path | None:
    return next((c for c in candidates if (c / marker).exists()), None)


@dataclass(frozen=True)
class Variety:
    """One language variety of a parallel dataset: the code its rows carry, its English name, its sampling key."""

    code: str  # as the data names it (zho_Hant, kab): the batch builder turns it into a tag
    name: str
    key: str  # the registry code for Aya languages (the same samples as before varieties), else the tag


def variety(code: str) -> Variety:
    """The Variety of a dataset's language code (UnknownLanguageError when it names no language)."""
    tag = L.tag(code)
    try:
        row = L.get(tag)
    except UnknownLanguageError:
        return Variety(code, L.display_name(L.parse(tag).language), tag)
    same = L.parse(tag).language == L.parse(row.code).language
    return Variety(code, row.name if same else L.display_name(L.parse(tag).language), row.code)


def _pairs_to_rows(spec: SourceSpec, recipe: Recipe, lang: Variety, pairs: list[tuple[str, str, str]],
                   dataset: str, script: str = "") -> Iterator[dict[str, Any]]:
    """Translation rows from (key, x_text, eng_text) pairs of one language."""
    opts = spec.options
    directions = list(opts.get("directions", DIRECTIONS))
    bad = set(directions) - set(DIRECTIONS)
    if bad:
        raise DataError(f"source {spec.name!r}: unknown directions {sorted(bad)}; use {list(DIRECTIONS)}")
    variants = int(opts.get("variants", 1))
    cap = opts.get("per_language")
    templates = load_templates("translation")
    rng = random.Random(f"{recipe.seed}:{dataset}:{lang.key}")
    if cap is not None and len(pairs) > int(cap):
        pairs = sorted(rng.sample(pairs, int(cap)))
    for _key, x_text, eng_text in pairs:
        if not x_text.strip() or not eng_text.strip():
            continue
        for direction in directions:
            to_eng = direction == "to_eng"
            record = {"src_name": lang.name if to_eng else "English", "tgt_name": "English" if to_eng else lang.name,
                      "src_text": x_text if to_eng else eng_text, "tgt_text": eng_text if to_eng else x_text}
            for tpl in rng.sample(templates, min(variants, len(templates))):
                try:
                    inputs, targets, _ = render(tpl, record, "eng")
                except TemplateError:
                    continue
                yield {"inputs": inputs, "targets": targets, "language": lang.code, "script": script, "dataset": dataset,
                       "task": "translation", "template": f"{tpl.id}.{direction}", "split": "train"}


def _flores_codes(source: Source, present: list[str]) -> list[str]:
    """The FLORES codes to read: by default the first variety of each Aya language, else every selected one."""
    if source.languages is None:
        have = set(present)
        firsts = (next((c for c in lang.flores if c in have), None) for lang in languages() if lang.code != "eng")
        return [c for c in firsts if c]
    out = []
    for code in present:
        try:
            tag = L.tag(code)
        except UnknownLanguageError:
            continue
        if L.parse(tag).language != "eng" and source.languages.keeps(tag):
            out.append(code)
    return out


def _missing(spec: SourceSpec, kind: str, license: str, what: str) -> Source:
    if spec.options.get("optional"):
        return skipped_source(spec, kind, license, what)
    raise DataError(f"source {spec.name!r}: {what} (set `path:`, the recipe's data_dir or $AYAKIT_DATA_DIR, "
                    "or mark the source `options: {optional: true}`)")


def _read_sib(path: Path) -> dict[str, str]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"index_id", "text"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}: missing column(s) {sorted(missing)}; the file has columns {reader.fieldnames}")
        return {row["index_id"]: row["text"] for row in reader}


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def flores_reader(spec: SourceSpec, recipe: Recipe) -> Source:
    """FLORES-200 (SIB-200 or official layout) as translation instructions, train split only (module docstring)."""
    kind, license = "human", "CC-BY-SA-4.0"
    root = _root(spec, recipe)
    if root is None or not root.is_dir():
        return _missing(spec, kind, license, f"FLORES-200 data folder {root or '(no data dir set)'} does not exist")
    sib = _first_dir([root, root / "annotated", root / "data" / "annotated", root / "sib200" / "data" / "annotated"],
                     "eng_Latn/train.tsv")
    official = _first_dir([root, root / "flores200_dataset"], "dev/eng_Latn.dev")
    if sib is None and official is None:
        return _missing(spec, kind, license, f"no FLORES-200 data under {root} (expected sib200/data/annotated/"
                                             "<code>/train.tsv or flores200_dataset/dev/<code>.dev)")

    def rows(source: Source) -> Iterator[dict[str, Any]]:
        if sib is not None:
            eng = _read_sib(sib / "eng_Latn" / "train.tsv")
        else:
            eng_lines = _read_lines(official / "dev" / "eng_Latn.dev")
        if sib is not None:
            present = sorted(p.name for p in sib.iterdir() if (p / "train.tsv").is_file())
        else:
            present = sorted(p.name[:-len(".dev")] for p in (official / "dev").glob("*.dev"))
        for unit, code in enumerate(_flores_codes(source, present)):  # one language is one unit of a shard
            if not source.owns(unit):
                continue
            lang = variety(code)
            if sib is not None:
                x = _read_sib(sib / code / "train.tsv")
                pairs = [(k, x[k], eng[k]) for k in sorted(x, key=_int_or_str) if k in eng]
            else:
                x_lines = _read_lines(official / "dev" / f"{code}.dev")
                if len(x_lines) != len(eng_lines):
                    raise DataError(f"{official / 'dev' / f'{code}.dev'}: {len(x_lines)} lines, but eng_Latn.dev has "
                                    f"{len(eng_lines)}; the official layout is line-aligned")
                pairs = [(str(i), a, b) for i, (a, b) in enumerate(zip(x_lines, eng_lines))]
            yield from _pairs_to_rows(spec, recipe, lang, pairs, "flores200", script=code.split("_")[-1])

    return make_source(spec, recipe, kind=kind, license=license, rows=rows, shardable=True)


def _int_or_str(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 30, key)


def tatoeba_split(n_lines: int, seed: int = 0, heldout_fraction: float = 0.5) -> tuple[list[int], list[int]]:
    """(train, held-out) line indexes of an n-line Tatoeba pair: a seeded partition, both lists sorted."""
    if not 0 <= heldout_fraction <= 1:
        raise ValueError(f"heldout_fraction must be in [0, 1], got {heldout_fraction}")
    order = list(range(n_lines))
    random.Random(f"tatoeba:{seed}").shuffle(order)
    n_held = round(n_lines * heldout_fraction)
    return sorted(order[n_held:]), sorted(order[:n_held])


def tatoeba_files(root: Path) -> dict[str, tuple[Path, Path]]:
    """Tatoeba code (xxx) -> (xxx side, eng side) under a folder holding tatoeba.<xxx>-eng.* files."""
    out = {}
    for f in sorted(root.glob("tatoeba.*-eng.eng")):
        code = f.name[len("tatoeba."):-len("-eng.eng")]
        other = f.with_name(f"tatoeba.{code}-eng.{code}")
        if other.is_file():
            out[code] = (other, f)
    return out


def tatoeba_reader(spec: SourceSpec, recipe: Recipe) -> Source:
    """Tatoeba pairs with English as translation instructions; only the train side of tatoeba_split (module docstring)."""
    kind, license = "human", "CC-BY-2.0-FR"
    root = _root(spec, recipe)
    if root is None or not root.is_dir():
        return _missing(spec, kind, license, f"Tatoeba data folder {root or '(no data dir set)'} does not exist")
    folder = _first_dir([root, root / "v1", root / "data" / "tatoeba" / "v1",
                         root / "tatoeba" / "data" / "tatoeba" / "v1"], "tatoeba.fra-eng.eng")
    if folder is None:
        folder = next((c for c in [root, root / "tatoeba" / "data" / "tatoeba" / "v1"]
                       if c.is_dir() and tatoeba_files(c)), None)
    if folder is None:
        return _missing(spec, kind, license, f"no Tatoeba files (tatoeba.<xxx>-eng.{{xxx,eng}}) under {root}")
    fraction = float(spec.options.get("heldout_fraction", 0.5))
    pairs_by_file = tatoeba_files(folder)

    def rows(source: Source) -> Iterator[dict[str, Any]]:
        for unit, (code, (x_path, eng_path)) in enumerate(pairs_by_file.items()):  # a file pair is one unit
            if not source.owns(unit):
                continue
            try:
                lang, tag = variety(code), L.tag(code)
            except UnknownLanguageError:
                n = len(_read_lines(x_path))
                source.dropped_languages[code] = source.dropped_languages.get(code, 0) + n
                continue
            if L.parse(tag).language == "eng":
                continue
            if not (source.languages.keeps(tag) if source.languages is not None else L.in_set(tag)):
                if source.languages is None:  # outside the default set: say so
                    source.unselected[tag] = source.unselected.get(tag, 0) + len(_read_lines(x_path))
                continue
            x_lines, eng_lines = _read_lines(x_path), _read_lines(eng_path)
            if len(x_lines) != len(eng_lines):
                raise DataError(f"{x_path}: {len(x_lines)} lines but {eng_path.name} has {len(eng_lines)}; "
                                "Tatoeba pairs are line-aligned")
            train, _held = tatoeba_split(len(x_lines), recipe.seed, fraction)
            pairs = [(str(i), x_lines[i], eng_lines[i]) for i in train]
            yield from _pairs_to_rows(spec, recipe, lang, pairs, "tatoeba")

    return make_source(spec, recipe, kind=kind, license=license, rows=rows, shardable=True)
