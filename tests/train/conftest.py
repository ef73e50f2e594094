"""Fixtures for the train tests: a small real mixture (CLDR month and day names) and recipes for micro models."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
import yaml
from babel import Locale

from ayakit.recipe import Recipe, recipe_from_dict
from ayakit.records import Example, examples_to_table

LOCALES = {"eng": "en", "fra": "fr", "deu": "de", "rus": "ru", "swh": "sw", "hin": "hi"}


def month_day_examples() -> list[Example]:
    """Instruction pairs built from CLDR: 'month 3 in <lang>' -> the month's name, and the same for weekdays."""
    out = []
    for code, loc in LOCALES.items():
        locale = Locale.parse(loc)
        months = locale.months["format"]["wide"]
        days = locale.days["format"]["wide"]
        for n, name in months.items():
            for tmpl, text in (("t1", f"Name month number {n} in {locale.english_name}."),
                               ("t2", f"What is month {n} called in {locale.display_name}?")):
                out.append(Example(inputs=text, targets=name, language=code, source="cldr", dataset="months",
                                   task="naming", template=tmpl, license="Unicode-3.0"))
        for n, name in days.items():
            out.append(Example(inputs=f"Weekday {n + 1} in {locale.english_name}:", targets=name, language=code,
                               source="cldr", dataset="days", task="naming", template="t3", license="Unicode-3.0"))
    return out


def write_mixture(run_dir: Path, examples: list[Example], shards: int = 2) -> Path:
    """Write examples as run_dir/data/shards-*.parquet, the layout `ayakit data build` writes."""
    data = run_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for i in range(shards):
        pq.write_table(examples_to_table(examples[i::shards]), data / f"shards-{i:05d}.parquet")
    return run_dir


def micro_recipe(arch: str = "seq2seq", **train: object) -> Recipe:
    """A recipe for a micro model that trains in a second or two."""
    settings = {"max_source_length": 24, "max_target_length": 8, "batch_size": 4, "steps": 6, "optimizer": "adamw",
                "lr": 3e-3, "checkpoint_every": 3, "eval_every": 3, "log_every": 1, "validation_fraction": 0.1,
                "threads": 1} | train
    return recipe_from_dict({
        "name": "micro", "seed": 7,
        "data": {"sources": [{"name": "cldr", "type": "embedded"}]},
        "tokenizer": {"vocab_size": 700},
        "model": {"arch": arch, "preset": "micro"},
        "train": settings,
    })


@pytest.fixture(scope="session")
def examples() -> list[Example]:
    """The small CLDR mixture's examples."""
    return month_day_examples()


@pytest.fixture
def run_dir(tmp_path: Path, examples: list[Example]) -> Path:
    """A run directory holding the small mixture."""
    return write_mixture(tmp_path / "run", examples)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory, examples: list[Example]) -> Path:
    """A tokenizer trained once on the small mixture (shared by the tests that only need one)."""
    from ayakit.train.tokenizer import build_tokenizer

    run = write_mixture(tmp_path_factory.mktemp("tok") / "run", examples)
    return build_tokenizer(micro_recipe(), run)


def save_recipe(recipe: Recipe, run_dir: Path) -> Path:
    """Write recipe.yaml into the run directory, as `ayakit data build` does."""
    path = run_dir / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
    return path


@pytest.fixture(scope="session")
def th() -> SimpleNamespace:
    """The helpers above, for test modules (with --import-mode=importlib a conftest cannot be imported)."""
    return SimpleNamespace(micro_recipe=micro_recipe, save_recipe=save_recipe, write_mixture=write_mixture,
                           month_day_examples=month_day_examples)
