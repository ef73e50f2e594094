"""Evaluation tasks: items + several prompts + kind (choice / generation) + metric, and the named suites.

Tasks are data: task files (spec.py's schema; the built-in ones in tasks.yaml, users' own anywhere), suites.yaml,
prompts/*.yaml; readers (loaders.py, files.py) read the datasets. The embedded suite's tasks come from the embedded
source's held-out CLDR families (`ayakit.data.sources.embedded.heldout_items`).
"""

from __future__ import annotations

import difflib
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.eval.tasks.selection import Selection, selection
from ayakit.eval.tasks.spec import TaskFile, is_task_file, parse_task, read_task_file, task_files
from ayakit.records import EvalItem

if TYPE_CHECKING:
    from ayakit.eval.tasks.loaders import Context, LangData
    from ayakit.eval.tasks.prompts import PromptSet

KINDS = ("choice", "generation")


class UnknownTaskError(DataError):
    """A task or suite name that does not exist; the message names the closest."""


@dataclass
class Task:
    """One evaluation task (built from a TaskFile, or an embedded held-out family)."""

    name: str
    kind: str  # choice | generation
    metric: str
    unseen_task: bool
    description: str = ""
    where: str = "data"  # where its data is expected (the listing shows it)
    extra_metrics: list[str] = field(default_factory=list)
    max_new_tokens: int = 64
    greedy: bool = True
    temperature: float = 0.0  # when not greedy
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    languages: str = ""  # what the listing shows
    spec: TaskFile | None = None
    base: Path | None = None  # the task file's folder (relative data paths start there)
    fixed_items: Callable[..., list[EvalItem]] | None = None  # embedded tasks: items come pre-rendered

    def _prompts(self) -> PromptSet:
        from ayakit.eval.tasks.prompts import Prompt, PromptSet, load_prompts

        assert self.spec is not None
        if isinstance(self.spec.prompts, str):
            return load_prompts(self.spec.prompts)
        choices = self.spec.choices
        prompts = []
        for p in self.spec.prompts:
            per_lang = {}
            for code, text in p.per_language.items():
                try:
                    per_lang[L.tag(code)] = text
                except L.UnknownLanguageError as exc:
                    raise DataError(f"task {self.name}: prompt {p.id}: per_language: {exc}") from None
            prompts.append(Prompt(id=p.id, inputs=p.inputs, target=p.target, benchmark=p.benchmark,
                                  choices=tuple(choices.template or choices.list or ()) if choices else (),
                                  choices_from=choices.field if choices else None, per_language=per_lang))
        return PromptSet(self.name, tuple(prompts), {})

    def read(self, sel: Selection | None, data_dir: Path | None, ctx: Context,
             convention: str = "ayakit") -> dict[str, LangData]:
        """{tag: LangData} of the task's data (with convention lm-eval, a reader's `lm_eval_split` option wins)."""
        from ayakit.eval.tasks.files import load_file_task
        from ayakit.eval.tasks.loaders import LOADERS

        assert self.spec is not None
        data = self.spec.data
        if data.reader:
            if data.reader not in LOADERS:
                raise DataError(f"task {self.name}: unknown reader {data.reader!r}{closest(data.reader, list(LOADERS))}")
            spec = {**data.options, "name": self.name, "loader": data.reader, "hub_id": data.hub_id,
                    "config": data.config, "fewshot_split": data.fewshot_split,
                    "split": data.options.get("lm_eval_split") if convention == "lm-eval" and
                    data.options.get("lm_eval_split") else data.split,
                    "prompts": self.spec.prompts if isinstance(self.spec.prompts, str) else None}
            return LOADERS[data.reader]({k: v for k, v in spec.items() if v is not None}, data_dir, sel, ctx)
        by_lang, notes = load_file_task(self.spec, self.base, data_dir, sel, ctx.files)
        ctx.notes.extend(notes)
        return by_lang

    def items(self, languages: Selection | None = None, n_prompts: int = 5, max_items: int | None = None,
              num_fewshot: int = 0, data_dir: Path | None = None, seed: int = 0,
              prompt_ids: list[str] | None = None, ctx: Context | None = None,
              convention: str = "ayakit") -> tuple[list[EvalItem], list[str]]:
        """The task's items for every (language, prompt), and notes (e.g. why k-shot was not possible)."""
        from ayakit.eval.tasks.loaders import Context
        from ayakit.eval.tasks.prompts import fewshot_prefix, render, render_choice

        ctx = ctx if ctx is not None else Context()
        if self.fixed_items is not None:
            return self.fixed_items(languages, n_prompts, max_items, seed), []
        prompt_set = self._prompts()
        prompts = prompt_set.select(n_prompts, prompt_ids)
        tables = prompt_set.tables
        by_lang = self.read(languages, data_dir, ctx, convention)
        notes = list(ctx.notes)
        if num_fewshot and not any(d.pool for d in by_lang.values()):
            notes.append(f"{self.name}: no train split to draw {num_fewshot}-shot exemplars from: zero-shot")
        out: list[EvalItem] = []
        for lang in sorted(by_lang):
            data = by_lang[lang]
            records = data.records
            if max_items is not None and len(records) > max_items:
                keep = sorted(random.Random(f"{seed}/{self.name}/{lang}").sample(range(len(records)), max_items))
                records = [records[i] for i in keep]
            connectors = tables.get("connectors", {})
            for rec in records:
                rec = {**tables, **rec}
                if connectors:
                    rec["connectors"] = connectors.get(L.rollup(lang), connectors.get(lang.split("-")[0],
                                                                                     connectors.get("eng")))
                for prompt in prompts:
                    prompt = prompt.for_language(lang)
                    where = f"{self.name}/{lang}/{rec['id']}/{prompt.id}"
                    pool = [{**tables, **p} for p in data.pool]
                    prefix = fewshot_prefix(prompt, pool, num_fewshot, seed, where, rec["id"], _answer) \
                        if num_fewshot and not prompt.contexts else ""
                    item_id = f"{lang}/{rec['id']}"
                    meta: dict[str, Any] = {"unseen_language": L.tier(lang) == "unlisted", "fewshot": num_fewshot}
                    if self.kind == "choice":
                        ctx_text, choices, contexts = render_choice(prompt, rec, where)
                        if contexts:
                            meta["contexts"] = [prefix + c for c in contexts]
                        gold = _gold(rec["label"], choices, where)
                        out.append(EvalItem(id=item_id, task=self.name, language=lang, prompt_id=prompt.id,
                                            inputs=prefix + ctx_text, targets=[choices[gold]], choices=choices,
                                            gold=gold, meta=meta))
                    else:
                        out.append(EvalItem(id=item_id, task=self.name, language=lang, prompt_id=prompt.id,
                                            inputs=prefix + render(prompt.inputs, rec, where),
                                            targets=[str(a) for a in rec["answers"]], meta=meta))
        return out, notes


def _gold(label: Any, choices: list[str], where: str) -> int:
    """The gold option: an integer is a 0-based index; a text is an option's text, else a 0-based index."""
    if not isinstance(label, int | float) and str(label) in choices:
        return choices.index(str(label))
    if isinstance(label, int) or (isinstance(label, str) and label.strip().isdigit()):
        idx = int(label)
        if not 0 <= idx < len(choices):
            raise DataError(f"{where}: label {idx} is outside the {len(choices)} choices")
        return idx
    raise DataError(f"{where}: label {label!r} is neither an index nor one of the choices {choices}")


def _answer(prompt: Any, rec: dict) -> str:
    from ayakit.eval.tasks.prompts import render, render_choice

    if prompt.target:
        return render(prompt.target, rec, "few-shot")
    if "label" in rec:
        _, choices, _ = render_choice(prompt, rec, "few-shot")
        return choices[_gold(rec["label"], choices, "few-shot")]
    return str(rec["answers"][0])


def _data(name: str) -> dict:
    return yaml.safe_load(resources.files("ayakit.eval").joinpath(name).read_text(encoding="utf-8"))


def _where(spec: TaskFile) -> str:
    from ayakit.eval.tasks.loaders import LOCATIONS

    data = spec.data
    if data.hub_id:
        config = data.config or ("<language config>" if data.reader else "")
        return f"<data_dir>/{data.hub_id}/{config + '/' if config else ''}{data.split or 'test'}*"
    if data.reader:
        return f"<data_dir>/{LOCATIONS.get(data.reader, data.reader)}"
    return str(data.path)


def _languages(spec: TaskFile) -> str:
    if spec.languages or spec.data.reader:
        return spec.languages
    if isinstance(spec.language, str):
        return spec.language
    return "one file per language" if spec.language.from_filename else f"column {spec.language.column!r}"


def task_from_spec(spec: TaskFile, base: Path | None = None) -> Task:
    """A Task from a validated task file."""
    gen = spec.generation
    greedy = spec.is_greedy()
    return Task(name=spec.name, kind=spec.kind, metric=spec.metric, unseen_task=spec.unseen_task,
                description=spec.description, where=_where(spec), extra_metrics=list(spec.extra_metrics),
                max_new_tokens=gen.max_new_tokens, greedy=greedy, temperature=0.0 if greedy else gen.temperature,
                top_p=1.0 if greedy else gen.top_p, stop=list(gen.stop), languages=_languages(spec), spec=spec,
                base=base)


@functools.lru_cache(maxsize=1)
def registry() -> dict[str, Task]:
    """The built-in tasks of tasks.yaml (the embedded suite's tasks are added by `embedded_tasks`)."""
    return {name: task_from_spec(parse_task({"name": name, **body}, f"ayakit/eval/tasks/tasks.yaml: {name}"))
            for name, body in _data("tasks/tasks.yaml").items()}


def load_task_file(path: str | Path) -> Task:
    """A Task from a task file (YAML); relative data paths are read from the file's folder first."""
    path = Path(path)
    return task_from_spec(read_task_file(path), path.parent)


@functools.lru_cache(maxsize=1)
def suites() -> dict[str, dict]:
    """The named suites of suites.yaml."""
    return _data("suites.yaml")


def closest(name: str, known: list[str]) -> str:
    """' (did you mean X?)' or ''."""
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.3)
    return f" (did you mean {match[0]!r}?)" if match else ""


def get_task(name: str, embedded: dict[str, Task] | None = None) -> Task:
    """A task by name or task-file path; an unknown name is an UnknownTaskError naming the closest known task."""
    if is_task_file(name):
        return load_task_file(name)
    known = {**registry(), **(embedded or {})}
    if name not in known:
        raise UnknownTaskError(f"unknown task {name!r}{closest(name, list(known))}; known: {', '.join(sorted(known))}"
                               "; a task file is given by its path (my_task.yaml)")
    return known[name]


def get_suite(name: str) -> dict:
    """A suite by name; an unknown name names the closest."""
    if name not in suites():
        raise UnknownTaskError(f"unknown suite {name!r}{closest(name, list(suites()))}; known: {', '.join(suites())}")
    return suites()[name]


def check_names(suite: str | None, tasks: list[str] | None) -> None:
    """Raise UnknownTaskError for an unknown suite, task name (built-in or embedded family) or missing task file."""
    if suite:
        get_suite(suite)
    for name in tasks or []:
        if is_task_file(name):
            if not Path(name).is_file():
                raise UnknownTaskError(f"task file {name} does not exist")
            continue
        if name not in registry() and name not in embedded_task_names():
            known = [*registry(), *embedded_task_names()]
            raise UnknownTaskError(f"unknown task {name!r}{closest(name, known)}; known: {', '.join(sorted(known))}")


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
    for code in languages:
        tag = L.tag(code)
        for it in heldout_items(code, n_prompts=n_prompts, max_items=max_items, seed=seed):
            it.language = tag  # a language tag, as every other task's items
            items.append(it)
    return items


def _embedded_name(item: EvalItem, mixed: set[str]) -> str:
    if item.task in mixed:
        return f"{item.task}-{'mc' if item.choices else 'gen'}"
    return item.task


def embedded_tasks(languages: Selection | None, n_prompts: int, max_items: int | None, seed: int) -> dict[str, Task]:
    """One task per held-out family (split by kind when a family has both) in the selected Aya-101 languages."""
    codes = tuple(lang.code for lang in L.languages() if languages is None or languages.wants(L.tag(lang.code)))
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
            chosen = [it for it in group if want is None or want.wants(it.language)]
            for it in chosen:
                it.task = name
                it.meta.setdefault("unseen_language", L.tier(it.language) == "unlisted")
            return chosen

        out[name] = Task(name=name, kind="choice" if choice else "generation", metric=metric, unseen_task=True,
                         description=f"held-out CLDR family {group[0].task} (embedded)",
                         where="embedded (installed packages)", languages="the Aya-101 languages with CLDR data",
                         max_new_tokens=int(group[0].meta.get("max_new_tokens", 32)), fixed_items=fixed)
    return out


@functools.lru_cache(maxsize=1)
def embedded_task_names() -> tuple[str, ...]:
    """The embedded suite's task names (a cheap probe: one language, one prompt)."""
    try:
        return tuple(embedded_tasks(Selection(tags=("eng-Latn",)), 1, 2, 0))
    except DataError:
        return ()


def resolve(suite: str | None, tasks: list[str] | None, languages: Selection | None, n_prompts: int,
            max_items: int | None, seed: int, task_dir: Path | None = None) -> tuple[list[Task], dict[str, int]]:
    """The tasks to run (a suite's, the named ones or task files, plus every task file of task_dir) and the suite's
    per-task k-shot settings."""
    spec = get_suite(suite) if suite and not (tasks or task_dir) else {"tasks": [], "embedded": False}
    if suite and (tasks or task_dir):
        spec = {**get_suite(suite), "tasks": [], "embedded": False}  # its k-shot settings still apply
    embedded: dict[str, Task] = {}
    need_embedded = any(t not in registry() and not is_task_file(t) for t in tasks) if tasks else spec.get("embedded")
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
    if task_dir is not None:
        chosen += [load_task_file(p) for p in task_files(task_dir)]
    names = [t.name for t in chosen]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise UnknownTaskError(f"two tasks share the name(s) {', '.join(dupes)}: rename one (a task file's `name:`)")
    if not chosen:
        raise UnknownTaskError(f"suite {suite!r} has no tasks" if not task_dir else f"no task files in {task_dir}")
    return chosen, dict(spec.get("num_fewshot") or {})


def chance(items: list[EvalItem]) -> float | None:
    """Expected accuracy (0-100) of a uniform random guess over the items' choices, or None for generation."""
    sizes = [len(it.choices) for it in items if it.choices]
    if not sizes:
        return None
    return 100.0 * sum(1 / n for n in sizes) / len(sizes)


__all__ = ["Selection", "Task", "UnknownTaskError", "chance", "check_names", "embedded_tasks", "get_suite",
           "get_task", "load_task_file", "registry", "resolve", "selection", "suites"]
