"""Prompt templates (data files under ayakit/eval/prompts/) rendered with Jinja, and k-shot prefixes."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

import jinja2
import yaml

from ayakit.errors import DataError


@dataclass(frozen=True)
class Prompt:
    """One prompt of a task: how to render the context, the choices (or per-choice contexts) and the target."""

    id: str
    inputs: str = ""
    choices: tuple[str, ...] = ()
    choices_from: str | None = None  # a record field that holds the choices
    contexts: tuple[str, ...] = ()  # one context per choice (lm-eval's "multiple input" scoring)
    target: str | None = None
    benchmark: bool = False  # kept out of the default prompts (parity with another tool)
    per_language: dict = field(default_factory=dict, hash=False, compare=False)  # tag -> inputs template

    def for_language(self, tag: str) -> Prompt:
        """This prompt with the inputs template written for a language, when it has one (exact tag, else the
        language's tag without region, else any tag of the same language)."""
        if not self.per_language:
            return self
        lang = tag.split("-")[0]
        text = self.per_language.get(tag) or self.per_language.get("-".join(tag.split("-")[:2])) or next(
            (v for k, v in self.per_language.items() if k.split("-")[0] == lang), None)
        return replace(self, inputs=text) if text else self


@dataclass(frozen=True)
class PromptSet:
    """The prompts of one file and its extra tables (connectors, labels, ...)."""

    name: str
    prompts: tuple[Prompt, ...]
    tables: dict = field(default_factory=dict)

    def select(self, n: int | None = None, ids: list[str] | None = None) -> list[Prompt]:
        """The first n default prompts, or the prompts with these ids (benchmark ones included)."""
        if ids:
            by_id = {p.id: p for p in self.prompts}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise DataError(f"prompts/{self.name}: no prompt {missing}; known: {sorted(by_id)}")
            return [by_id[i] for i in ids]
        default = [p for p in self.prompts if not p.benchmark]
        return default[:n] if n else default


def _lowerfirst(text: str) -> str:
    return text[:1].lower() + text[1:]


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["lowerfirst"] = _lowerfirst
    return env


@functools.lru_cache(maxsize=None)
def _compile(template: str) -> jinja2.Template:
    return _env().from_string(template)


def render(template: str, record: dict[str, Any], where: str = "") -> str:
    """Render one template with a record's fields; a missing field is a DataError naming it."""
    try:
        return _compile(template).render(**record)
    except jinja2.UndefinedError as exc:
        raise DataError(f"{where}: template needs a field the record lacks ({exc.message})") from None


@functools.lru_cache(maxsize=None)
def load_prompts(filename: str) -> PromptSet:
    """Read ayakit/eval/prompts/<filename>."""
    path = resources.files("ayakit.eval").joinpath("prompts", filename)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"no prompt file ayakit/eval/prompts/{filename}") from None
    prompts = []
    for i, p in enumerate(data.get("prompts") or []):
        try:
            prompts.append(Prompt(id=p["id"], inputs=p.get("inputs", ""), choices=tuple(p.get("choices") or ()),
                                  choices_from=p.get("choices_from"), contexts=tuple(p.get("contexts") or ()),
                                  target=p.get("target"), benchmark=bool(p.get("benchmark", False))))
        except (KeyError, TypeError) as exc:
            raise DataError(f"prompts/{filename}: prompt {i} is malformed ({exc})") from None
    tables = {k: v for k, v in data.items() if k != "prompts"}
    return PromptSet(filename.rsplit(".", 1)[0], tuple(prompts), tables)


def render_choice(prompt: Prompt, record: dict, where: str) -> tuple[str, list[str], list[str] | None]:
    """(context, choices, per-choice contexts or None) of a choice record under one prompt."""
    if prompt.choices_from:
        choices = [str(c) for c in record[prompt.choices_from]]
    else:
        choices = [render(c, record, where) for c in prompt.choices]
    contexts = [render(c, record, where) for c in prompt.contexts] or None
    return render(prompt.inputs, record, where), choices, contexts


def fewshot_prefix(prompt: Prompt, pool: list[dict], k: int, seed: int, key: str, exclude: str,
                   answer: Any) -> str:
    """k rendered exemplars from the pool (deterministic per item), each followed by its answer, then a blank line.

    `answer(prompt, record)` returns an exemplar's answer text.
    """
    if k <= 0 or not pool:
        return ""
    candidates = [r for r in pool if r.get("id") != exclude]
    rng = random.Random(f"{seed}/{key}")
    shots = rng.sample(candidates, min(k, len(candidates)))
    if not shots:
        return ""
    parts = []
    for rec in shots:
        ctx = render(prompt.inputs, rec, f"few-shot {rec.get('id')}")
        parts.append(f"{ctx} {answer(prompt, rec)}".rstrip())
    return "\n\n".join(parts) + "\n\n"
