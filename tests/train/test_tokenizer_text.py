"""What the tokenizer trains on: the mixture's own text, each distinct text once, every language seen."""

from __future__ import annotations

import collections
from pathlib import Path

from ayakit.records import Example


def _example(inputs: str, targets: str, language: str) -> Example:
    return Example(inputs=inputs, targets=targets, language=language, source="s", dataset="d", task="t",
                   template="x", license="CC0-1.0")


def _recipe(th, max_sentences: int | None = None):
    recipe = th.micro_recipe()
    if max_sentences is None:
        return recipe
    return recipe.model_copy(update={"tokenizer": recipe.tokenizer.model_copy(update={"max_sentences": max_sentences})})


def test_training_text_is_the_mixture_text_each_distinct_text_once(tmp_path: Path, th, examples) -> None:
    from ayakit.train.tokenizer import training_text

    run = th.write_mixture(tmp_path / "run", examples * 5)  # a mixture that repeats every example 5 times
    text = training_text(_recipe(th), run)
    texts, chars = text.texts, text.chars
    mixture = {t for ex in examples for t in (ex.inputs, ex.targets)}
    assert len(texts) == len(set(texts)) == len(mixture)  # repetition does not weigh on the vocabulary
    assert set(texts) == mixture  # no text the model never trains on (e.g. held-out eval prompts)
    assert set(chars) == {ex.language for ex in examples}
    assert (text.mixture_texts, text.distinct) == (10 * len(examples), len(mixture))
    # character counts still see every row: the required characters follow the real frequencies
    assert chars["rus"]["я"] == 5 * sum(t.count("я") for ex in examples if ex.language == "rus"
                                        for t in (ex.inputs, ex.targets))


def test_every_language_is_seen_when_max_sentences_caps_the_text(tmp_path: Path, th) -> None:
    from ayakit.train.tokenizer import training_text

    big = [_example(f"Say {i} in English.", f"number {i}", "eng") for i in range(3000)]
    small = {lang: [_example(f"Say {i} in {lang}.", f"{lang} word {i}", lang) for i in range(3)]
             for lang in ("swh", "yor", "hau", "ibo", "zul")}
    rows = big + [ex for exs in small.values() for ex in exs]
    run = th.write_mixture(tmp_path / "run", rows)
    text = training_text(_recipe(th, max_sentences=200), run)
    texts = text.texts
    assert len(texts) == 200 and text.distinct == 2 * len(rows)
    per_language = collections.Counter(t.split()[-1].rstrip(".") if t.startswith("Say") else t.split()[0]
                                       for t in texts)
    for lang in small:  # a uniform sample of 100 of 3,015 rows would miss most of them
        assert per_language[lang] == 6, per_language
    assert per_language["English"] + per_language["number"] == 200 - 30


def test_trained_tokenizer_is_deterministic(tmp_path: Path, th, examples) -> None:
    from ayakit.train.tokenizer import build_tokenizer

    a = build_tokenizer(th.micro_recipe(), th.write_mixture(tmp_path / "a", examples))
    b = build_tokenizer(th.micro_recipe(), th.write_mixture(tmp_path / "b", examples[::-1], shards=3))
    assert (a / "spiece.model").read_bytes() == (b / "spiece.model").read_bytes()
