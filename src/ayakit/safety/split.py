"""The XSafety train / test split of a run: made once (every language and category, one seed and test fraction),
recorded in <safety dir>/split/, and the only split every later safety step uses; a held-out prompt never trains.

Three guards: a recorded split is reused (a different test fraction is refused, a different seed only reseeds
sampling); a split named by a distilled `safety` source of the recipe is adopted (so the held-out prompts are those
its teacher never answered); evaluation refuses a model whose training data contains a held-out prompt.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

from ayakit.errors import DataError
from ayakit.io import file_sha256, read_json
from ayakit.safety.xsafety import HarmPrompt, load_split, read_split, write_split

SPLIT_DIR = "split"
SPLIT_FILE = "split.parquet"


class SplitError(DataError):
    """A command that would evaluate on, or train with, prompts of another split than the recorded one."""


def split_path(safety_dir: str | Path) -> Path:
    """Where a run records its split: <safety dir>/split/split.parquet."""
    return Path(safety_dir) / SPLIT_DIR / SPLIT_FILE


def describe(path: str | Path) -> dict:
    """What identifies a recorded split: its path, file hash, seed and test fraction (from its manifest)."""
    path = Path(path)
    manifest = path.parent / "manifest.json"
    inputs = read_json(manifest).get("inputs", {}) if manifest.is_file() else {}
    return {"path": str(path.resolve()), "sha256": file_sha256(path), "seed": inputs.get("seed"),
            "test_fraction": inputs.get("test_fraction")}


def make_split(data_dir: str | Path, seed: int, test_fraction: float | None, dest: str | Path) -> Path:
    """Split every XSafety language and category (so the split does not depend on which languages a command asks
    for) and record it in dest/split.parquet with its manifest."""
    prompts, inputs = load_split(data_dir, None, None, test_fraction, seed)
    return write_split(prompts, Path(dest), inputs)


def adopt(source: str | Path, safety_dir: str | Path) -> Path:
    """Copy a recorded split (and its manifest) into this safety dir's split folder."""
    source = Path(source)
    dest = split_path(safety_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for name in (SPLIT_FILE, "manifest.json"):
        if (source.parent / name).is_file():
            shutil.copyfile(source.parent / name, dest.parent / name)
    return dest


def ensure_split(safety_dir: str | Path, data_dir: str | Path, seed: int, test_fraction: float | None = None,
                 required: str | Path | None = None) -> tuple[list[HarmPrompt], dict, str]:
    """The split of this safety dir: the recorded one, else `required` (a split training already used), else a new
    one. Returns (prompts, its description, what happened: 'recorded' | 'adopted' | 'made')."""
    path = split_path(safety_dir)
    if path.is_file():
        info = describe(path)
        if test_fraction is not None and info["test_fraction"] is not None \
                and abs(float(info["test_fraction"]) - test_fraction) > 1e-9:
            raise SplitError(f"{path} was made with test fraction {info['test_fraction']} (seed {info['seed']}); "
                             f"test fraction {test_fraction} would move held-out prompts into training. The split is "
                             "made once per run: drop the option, or measure into another run / --out folder.")
        if required is not None and Path(required).is_file() and file_sha256(required) != info["sha256"]:
            raise SplitError(f"{path} differs from the split the model's safety data was distilled with "
                             f"({required}): its held-out prompts may have trained. Measure into another --out.")
        status = "recorded"
    elif required is not None:
        if not Path(required).is_file():
            raise SplitError(f"the safety data was distilled with the split {required}, which no longer exists")
        adopt(required, safety_dir)
        status = "adopted"
    else:
        make_split(data_dir, seed, test_fraction, path.parent)
        status = "made"
    return read_split(path), describe(path), status


def distilled_split(sources: Iterable[dict]) -> Path | None:
    """The split named by the manifests of the recipe's distilled safety sources (a `files` source of kind safety
    whose folder holds a safety-distill manifest); an error when they name different splits."""
    found: dict[str, Path] = {}
    for src in sources:
        if src.get("kind") != "safety" or not src.get("path"):
            continue
        manifest = Path(src["path"]).expanduser().parent / "manifest.json"
        if not manifest.is_file():
            continue
        split = (read_json(manifest).get("split") or {})
        if split.get("path"):
            found[split.get("sha256") or split["path"]] = Path(split["path"])
    if len(found) > 1:
        raise SplitError(f"the recipe's safety sources were distilled with different splits: "
                         f"{sorted(str(p) for p in found.values())}")
    return next(iter(found.values()), None)


def training_inputs(data_dir: str | Path) -> set[str]:
    """Every training input of a mixture folder (shards-*.parquet), whitespace-normalised."""
    out: set[str] = set()
    for shard in sorted(Path(data_dir).glob("shards-*.parquet")):
        for text in pq.read_table(shard, columns=["inputs"]).column("inputs").to_pylist():
            if text:
                out.add(" ".join(text.split()))
    return out


def check_disjoint(prompts: list[HarmPrompt], data_dir: str | Path | None) -> int:
    """Refuse when a held-out (test) prompt is among the training inputs in data_dir; returns the inputs checked."""
    if data_dir is None or not Path(data_dir).is_dir():
        return 0
    inputs = training_inputs(data_dir)
    leaked = sorted({p.text for p in prompts if p.split == "test" and p.text in inputs})
    if leaked:
        raise SplitError(f"{len(leaked)} held-out safety prompt(s) are in the training data of {data_dir} (first: "
                         f"{leaked[0][:80]!r}): the model has seen its test prompts, its harm numbers would not be "
                         "held out. Rebuild its safety source from this run's split.")
    return len(inputs)


def select(prompts: list[HarmPrompt], languages: list[str] | None = None,
           categories: list[str] | None = None) -> list[HarmPrompt]:
    """The prompts of these languages (None: all) and harmful categories (None: the paper's six), plus the benign
    set (over-refusal); an unknown language or category is an error naming the known ones."""
    from ayakit import languages as L
    from ayakit.safety.xsafety import xsafety_facts

    facts = xsafety_facts()
    cats = list(categories or facts["harmful"])
    unknown = [c for c in cats if c not in facts["categories"]]
    if unknown:
        raise DataError(f"unknown XSafety categories {unknown}; known: {', '.join(facts['categories'])}")
    have = sorted({p.language for p in prompts})
    wanted = {L.normalize_any(c) for c in languages} if languages else set(have)
    missing = sorted(wanted - set(have))
    if missing:
        raise DataError(f"XSafety has no prompts in {missing}; it has {', '.join(have)}")
    keep = set(cats) | set(facts["benign"])
    return [p for p in prompts if p.language in wanted and p.category in keep]
