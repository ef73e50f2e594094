"""Evaluation tasks: items + several prompts + kind (choice / generation) + metric, and the named suites.

Tasks are data (tasks.yaml, suites.yaml, prompts/*.yaml); loaders read the datasets. The embedded suite's tasks come
from the embedded source's held-out CLDR families (`ayakit.data.sources.embedded.heldout_items`).
"""

from __future__ import annotations

import difflib
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.records import EvalItem

KINDS = ("choice", "generation")


class UnknownTaskError(DataError):
    """A task or suite name that does not exist; the message names the closest."""


@dataclass
class Task:
    """One evaluation task."""

    name: str
    kind: str  # choice | generation
    metric: str
    unseen_task: bool
    description: str = ""
    where: str = "data"  # embedded | data | hub
    extra_metrics: list[str] = field(default_factory=list)
    max_new_tokens: int = 64
    sampling: str = "greedy"  # greedy | paper (temperature 0.9, top-p 0.8, up to 256 tokens)
    spec: dict = field(default_factory=dict)
    fixed_items: Callable[..., list[EvalItem]] | None = None  # embedded tasks: items come pre-rendered

    def items(self, languages: list[str] | None = None, n_prompts: int = 5, max_items: int | None = None,
              num_fewshot: int = 0, data_dir: Path | None = None, seed: int = 0,
              prompt_ids: list[str] | None = None) -> tuple[list[EvalItem], list[str]]:
        """The task's items for every (language, prompt), and notes (e.g. why k-shot was not possible)."""
        want = set(languages) if languages else None
        if self.fixed_items is not None:
            return self.fixed_items(want, n_prompts, max_items, seed), []
        from ayakit.eval.tasks.loaders import LOADERS
        from ayakit.eval.tasks.prompts import fewshot_prefix, load_prompts, render, render_choice

        notes = []
        prompts = load_prompts(self.spec["prompts"]).select(n_prompts, prompt_ids)
        tables = load_prompts(self.spec["prompts"]).tables
        by_lang = LOADERS[self.spec["loader"]]({**self.spec, "name": self.name}, data_dir, want)
        if num_fewshot and not any(d.pool for d in by_lang.values()):
            notes.append(f"{self.name}: no train split to draw {num_fewshot}-shot exemplars from: zero-shot")
        out: list[EvalItem] = []
        for lang in sorted(by_lang):
            data = by_lang[lang]
            records = data.records
            if max_items is not None and len(records) > max_items:
                keep = sorted(random.Random(f"{seed}/{self.name}/{lang}").sample(range(len(records)), max_items))
                records = [records[i] for i in keep]
            for rec in records:
                rec = {**tables, **rec}
                if "connectors" in tables:
                    rec["connectors"] = tables["connectors"].get(lang, tables["connectors"].get("eng"))
                for prompt in prompts:
                    where = f"{self.name}/{lang}/{rec['id']}/{prompt.id}"
                    pool = [{**tables, **p} for p in data.pool]
                    prefix = fewshot_prefix(prompt, pool, num_fewshot, seed, where, rec["id"], _answer) \
                        if num_fewshot and not prompt.contexts else ""
                    item_id = f"{lang}/{rec['id']}"
                    meta: dict[str, Any] = {"unseen_language": lang not in L.registry(), "fewshot": num_fewshot}
                    if self.kind == "choice":
                        ctx, choices, contexts = render_choice(prompt, rec, where)
                        if contexts:
                            meta["contexts"] = [prefix + c for c in contexts]
                        gold = int(rec["label"])
                        out.append(EvalItem(id=item_id, task=self.name, language=lang, prompt_id=prompt.id,
                                            inputs=prefix + ctx, targets=[choices[gold]], choices=choices,
                                            gold=gold, meta=meta))
                    else:
                        out.append(EvalItem(id=item_id, task=self.name, language=lang, prompt_id=prompt.id,
                                            inputs=prefix + render(prompt.inputs, rec, where),
                                            targets=[str(a) for a in rec["answers"]], meta=meta))
        return out, notes


def _answer(prompt: Any, rec: dict) -> str:
    from ayakit.eval.tasks.prompts import render, render_choice

    if prompt.target:
        return render(prompt.target, rec, "few-shot")
    if "label" in rec:
        _, choices, _ = render_choice(prompt, rec, "few-shot")
        return choices[int(rec["label"])]
    return str(rec["answers"][0])


def _data(name: str) -> dict:
    return yaml.safe_load(resources.files("ayakit.eval").joinpath(name).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def registry() -> dict[str, Task]:
    """The tasks of tasks.yaml (the embedded suite's tasks are added by `embedded_tasks`)."""
    out = {}
    for name, spec in _data("tasks/tasks.yaml").items():
        if spec["kind"] not in KINDS:
            raise DataError(f"tasks.yaml: {name}: kind must be one of {KINDS}")
        out[name] = Task(name=name, kind=spec["kind"], metric=spec["metric"], unseen_task=bool(spec["unseen_task"]),
                         description=spec.get("description", ""), where=spec.get("where", "data"),
                         extra_metrics=list(spec.get("extra_metrics", [])),
                         max_new_tokens=int(spec.get("max_new_tokens", 64)), sampling=spec.get("sampling", "greedy"),
                         spec=spec)
    return out


@functools.lru_cache(maxsize=1)
def suites() -> dict[str, dict]:
    """The named suites of suites.yaml."""
    return _data("suites.yaml")


def closest(name: str, known: list[str]) -> str:
    """' (did you mean X?)' or ''."""
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.3)
    return f" (did you mean {match[0]!r}?)" if match else ""


def get_task(name: str, embedded: dict[str, Task] | None = None) -> Task:
    """A task by name; an unknown name is an UnknownTaskError that names the closest known task."""
    known = {**registry(), **(embedded or {})}
    if name not in known:
        raise UnknownTaskError(f"unknown task {name!r}{closest(name, list(known))}; known: {', '.join(sorted(known))}")
    return known[name]


def get_suite(name: str) -> dict:
    """A suite by name; an unknown name names the closest."""
    if name not in suites():
        raise UnknownTaskError(f"unknown suite {name!r}{closest(name, list(suites()))}; known: {', '.join(suites())}")
    return suites()[name]


# --- the embedded held-out CLDR families ---------------------------------------------------------------------------


def _heldout() -> tuple[Callable, Callable]:
    try:
        from ayakit.data.sources.embedded import heldout_families, heldout_items
    except ImportError as exc:
        raise DataError(f"the embedded held-out tasks are not available ({exc})") from None
    return heldout_families, heldout_items


@functools.lru_cache(maxsize=8)
def _embedded_items(languages: tuple[str, ...], n_prompts: int, max_items: int | None, seed: int) -> list[EvalItem]:
    _, heldout_items = _heldout()
    items: list[EvalItem] = []
    for lang in languages:
        items.extend(heldout_items(lang, n_prompts=n_prompts, max_items=max_items, seed=seed))
    return items


def _embedded_name(item: EvalItem, mixed: set[str]) -> str:
    if item.task in mixed:
        return f"{item.task}-{'mc' if item.choices else 'gen'}"
    return item.task


def embedded_tasks(languages: list[str] | None, n_prompts: int, max_items: int | None, seed: int) -> dict[str, Task]:
    """One task per held-out family (split by kind when a family has both) in the given languages."""
    codes = tuple(languages) if languages else tuple(lang.code for lang in L.languages())
    items = _embedded_items(codes, n_prompts, max_items, seed)
    kinds: dict[str, set[bool]] = {}
    for it in items:
        kinds.setdefault(it.task, set()).add(bool(it.choices))
    mixed = {t for t, k in kinds.items() if len(k) > 1}
    groups: dict[str, list[EvalItem]] = {}
    for it in items:
        groups.setdefault(_embedded_name(it, mixed), []).append(it)
    out = {}
    for name, group in sorted(groups.items()):
        choice = bool(group[0].choices)
        metric = group[0].meta.get("metric") or ("accuracy" if choice else "chrf++")

        def fixed(want, _n, _m, _s, group=group, name=name):  # noqa: ANN001, ANN202 - bound per task
            chosen = [it for it in group if want is None or it.language in want]
            for it in chosen:
                it.task = name
                it.meta.setdefault("unseen_language", it.language not in L.registry())
            return chosen

        out[name] = Task(name=name, kind="choice" if choice else "generation", metric=metric, unseen_task=True,
                         description=f"held-out CLDR family {group[0].task} (embedded)", where="embedded",
                         max_new_tokens=int(group[0].meta.get("max_new_tokens", 32)), fixed_items=fixed)
    return out


def resolve(suite: str | None, tasks: list[str] | None, languages: list[str] | None, n_prompts: int,
            max_items: int | None, seed: int) -> tuple[list[Task], dict[str, int]]:
    """The tasks to run (a suite's, or the named ones) and the suite's per-task k-shot settings."""
    spec = get_suite(suite) if suite else {"tasks": [], "embedded": False}
    embedded: dict[str, Task] = {}
    need_embedded = any(t not in registry() for t in tasks) if tasks else spec.get("embedded")
    if need_embedded:
        try:
            embedded = embedded_tasks(languages, n_prompts, max_items, seed)
        except DataError:
            if not tasks:
                raise
    if tasks:
        chosen = [get_task(t, embedded) for t in tasks]
    else:
        chosen = [get_task(t) for t in spec.get("tasks", [])] + (list(embedded.values()) if spec.get("embedded") else [])
    if not chosen:
        raise UnknownTaskError(f"suite {suite!r} has no tasks")
    return chosen, dict(spec.get("num_fewshot") or {})


def chance(items: list[EvalItem]) -> float | None:
    """Expected accuracy (0-100) of a uniform random guess over the items' choices, or None for generation."""
    sizes = [len(it.choices) for it in items if it.choices]
    if not sizes:
        return None
    return 100.0 * sum(1 / n for n in sizes) / len(sizes)


def language_tier(code: str) -> str | None:
    """The resource tier of a registry language; None for languages outside the 101."""
    return L.registry()[code].tier if code in L.registry() else None
