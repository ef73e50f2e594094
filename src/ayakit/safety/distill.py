"""Multilingual safety context distillation: a teacher answers harmful prompts with the safety preamble prepended;
the filtered answers, paired with the prompts WITHOUT the preamble, become a recipe source of kind "safety".

Output (out_dir): safety.parquet (ayakit.records EXAMPLE_SCHEMA, kind "safety", split "train"; read by the `files`
source reader), rejected.jsonl (every dropped answer and why), manifest.json (teacher, preamble languages, counts
per language: prompts, too_short, too_long, repetitive, echoes_preamble, not_refusal, kept).
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from ayakit import languages as L
from ayakit.models import Backend
from ayakit.io import atomic_path, write_manifest
from ayakit.errors import DataError
from ayakit.recipe import DistillConfig, Sampling
from ayakit.records import Example, example_id, examples_to_table
from ayakit.safety import refusals
from ayakit.safety.sampling import Progress, params as sampling_params, sample
from ayakit.safety.xsafety import HarmPrompt, bounded_per_language, xsafety_facts

OUTPUT = "safety.parquet"


@functools.cache
def preamble_table() -> dict:
    """resources/preambles.yaml (languages as registry codes)."""
    path = resources.files("ayakit.safety").joinpath("resources/preambles.yaml")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["preambles"] = {L.normalize_any(k): v for k, v in data["preambles"].items()}
    return data


_extra_preambles: dict[str, str] = {}  # translated in this process (distill --translation-model)


def preamble(language: str) -> str | None:
    """The safety preamble in this language, or None when there is none (stored or translated)."""
    code = L.normalize_any(language)
    return preamble_table()["preambles"].get(code) or _extra_preambles.get(code)


def with_preamble(prompt: str, language: str) -> str | None:
    """The prompt with the preamble of its language prepended; None when the language has no preamble."""
    text = preamble(language)
    return None if text is None else text + preamble_table()["separator"] + prompt


def longest_repeated_substring(text: str) -> int:
    """Length of the longest substring that occurs at least twice (occurrences may overlap), via a suffix array."""
    n = len(text)
    if n < 2:
        return 0
    order = sorted(range(n), key=lambda i: text[i:])
    best = 0
    for a, b in zip(order, order[1:]):
        k = 0
        limit = n - max(a, b)
        while k < limit and text[a + k] == text[b + k]:
            k += 1
        best = max(best, k)
    return best


def filter_reason(answer: str, cfg: DistillConfig | None = None) -> str | None:
    """Why the filters (default: the paper's) drop an answer (too_short, too_long, repetitive), or None when it
    passes."""
    cfg = cfg or DistillConfig()
    min_chars, max_chars, ratio = cfg.min_chars, cfg.max_chars, cfg.repeat_ratio
    n = len(answer)
    if n < min_chars:
        return "too_short"
    if n > max_chars:
        return "too_long"
    if longest_repeated_substring(answer) > n / ratio:
        return "repetitive"
    return None


def echoes_preamble(answer: str, language: str, window: int = 64) -> bool:
    """True when the answer repeats a `window`-character piece of its language's preamble or any stored one
    (the preamble must not leak into training)."""
    texts = {preamble(language), *preamble_table()["preambles"].values()} - {None}
    step = max(1, window // 4)
    return any(text[i:i + window] in answer for text in texts
               for i in range(0, max(1, len(text) - window + 1), step))


Translator = Callable[[list[str], str, str], list[str]]  # (texts, source language, target language) -> texts


def _printable(text: str) -> str:
    # control characters are never part of a translation (and pycld2 rejects them as invalid UTF-8)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def hf_translator(model: str) -> Translator:
    """A Translator through `ayakit translate`'s model code: sentence by sentence, then its unk / empty /
    length-ratio / language-ID checks; a translation that fails them comes back empty (the language stays missing).
    """
    from ayakit.data.translate import HFTranslator, check_translation, join_segments, segment

    hf = HFTranslator(model)

    def run(texts: list[str], source: str, target: str) -> list[str]:
        out = []
        for text in texts:
            lines = segment(text, source)
            results = iter(hf.translate([s for line in lines for s in line], source, target))
            pieces = [[next(results) for _ in line] for line in lines]
            joined = join_segments([[_printable(t) for t, _ in line] for line in pieces], target)
            reasons, _ = check_translation(text, joined, target, any(u for line in pieces for _, u in line))
            out.append("" if reasons else joined)
        return out

    return run


def ensure_preambles(languages: list[str], translator: Translator | None = None) -> dict[str, list[str]]:
    """Make sure each language has a preamble: stored, else translated from English, else listed as missing."""
    stored = preamble_table()["preambles"]
    info: dict[str, list[str]] = {"stored": [], "translated": [], "missing": []}
    for code in sorted({L.normalize_any(c) for c in languages}):
        if code in stored:
            info["stored"].append(code)
        elif code in _extra_preambles:
            info["translated"].append(code)
        elif translator is not None:
            text = translator([stored["eng"]], "eng", code)[0].strip()
            if text:
                _extra_preambles[code] = text
                info["translated"].append(code)
            else:
                info["missing"].append(code)
        else:
            info["missing"].append(code)
    return info


def translate_prompts(prompts: list[HarmPrompt], targets: list[str], translator: Translator) -> tuple[
        list[HarmPrompt], dict[str, dict[str, int]]]:
    """English TRAIN prompts translated into each target (for training only, as the paper did with NLLB);
    translations that fail the checks are dropped and counted."""
    english = [p for p in prompts if p.language == "eng" and p.split == "train"]
    out: list[HarmPrompt] = []
    counts: dict[str, dict[str, int]] = {}
    have = {p.language for p in prompts}  # languages with prompts of their own are not translated into
    for target in sorted({L.normalize_any(t) for t in targets} - have):
        texts = translator([p.text for p in english], "eng", target)
        counts[target] = {"translated": sum(1 for t in texts if t), "failed": sum(1 for t in texts if not t)}
        out += [HarmPrompt(example_id("xsafety-mt", target, p.category, text), target, p.category, p.index, text,
                           "train") for p, text in zip(english, texts, strict=True) if text]
    return out, counts


def distill(teacher: Backend, prompts: list[HarmPrompt], cfg: DistillConfig, sampling: Sampling, out_dir: str | Path,
            teacher_id: str = "teacher", translator: Translator | None = None, split: dict | None = None,
            progress: Progress | None = None) -> dict:
    """Generate, filter and write the distillation set; returns the manifest's counts and preamble info.

    Only TRAIN-split prompts of harmful categories (not the benign set) are answered; `split` (the recorded split's
    description) goes into the manifest, so an evaluation of a model trained on this set uses the same split.
    """
    facts = xsafety_facts()
    train = bounded_per_language([p for p in prompts if p.split == "train" and p.category not in facts["benign"]],
                                 cfg.per_language, sampling.seed)
    prompt_mt: dict[str, dict[str, int]] = {}
    if cfg.translate_to:
        if translator is None:
            raise DataError("translating prompts into more languages needs a translation model (--translation-model)")
        extra, prompt_mt = translate_prompts(train, cfg.translate_to, translator)
        train += extra
    pre = ensure_preambles([p.language for p in train], translator)
    usable = [p for p in train if preamble(p.language) is not None]
    answers = [s[0] for s in sample(teacher, [with_preamble(p.text, p.language) for p in usable], 1,
                                    sampling_params(sampling, cfg.max_new_tokens),
                                    description="distill: teacher answers", progress=progress)]
    translated = {p.id for p in train if p.language in prompt_mt}
    counts: dict[str, dict[str, int]] = {}
    kept: list[Example] = []
    rejected: list[dict] = []
    for p in train:
        counts.setdefault(p.language, {"prompts": 0, "no_preamble": 0, "too_short": 0, "too_long": 0,
                                       "repetitive": 0, "echoes_preamble": 0, "not_refusal": 0, "kept": 0})
        counts[p.language]["prompts"] += 1
        if preamble(p.language) is None:
            counts[p.language]["no_preamble"] += 1
    for p, answer in zip(usable, answers, strict=True):
        answer = answer.strip()
        reason = filter_reason(answer, cfg)
        if reason is None and echoes_preamble(answer, p.language):
            reason = "echoes_preamble"
        if reason is None and cfg.require_refusal and not refusals.is_refusal(answer, p.language, p.text):
            reason = "not_refusal"
        if reason is not None:
            counts[p.language][reason] += 1
            rejected.append({"id": p.id, "language": p.language, "prompt": p.text, "answer": answer,
                             "reason": reason})
            continue
        counts[p.language]["kept"] += 1
        kept.append(Example(inputs=p.text, targets=answer, language=p.language, script=L.info(p.language).script,
                            source=cfg.source_name, dataset="xsafety-mt" if p.id in translated else "xsafety",
                            task=p.category,
                            template=preamble_table()["version"], kind="safety", license=facts["license"],
                            split="train"))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / OUTPUT) as tmp:
        pq.write_table(examples_to_table(kept), tmp)
    with atomic_path(out_dir / "rejected.jsonl") as tmp, tmp.open("w", encoding="utf-8") as fh:
        for row in rejected:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    info = {"teacher": teacher_id, "output": OUTPUT, "kept": len(kept), "counts": counts,
            "preamble": {"version": preamble_table()["version"], "languages": pre["stored"],
                         "translated": pre["translated"], "missing": pre["missing"],
                         "translations": {c: _extra_preambles[c] for c in pre["translated"]}},
            "generation": {"max_new_tokens": cfg.max_new_tokens, **sampling.model_dump(), "samples": 1},
            "split": split,
            "filters": {"min_chars": cfg.min_chars, "max_chars": cfg.max_chars, "repeat_ratio": cfg.repeat_ratio,
                        "require_refusal": cfg.require_refusal},
            "translated_prompts": prompt_mt}
    write_manifest(out_dir, "safety-distill", {"teacher": teacher_id, "config": cfg.model_dump(),
                                               "sampling": sampling.model_dump(), "split": split,
                                               "prompts": sorted(p.id for p in train)},
                   {"examples": OUTPUT, "rejected": "rejected.jsonl"}, **info)
    return info
