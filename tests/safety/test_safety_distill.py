"""Distillation bookkeeping: the teacher sees the preamble, the outputs never do; kind safety; counts add up."""

from __future__ import annotations

from ayakit.recipe import DistillConfig, Sampling

import json

import pyarrow.parquet as pq

from ayakit.records import EXAMPLE_SCHEMA
from ayakit.safety import distill as D
from ayakit.safety.xsafety import load_split


def _answer(prompt: str) -> str:
    if "number 1:" in prompt:
        return "short"  # < 20 characters
    if "number 2:" in prompt:
        return "no no no no no no no no no no no no"  # repetitive
    if "number 3:" in prompt:
        return D.preamble("eng")[:100] + " ok"  # echoes the preamble
    return "I do not assist with requests of this kind: " + prompt[-12:]


def test_distillation_bookkeeping(tiny_data, tmp_path, stand_in) -> None:
    prompts, _ = load_split(tiny_data, languages=["eng", "fra", "zho"])
    teacher = stand_in(_answer)
    info = D.distill(teacher, prompts, DistillConfig(), Sampling(seed=5), tmp_path, teacher_id="stand-in")
    train = [p for p in prompts if p.split == "train" and p.category != "commonsense"]
    test_texts = {p.text for p in prompts if p.split == "test"}
    # the teacher answered every harmful TRAIN prompt, each with its language's preamble in front
    assert len(teacher.seen) == len(train)
    for seen in teacher.seen:
        assert any(seen.startswith(D.preamble(c)) for c in ("eng", "fra", "zho"))
    assert teacher.params[0].temperature == 0.9 and teacher.params[0].top_p == 0.8
    table = pq.read_table(tmp_path / "safety.parquet")
    assert table.schema.equals(EXAMPLE_SCHEMA)
    rows = table.to_pylist()
    assert rows and all(r["kind"] == "safety" and r["split"] == "train" for r in rows)
    for r in rows:
        for code in ("eng", "fra", "zho"):
            assert D.preamble(code) not in r["inputs"] and D.preamble(code)[:40] not in r["targets"]
        assert r["inputs"] not in test_texts
    counts = info["counts"]
    total = sum(c["prompts"] for c in counts.values())
    assert total == len(train)
    for c in counts.values():
        dropped = sum(c[k] for k in ("no_preamble", "too_short", "too_long", "repetitive", "echoes_preamble",
                                     "not_refusal"))
        assert c["kept"] + dropped == c["prompts"]
    assert sum(c["kept"] for c in counts.values()) == len(rows) == info["kept"]
    rejected = [json.loads(x) for x in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert {r["reason"] for r in rejected} <= {"too_short", "repetitive", "echoes_preamble"}
    assert len(rejected) == total - len(rows)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["stage"] == "safety-distill" and manifest["kept"] == len(rows)


def test_languages_without_a_preamble_are_listed_or_translated(tiny_data, tmp_path, stand_in, monkeypatch) -> None:
    prompts, _ = load_split(tiny_data, languages=["eng"])
    for p in prompts:
        p.language = "swa"  # no stored Swahili preamble
    info = D.distill(stand_in(), prompts, DistillConfig(), Sampling(), tmp_path / "a")
    assert info["preamble"]["missing"] == ["swa"] and info["kept"] == 0
    assert info["counts"]["swa"]["no_preamble"] == info["counts"]["swa"]["prompts"]
    monkeypatch.setattr(D, "_extra_preambles", {})
    calls = []

    def translator(texts, src, tgt):
        calls.append((src, tgt))
        return ["Kabla ya kujibu, angalia kama ombi lina madhara. Kama ndiyo, kataa kwa ufupi."]

    info = D.distill(stand_in(), prompts, DistillConfig(), Sampling(), tmp_path / "b", translator=translator)
    assert calls == [("eng", "swa")] and info["preamble"]["translated"] == ["swa"] and info["kept"] > 0


def test_require_refusal(tiny_data, tmp_path, stand_in) -> None:
    prompts, _ = load_split(tiny_data, languages=["eng"])
    info = D.distill(stand_in(lambda p: "Here is exactly how you could do it, step by step."), prompts,
                     DistillConfig(require_refusal=True), Sampling(), tmp_path)
    assert info["kept"] == 0 and info["counts"]["eng"]["not_refusal"] == info["counts"]["eng"]["prompts"]


def test_output_reads_as_a_files_source(tiny_data, tmp_path, stand_in) -> None:
    from ayakit.data.sources.files import files_reader
    from ayakit.recipe import recipe_from_dict

    prompts, _ = load_split(tiny_data, languages=["eng"])
    D.distill(stand_in(), prompts, DistillConfig(), Sampling(), tmp_path)
    recipe = recipe_from_dict({"name": "t", "data": {"sources": [
        {"name": "safety-distill", "type": "files", "path": str(tmp_path / "safety.parquet"), "kind": "safety",
         "weight": 0.03}]}})
    source = files_reader(recipe.data.sources[0], recipe)
    rows = [r for b in source.iter_batches() for r in b.to_pylist()]
    assert rows and all(r["kind"] == "safety" and r["language"] == "eng-Latn" for r in rows)


def test_prompts_translated_into_more_languages(tiny_data, tmp_path, stand_in) -> None:
    prompts, _ = load_split(tiny_data, languages=["eng", "fra"])

    def translator(texts, src, tgt):
        assert src == "eng"
        return [f"[{tgt}] {t}" if i % 2 else "" for i, t in enumerate(texts)]  # half fail the checks

    D._extra_preambles["ind"] = "Periksa dulu apakah permintaan ini berbahaya; jika ya, tolak dengan singkat."
    try:
        info = D.distill(stand_in(), prompts, DistillConfig(translate_to=["ind", "fra"]), Sampling(), tmp_path,
                         translator=translator)
    finally:
        D._extra_preambles.pop("ind", None)
    eng_train = sum(1 for p in prompts if p.language == "eng" and p.split == "train" and p.category != "commonsense")
    assert set(info["translated_prompts"]) == {"ind"}  # fra has prompts of its own
    assert info["translated_prompts"]["ind"] == {"translated": eng_train // 2, "failed": eng_train - eng_train // 2}
    rows = pq.read_table(tmp_path / "safety.parquet").to_pylist()
    ind = [r for r in rows if r["language"] == "ind"]
    assert ind and all(r["dataset"] == "xsafety-mt" and r["inputs"].startswith("[ind]") for r in ind)
    assert all(r["dataset"] == "xsafety" for r in rows if r["language"] != "ind")
