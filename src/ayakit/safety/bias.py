"""Identity-group prompts (the paper's 28 gender / race x gender / religion starts; HolisticBias) and per-group words."""

from __future__ import annotations

import functools
import json
import math
import random
import re
from collections import Counter
from importlib import resources
from pathlib import Path

import yaml

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.safety.prompts import Prompt
from ayakit.safety.scorers import _is_word_char, normalize_text
from ayakit.scripts import is_unspaced_char


@functools.cache
def identity_table() -> dict:
    """resources/identity_prompts.yaml."""
    path = resources.files("ayakit.safety").joinpath("resources/identity_prompts.yaml")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def identity_languages() -> list[str]:
    """Languages the identity prompts are written in."""
    return list(identity_table()["languages"])


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def identity_prompts(languages: list[str] | None = None) -> tuple[list[Prompt], list[str]]:
    """The 28 identity prompts per language (group ids like gender:woman, race_gender:black_man, religion:islam)."""
    table = identity_table()
    wanted = [L.normalize_any(c) for c in languages] if languages else list(table["languages"])
    prompts: list[Prompt] = []
    absent: list[str] = []
    for code in wanted:
        spec = table["languages"].get(code)
        if spec is None:
            absent.append(code)
            continue
        for gender, starts in spec["gender"].items():
            for i, text in enumerate(starts):
                prompts.append(Prompt(f"identity-{code}-gender-{gender}-{i}", code, text, f"gender:{gender}"))
        for race in table["races"]:
            for gender, frame in spec["race_frame"].items():
                word = spec["race"][race]
                word = word[gender] if isinstance(word, dict) else word
                prompts.append(Prompt(f"identity-{code}-race-{race}-{gender}", code,
                                      _cap(frame.format(race=word)), f"race_gender:{race}_{gender}"))
        for religion in table["religions"]:
            for i, frame in enumerate(spec["religion_frames"]):
                prompts.append(Prompt(f"identity-{code}-religion-{religion}-{i}", code,
                                      _cap(frame.format(religion=spec["religion"][religion])), f"religion:{religion}"))
    return prompts, absent


def _descriptor_items(node, axis: str, bucket: str = "") -> list[tuple[str, str, str]]:
    """(axis, bucket, descriptor) from HolisticBias descriptors.json's nested lists, strings and dicts."""
    out = []
    if isinstance(node, dict) and "descriptor" not in node:
        for key, child in node.items():
            out += _descriptor_items(child, axis, key)
    elif isinstance(node, list):
        for child in node:
            out += _descriptor_items(child, axis, bucket)
    elif isinstance(node, dict):
        out.append((axis, bucket, str(node["descriptor"])))
    elif isinstance(node, str):
        out.append((axis, bucket, node))
    return out


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def holistic_prompts(data_dir: str | Path, per_axis: int = 8, seed: int = 1234,
                     axes: list[str] | None = None) -> list[Prompt]:
    """HolisticBias descriptor x noun x template sentences (English), `per_axis` sampled per axis; group = axis."""
    root = Path(data_dir) / "holistic_bias" / "holistic_bias" / "dataset" / "v1.1"
    files = {name: root / f"{name}.json" for name in ("descriptors", "nouns", "sentence_templates")}
    data = {}
    for name, path in files.items():
        if not path.is_file():
            raise FileNotFoundError(f"HolisticBias {name} not found at {path} (expected <data_dir>/holistic_bias)")
        try:
            data[name] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    nouns = [(g, pair[0], pair[1]) for g, pairs in data["nouns"].items() for pair in pairs]
    templates = list(data["sentence_templates"])
    rng = random.Random(seed)
    prompts: list[Prompt] = []
    for axis, node in data["descriptors"].items():
        if axes and axis not in axes:
            continue
        items = _descriptor_items(node, axis)
        seen: set[str] = set()
        for _ in range(per_axis * 20):
            if len([p for p in prompts if p.group == f"holistic:{axis}"]) >= per_axis:
                break
            _, bucket, desc = rng.choice(items)
            gender, noun, plural = rng.choice(nouns)
            template = rng.choice(templates)
            phrase = f"{_article(desc)} {desc} {noun}"
            text = template.replace("{noun_phrase}", phrase).replace("{plural_noun_phrase}", f"{desc} {plural}")
            if text in seen:
                continue
            seen.add(text)
            prompts.append(Prompt(f"holistic-{axis}-{len(seen)}", "eng", text, f"holistic:{axis}",
                                  {"bucket": bucket, "descriptor": desc, "noun": noun, "noun_gender": gender,
                                   "template": template}))
    return prompts


_SENTENCE_END = re.compile(r"[.!?。！？।؟]")


def first_sentence(text: str) -> str:
    """Text up to (excluding) the first sentence-ending mark."""
    m = _SENTENCE_END.search(text)
    return text[: m.start()] if m else text


def words(text: str) -> list[str]:
    """Lower-cased words: letter runs for spaced scripts, character bigrams for runs in unspaced scripts."""
    out: list[str] = []
    buf = ""
    for ch in normalize_text(text) + " ":
        if _is_word_char(ch) and not ch.isdigit():
            if buf and is_unspaced_char(ch) != is_unspaced_char(buf[-1]):
                out += _emit(buf)
                buf = ""
            buf += ch
        elif buf:
            out += _emit(buf)
            buf = ""
    return out


def _emit(run: str) -> list[str]:
    if is_unspaced_char(run[0]):
        return [run[i:i + 2] for i in range(max(1, len(run) - 1))]
    return [run]


def top_words(texts_by_group: dict[str, list[str]], prompts_by_group: dict[str, list[str]],
              k: int = 10) -> dict[str, list[tuple[str, int]]]:
    """The most frequent distinctive words of each group's first sentences (tf x idf over groups; prompt words removed)."""
    counts: dict[str, Counter] = {}
    for group, texts in texts_by_group.items():
        banned = {w for p in prompts_by_group.get(group, []) for w in words(p)}
        counts[group] = Counter(w for t in texts for w in words(first_sentence(t)) if w not in banned)
    n = len(counts)
    df = Counter(w for c in counts.values() for w in c)
    out = {}
    for group, c in counts.items():
        ranked = sorted(c.items(), key=lambda kv: (-kv[1] * math.log((n + 1) / df[kv[0]]), -kv[1], kv[0]))
        out[group] = [(w, cnt) for w, cnt in ranked[:k]]
    return out
