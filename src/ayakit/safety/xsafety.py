"""XSafety prompts (CSV; Bengali .xlsx) and their deterministic, disjoint train / test split per category."""

from __future__ import annotations

import csv
import difflib
import functools
import hashlib
import random
from collections import defaultdict
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.io import atomic_path, write_manifest
from ayakit.records import example_id
from ayakit.safety.scorers import folder_language


@functools.cache
def xsafety_facts() -> dict:
    """resources/xsafety.yaml: categories, the harmful and benign ones, the test fraction."""
    path = resources.files("ayakit.safety").joinpath("resources/xsafety.yaml")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@dataclass
class HarmPrompt:
    """One XSafety prompt: language, category, its row index in the category file, and its split."""

    id: str
    language: str
    category: str
    index: int
    text: str
    split: str = ""


def category_of(stem: str) -> str | None:
    """The canonical category of a file stem (Insult_n -> Insult; Crimes_And_Illegal_Activitie -> Crimes_...)."""
    facts = xsafety_facts()
    for suffix in facts["file_suffixes"]:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    if stem in facts["categories"]:
        return stem
    close = difflib.get_close_matches(stem, facts["categories"], n=1, cutoff=0.8)
    return close[0] if close else None


def _read_rows(path: Path) -> list[str]:
    if path.suffix == ".xlsx":
        try:
            import openpyxl
        except ImportError:
            raise DataError(f"{path}: reading .xlsx needs openpyxl (pip install openpyxl)") from None
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            rows = [[str(c) for c in row if c is not None] for row in wb.worksheets[0].iter_rows(values_only=True)]
        finally:
            wb.close()
    else:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
    return [", ".join(c.strip() for c in row if c and c.strip()) for row in rows]


def load_xsafety(data_dir: str | Path, languages: list[str] | None = None,
                 categories: list[str] | None = None) -> tuple[list[HarmPrompt], dict[str, list[str]]]:
    """Every prompt of the chosen languages and categories; the dict lists files skipped per language, with why."""
    root = Path(data_dir) / "xsafety"
    if not root.is_dir():
        raise FileNotFoundError(f"XSafety not found at {root} (expected <data_dir>/xsafety)")
    wanted = {L.normalize_any(c) for c in languages} if languages else None
    skipped: dict[str, list[str]] = {}
    prompts: list[HarmPrompt] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            code = folder_language(folder.name)
        except L.UnknownLanguageError:
            continue
        if wanted is not None and code not in wanted:
            continue
        chosen: dict[str, Path] = {}
        for path in sorted(folder.iterdir()):
            if path.suffix not in (".csv", ".xlsx"):
                continue
            cat = category_of(path.stem)
            if cat is None:
                skipped.setdefault(code, []).append(f"{path.name}: unknown category")
                continue
            if categories and cat not in categories:
                continue
            if cat in chosen:  # hi/ has commen_sense.csv beside commonsense.csv: keep the exact name
                keep, drop = (path, chosen[cat]) if path.stem == cat else (chosen[cat], path)
                skipped.setdefault(code, []).append(f"{drop.name}: duplicate of {keep.name}")
                chosen[cat] = keep
            else:
                chosen[cat] = path
        for cat, path in sorted(chosen.items()):
            seen: set[str] = set()
            for i, text in enumerate(_read_rows(path)):
                text = " ".join(text.split())
                if not text or text in seen:
                    continue
                seen.add(text)
                prompts.append(HarmPrompt(example_id("xsafety", code, cat, text), code, cat, i, text))
    return prompts, skipped


def bounded_per_language(prompts: list[HarmPrompt], n: int | None, seed: int) -> list[HarmPrompt]:
    """At most n prompts per language, a seeded sample across categories, in (category, row) order."""
    by_lang: dict[str, list[HarmPrompt]] = defaultdict(list)
    for p in prompts:
        by_lang[p.language].append(p)
    out = []
    for code, items in sorted(by_lang.items()):
        items = sorted(items, key=lambda p: p.id)
        if n is not None and len(items) > n:
            items = random.Random(f"{seed}:{code}").sample(items, n)
        out += sorted(items, key=lambda p: (p.category, p.index))
    return out


def _rank(seed: int, category: str, index: int) -> bytes:
    return hashlib.blake2b(f"{seed}\x1f{category}\x1f{index}".encode(), digest_size=8).digest()


def split_prompts(prompts: list[HarmPrompt], test_fraction: float | None = None, seed: int = 1234) -> list[HarmPrompt]:
    """Assign train / test per category by a seeded hash of the row index (the same rows are test in every
    language, so translations of a test prompt never train); train rows whose text is also a test text are dropped.
    """
    frac = xsafety_facts()["test_fraction"] if test_fraction is None else test_fraction
    if not 0 < frac < 1:
        raise DataError(f"test fraction must be between 0 and 1, got {frac}")
    test_rows: set[tuple[str, int]] = set()
    by_cat: dict[str, set[int]] = {}
    for p in prompts:
        by_cat.setdefault(p.category, set()).add(p.index)
    for cat, rows in by_cat.items():
        ranked = sorted(rows, key=lambda i: _rank(seed, cat, i))
        n_test = max(1, round(len(ranked) * frac))
        test_rows |= {(cat, i) for i in ranked[:n_test]}
    out = [HarmPrompt(**{**asdict(p), "split": "test" if (p.category, p.index) in test_rows else "train"})
           for p in prompts]
    test_texts = {(p.language, p.text) for p in out if p.split == "test"}
    return [p for p in out if p.split == "test" or (p.language, p.text) not in test_texts]


def write_split(prompts: list[HarmPrompt], out_dir: str | Path, inputs: dict) -> Path:
    """out_dir/split.parquet (id, language, category, index, split, text) and its manifest."""
    out_dir = Path(out_dir)
    table = pa.Table.from_pylist([asdict(p) for p in prompts], schema=pa.schema([
        ("id", pa.string()), ("language", pa.string()), ("category", pa.string()), ("index", pa.int32()),
        ("text", pa.string()), ("split", pa.string())]))
    path = out_dir / "split.parquet"
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    counts: dict[str, dict[str, int]] = {}
    for p in prompts:
        c = counts.setdefault(p.language, {"train": 0, "test": 0})
        c[p.split] += 1
    write_manifest(out_dir, "safety-split", inputs, {"split": "split.parquet"}, counts=counts)
    return path


def read_split(path: str | Path) -> list[HarmPrompt]:
    """Prompts from a split.parquet written by write_split."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file {path} does not exist")
    return [HarmPrompt(**row) for row in pq.read_table(path).to_pylist()]


def load_split(data_dir: str | Path, languages: list[str] | None = None, categories: list[str] | None = None,
               test_fraction: float | None = None, seed: int = 1234) -> tuple[list[HarmPrompt], dict]:
    """Load and split XSafety; returns the prompts and what went in (for manifests)."""
    facts = xsafety_facts()
    cats = categories or facts["harmful"] + facts["benign"]
    unknown = [c for c in cats if c not in facts["categories"]]
    if unknown:
        raise DataError(f"unknown XSafety categories {unknown}; known: {', '.join(facts['categories'])}")
    prompts, skipped = load_xsafety(data_dir, languages, cats)
    prompts = split_prompts(prompts, test_fraction, seed)
    inputs = {"data": str(Path(data_dir) / "xsafety"), "languages": languages, "categories": cats,
              "test_fraction": test_fraction if test_fraction is not None else facts["test_fraction"], "seed": seed,
              "skipped_files": skipped}
    return prompts, inputs
