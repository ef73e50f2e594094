"""XSafety: reading CSV and .xlsx, the deterministic and disjoint train / test split, written to the run."""

from __future__ import annotations

from collections import Counter

import pytest

from ayakit.errors import DataError
from ayakit.safety.xsafety import category_of, load_split, load_xsafety, read_split, split_prompts, write_split


def test_categories_from_file_names() -> None:
    assert category_of("Insult_n") == "Insult"
    assert category_of("Crimes_And_Illegal_Activities_en") == "Crimes_And_Illegal_Activities"
    assert category_of("Crimes_And_Illegal_Activitie") == "Crimes_And_Illegal_Activities"  # ru/ typo
    assert category_of("commen_sense") == "commonsense"
    assert category_of("README") is None


def test_reads_csv_and_xlsx(tiny_data) -> None:
    prompts, skipped = load_xsafety(tiny_data)
    langs = Counter(p.language for p in prompts)
    assert langs == {"eng": 30, "fra": 30, "zho": 30, "ben": 10}
    assert not skipped


def test_split_is_deterministic_disjoint_and_parallel(tiny_data) -> None:
    a, _ = load_split(tiny_data, seed=7)
    b, _ = load_split(tiny_data, seed=7)
    assert [(p.id, p.split) for p in a] == [(p.id, p.split) for p in b]
    c, _ = load_split(tiny_data, seed=8)
    assert [p.split for p in a] != [p.split for p in c]
    for lang in ("eng", "fra", "zho"):
        mine = [p for p in a if p.language == lang]
        train = {p.text for p in mine if p.split == "train"}
        test = {p.text for p in mine if p.split == "test"}
        assert train and test and not train & test
        # 20% of each category's 10 rows
        assert Counter(p.category for p in mine if p.split == "test") == {
            "Crimes_And_Illegal_Activities": 2, "Privacy_And_Property": 2, "commonsense": 2}
    # the same rows are held out in every language: a translation of a test prompt never trains
    rows = {lang: {(p.category, p.index) for p in a if p.language == lang and p.split == "test"}
            for lang in ("eng", "fra", "zho")}
    assert rows["eng"] == rows["fra"] == rows["zho"]


def test_train_copies_of_test_texts_are_dropped() -> None:
    from ayakit.safety.xsafety import HarmPrompt

    prompts = [HarmPrompt(f"id{i}", "eng", "Insult", i, "same text" if i in (0, 1) else f"t{i}") for i in range(10)]
    out = split_prompts(prompts, 0.5, seed=3)
    test_texts = {p.text for p in out if p.split == "test"}
    assert not {p.text for p in out if p.split == "train"} & test_texts


def test_split_written_to_the_run(tiny_data, tmp_path) -> None:
    prompts, inputs = load_split(tiny_data, languages=["en"])
    path = write_split(prompts, tmp_path, inputs)
    back = read_split(path)
    assert [(p.id, p.split) for p in back] == [(p.id, p.split) for p in prompts]
    assert (tmp_path / "manifest.json").is_file()


def test_bad_inputs(tiny_data, tmp_path) -> None:
    with pytest.raises(DataError):
        load_split(tiny_data, categories=["Nope"])
    with pytest.raises(FileNotFoundError):
        load_split(tmp_path)
    with pytest.raises(DataError):
        split_prompts([], 1.5)


def test_real_xsafety(shared_data) -> None:
    prompts, inputs = load_split(shared_data, languages=["en", "bn", "hi", "ru"])
    by = Counter((p.language, p.split) for p in prompts)
    assert by[("ben", "test")] > 0 and by[("rus", "train")] > 0  # .xlsx and the ru/ typo both read
    assert "hin" in inputs["skipped_files"]  # hi/ has a duplicate commonsense file
    for lang in ("eng", "ben", "hin", "rus"):
        train = {p.text for p in prompts if p.language == lang and p.split == "train"}
        test = {p.text for p in prompts if p.language == lang and p.split == "test"}
        assert not train & test
