"""Sentences for translation: split a text into sentences and join translated ones back, by the data-driven rules
of translate/rules.yaml (NLLB-style models translate single sentences; Aya Collection, [D] App. G)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import yaml

from ayakit import languages as L


@cache
def rules() -> dict[str, Any]:
    """The packaged splitting, joining and filter rules (translate/rules.yaml)."""
    text = resources.files("ayakit.data").joinpath("translate", "rules.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def _sentence_regex() -> re.Pattern:
    s = rules()["sentences"]
    spaced = re.escape(s["spaced_terminators"])
    unspaced = re.escape(s["unspaced_terminators"])
    closers = re.escape(s["closers"])
    return re.compile(rf"(?:[{spaced}]+[{closers}]*(?=\s)|[{unspaced}]+[{closers}]*)")


def _abbreviations(language: str) -> set[str]:
    table = rules()["sentences"]["abbreviations"]
    return {str(a).lower() for a in [*table.get("*", []), *table.get(language, [])]}


def split_sentences(text: str, language: str = "eng") -> list[str]:
    """Sentences of one line of text (no newlines), by the data-driven rules; whitespace between them dropped."""
    abbreviations = _abbreviations(language)
    out: list[str] = []
    start = 0
    for m in _sentence_regex().finditer(text):
        end = m.end()
        following = text[end:].lstrip()[:1]
        if following.islower() and text[m.start()] in rules()["sentences"]["spaced_terminators"]:
            continue  # '"Stop!" she said.': a lower-case word continues the sentence
        if text[m.start()] == ".":
            word = re.search(r"(\S+)$", text[start:m.start()])
            token = word.group(1).lower() if word else ""
            token = token.lstrip("\"'([{«“‘")
            if token in abbreviations or (len(token) == 1 and token.isalpha() and text[m.start() - 1].isupper()):
                continue
        piece = text[start:end].strip()
        if piece:
            out.append(piece)
        start = end
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def segment(text: str, language: str = "eng") -> list[list[str]]:
    """A text as lines (paragraph structure kept) of sentences."""
    return [split_sentences(line, language) for line in text.split("\n")]


def script_of(language: str) -> str:
    """The script of a language tag (or of any code: its default script)."""
    return L.parse(L.tag(language)).script or ""


def join_segments(lines: list[list[str]], language: str) -> str:
    """Translated sentences back into text: spaces between sentences unless the script does not use them."""
    script = script_of(language)
    joiner = "" if script and L.unspaced(script) else " "
    return "\n".join(joiner.join(s.strip() for s in line) for line in lines)
