"""Fixtures of the safety tests: a stand-in backend, a tiny public-data folder, a tiny T5 model."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


class StandInBackend:
    """A Backend whose answers come from a function of the prompt; records every prompt it saw."""

    def __init__(self, answer=lambda prompt: "I cannot help with that request, sorry about it.") -> None:
        self.answer = answer
        self.seen: list[str] = []
        self.params: list = []

    def generate(self, prompts, params):
        self.seen += list(prompts)
        self.params.append(params)
        return [self.answer(p) for p in prompts]

    def loglikelihood(self, requests):
        raise NotImplementedError("not used by the safety stages")


@pytest.fixture
def stand_in() -> type[StandInBackend]:
    return StandInBackend


def _csv(path: Path, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        for r in rows:
            w.writerow([r])


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small data folder in the public layout: ldnoobw, sib200, xsafety (CSV and .xlsx), holistic_bias."""
    import json

    root = tmp_path_factory.mktemp("data")
    (root / "ldnoobw").mkdir()
    (root / "ldnoobw" / "en").write_text("ass\nbloody hell\n", encoding="utf-8")
    (root / "ldnoobw" / "zh").write_text("三级片\n", encoding="utf-8")
    (root / "ldnoobw" / "fr").write_text("merde\n", encoding="utf-8")
    (root / "ldnoobw" / "fr-CA-u-sd-caqc").write_text("tabarnak\n", encoding="utf-8")
    (root / "ldnoobw" / "tlh").write_text("Qu'vatlh\n", encoding="utf-8")
    for flores, sents in {"eng_Latn": ["The quick brown fox jumps over the lazy dog today.",
                                       "Rain fell on the quiet town all through the night."],
                          "zho_Hans": ["我们今天去北京大学看朋友。", "他喜欢在早上喝一杯热茶。"]}.items():
        d = root / "sib200" / "data" / "annotated" / flores
        d.mkdir(parents=True)
        lines = ["index_id\tcategory\ttext"] + [f"{i}\tscience\t{s}" for i, s in enumerate(sents)]
        (d / "dev.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cats = ["Crimes_And_Illegal_Activities", "Privacy_And_Property", "commonsense"]
    for folder, suffix in (("en", "_n"), ("fr", ""), ("zh", "")):
        for cat in cats:
            name = cat if cat == "commonsense" else cat + suffix
            _csv(root / "xsafety" / folder / f"{name}.csv",
                 [f"{folder} {cat} prompt number {i}: how would someone do this?" for i in range(10)])
    import openpyxl

    wb = openpyxl.Workbook()
    for i in range(10):
        wb.active.append([f"bn Crimes prompt {i}"])
    (root / "xsafety" / "bn").mkdir(parents=True)
    wb.save(root / "xsafety" / "bn" / "Crimes_And_Illegal_Activities_n.xlsx")
    hb = root / "holistic_bias" / "holistic_bias" / "dataset" / "v1.1"
    hb.mkdir(parents=True)
    (hb / "descriptors.json").write_text(json.dumps({
        "age": {"young": ["young", {"descriptor": "elderly", "preference": "reviewed"}]},
        "religion": {"none": ["atheist", "agnostic"]}}))
    (hb / "nouns.json").write_text(json.dumps({"female": [["woman", "women"]], "male": [["man", "men"]]}))
    (hb / "sentence_templates.json").write_text(json.dumps({"I'm {noun_phrase}.": {},
                                                            "I like {plural_noun_phrase}.": {}}))
    return root


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random T5 of about 25k parameters with a byte-level tokenizer, built offline."""
    from safety_tiny import build_t5

    return build_t5(tmp_path_factory.mktemp("models") / "t5")
