"""Non-toxic sentence starts for open-ended toxicity: the first half of FLORES sentences, or embedded sentences."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.records import example_id
from ayakit.scripts import is_unspaced_char


@dataclass
class Prompt:
    """One sentence start to continue, with the language and (for identity prompts) the group it names."""

    id: str
    language: str
    text: str
    group: str = ""
    meta: dict = field(default_factory=dict)


def first_half(sentence: str) -> str:
    """The first half of a sentence: split at whitespace, or by characters in scripts written without spaces."""
    sentence = " ".join(sentence.split())
    words = sentence.split(" ")
    unspaced = sum(is_unspaced_char(ch) for ch in sentence) > len(sentence) / 3
    if unspaced or len(words) < 4:
        return sentence[: max(1, len(sentence) // 2)].rstrip()
    return " ".join(words[: len(words) // 2])


def _pick(rows: list[tuple[str, str]], n: int | None, seed: int, language: str) -> list[tuple[str, str]]:
    rows = sorted(set(rows))
    if n is not None and len(rows) > n:
        rows = random.Random(f"{seed}:{language}").sample(rows, n)
    return sorted(rows)


def flores_prompts(data_dir: str | Path, languages: list[str], per_language: int | None = 20,
                   seed: int = 1234, split: str = "dev") -> tuple[list[Prompt], list[str]]:
    """First halves of FLORES-200 sentences from <data_dir>/sib200 (`split` of SIB-200); the second list: absent languages."""
    root = Path(data_dir) / "sib200" / "data" / "annotated"
    if not root.is_dir():
        raise FileNotFoundError(f"FLORES sentences not found at {root} (expected <data_dir>/sib200)")
    prompts: list[Prompt] = []
    absent: list[str] = []
    for code in languages:
        lang = L.info(code)
        path = next((root / f / f"{split}.tsv" for f in lang.flores if (root / f / f"{split}.tsv").is_file()), None)
        if path is None:
            absent.append(lang.code)
            continue
        rows = []
        with path.open(encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh, delimiter="\t"), 2):
                if "text" not in row or "index_id" not in row:
                    raise DataError(f"{path}:{i}: expected columns index_id, category, text")
                rows.append((row["index_id"], row["text"]))
        for idx, text in _pick(rows, per_language, seed, lang.code):
            start = first_half(text)
            if start:
                prompts.append(Prompt(f"flores-{lang.code}-{idx}", lang.code, start, meta={"index_id": idx}))
    return prompts, absent


def _chatterbot_root() -> Path:
    import chatterbot_corpus

    return Path(chatterbot_corpus.__file__).parent / "data"


def embedded_prompts(languages: list[str] | None, per_language: int | None = 20,
                     seed: int = 1234) -> tuple[list[Prompt], list[str]]:
    """First halves of conversation lines from the installed chatterbot-corpus (the offline fallback, 25 languages)."""
    root = _chatterbot_root()
    wanted_set = {L.normalize_any(c) for c in languages} if languages else None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    by_lang: dict[str, list[tuple[str, str]]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            code = L.normalize_any(folder.name)
        except L.UnknownLanguageError:
            continue  # hinglish, traditionalchinese: not registry languages of their own
        if wanted_set is not None and code not in wanted_set:
            continue
        for path in sorted(folder.glob("*.yml")):
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
            for c, conv in enumerate(data.get("conversations") or []):
                for t, line in enumerate(conv or []):
                    if isinstance(line, str) and len(line.split()) >= 4 or (
                            isinstance(line, str) and len(line) >= 8 and sum(map(is_unspaced_char, line)) > 4):
                        by_lang.setdefault(code, []).append((f"{path.stem}-{c}-{t}", line))
    wanted = [L.normalize_any(c) for c in languages] if languages else sorted(by_lang)
    prompts, absent = [], []
    for code in wanted:
        if code not in by_lang:
            absent.append(code)
            continue
        for key, text in _pick(by_lang[code], per_language, seed, code):
            prompts.append(Prompt(f"embedded-{code}-{example_id(key)[:8]}", code, first_half(text)))
    return prompts, absent
