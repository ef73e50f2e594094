"""Task files: an evaluation task as data (YAML validated by pydantic; unknown keys name the closest valid one).

A task file names its data (a local JSONL / JSON / TSV / CSV / Parquet file or folder, a hub id + config + split read
from a local copy in the hub layout, or one of the built-in readers), the field mapping, the language (a fixed tag,
a column, or one file per language), prompts (optionally per language), the kind, the metric, generation settings
and a few-shot source. The built-in tasks (tasks.yaml) use the same schema.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, List, Literal  # noqa: UP035

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ayakit.errors import DataError

FORMATS = ("jsonl", "json", "tsv", "csv", "parquet")
CLOSED_METRICS = ("accuracy", "exact_match", "f1", "numeric_match")  # closed answers: greedy by default


class TaskFileError(DataError):
    """A task file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSpec(_Strict):
    """Where rows come from: a local file or folder, a hub dataset's local copy, or a built-in reader."""

    path: str | None = None  # file or folder; relative to the task file, else to the data dir
    format: Literal["jsonl", "json", "tsv", "csv", "parquet"] | None = None  # default: the file extension
    hub_id: str | None = None  # read from <data_dir>/<hub_id>/[<config>/]<split>*.{parquet,jsonl,json}
    config: str | None = None
    split: str | None = None  # hub split; in a folder, only files whose name starts with it
    fewshot_split: str | None = None  # hub / reader split that supplies k-shot exemplars
    reader: str | None = None  # a built-in reader of ayakit.eval.tasks.loaders (xcopa, flores, ...)
    options: dict[str, Any] = {}  # the built-in reader's settings

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if self.path and self.hub_id:
            raise ValueError("give either path or hub_id, not both")
        if not (self.path or self.hub_id or self.reader):
            raise ValueError("name the data: path (a local file or folder), hub_id (+ config, split) or reader")
        if self.hub_id and not self.reader and not self.split:
            raise ValueError("hub_id needs a split")
        return self


class LanguageSpec(_Strict):
    """Where a row's language comes from when it is not one fixed tag."""

    column: str | None = None  # a column holding a language code (any spelling: sw, swa, swh_Latn, zh-Hant)
    script_column: str | None = None  # a column holding the ISO 15924 script (the aya_evaluation_suite `script`)
    from_filename: bool = False  # one file per language in a folder: the file name (without extension) is the code

    @model_validator(mode="after")
    def _one(self) -> LanguageSpec:
        if bool(self.column) == bool(self.from_filename):
            raise ValueError("give exactly one of column or from_filename: true")
        return self


class ChoicesSpec(_Strict):
    """A choice task's options: a field holding a list, a fixed list, or one template per option."""

    field: str | None = None
    list: List[str] | None = None  # noqa: UP006 - `list` is a key of the schema, so the builtin is shadowed here
    template: List[str] | None = None  # noqa: UP006

    @model_validator(mode="after")
    def _one(self) -> ChoicesSpec:
        if sum(x is not None for x in (self.field, self.list, self.template)) != 1:
            raise ValueError("give exactly one of field, list or template")
        return self


class PromptSpec(_Strict):
    """One prompt: a Jinja template over the row's fields; optionally one per language."""

    id: str
    inputs: str
    per_language: dict[str, str] = {}  # language code -> template for rows of that language
    target: str | None = None  # k-shot exemplars' answer (default: the gold choice / first reference)
    benchmark: bool = False  # only run when asked for by id (parity with another harness)


class GenerationSpec(_Strict):
    """Decoding settings of a generation task."""

    greedy: bool | None = None  # None: greedy for closed answers (accuracy, EM, F1, numeric_match), else sampling
    temperature: float = Field(0.9, ge=0)  # when not greedy
    top_p: float = Field(0.8, gt=0, le=1)  # when not greedy
    max_new_tokens: int = Field(64, gt=0)
    stop: list[str] = []


class TaskFile(_Strict):
    """One evaluation task."""

    name: str
    description: str = ""
    kind: Literal["choice", "generation"]
    data: DataSpec
    fields: dict[str, str] = {}  # template variable -> column of the data
    id_field: str | None = None  # a column with a stable item id (default: file and row number)
    language: str | LanguageSpec | None = None  # a fixed tag, a column, or one file per language
    languages: str = ""  # what the listing shows for a built-in reader's languages
    prompts: list[PromptSpec] | str  # inline prompts, or a built-in prompt file (ayakit/eval/prompts/<name>.yaml)
    choices: ChoicesSpec | None = None  # choice tasks read from files
    label: str | None = None  # choice: the column with the gold option (0-based index, or the option's text)
    target: str | None = None  # generation: a template of the reference, e.g. "{{ answer }}"
    answers: str | None = None  # generation: a column holding the reference or a list of references
    metric: str
    extra_metrics: list[str] = []
    generation: GenerationSpec = GenerationSpec()
    fewshot: DataSpec | None = None  # another file or folder in the same layout, for k-shot exemplars
    unseen_task: bool = False  # a task type held out of training (the paper's unseen discriminative tasks)

    @model_validator(mode="after")
    def _consistent(self) -> TaskFile:
        from ayakit.eval.metrics import METRICS

        for m in [self.metric, *self.extra_metrics]:
            if m not in METRICS:
                raise ValueError(f"unknown metric {m!r}{_hint(m, list(METRICS))}; known: {', '.join(METRICS)}")
        if self.data.reader:
            return self  # a built-in reader supplies language, fields, label and references
        if self.language is None:
            raise ValueError("name the language: a fixed code (language: swa), a column (language: {column: lang}) "
                             "or one file per language (language: {from_filename: true})")
        if isinstance(self.prompts, str):
            raise ValueError("a task read from files needs inline prompts (a list of {id, inputs})")
        if self.kind == "choice":
            if self.choices is None or self.label is None:
                raise ValueError("a choice task needs choices (field, list or template) and label (the gold column)")
        elif bool(self.target) == bool(self.answers):
            raise ValueError("a generation task needs exactly one of target (a template) or answers (a column)")
        return self

    def is_greedy(self) -> bool:
        """Whether generation is greedy (the default for closed answers)."""
        if self.generation.greedy is not None:
            return self.generation.greedy
        return self.metric in CLOSED_METRICS or "temperature" not in self.generation.model_fields_set


def _hint(value: str, known: list[str]) -> str:
    match = difflib.get_close_matches(str(value), known, n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _model_at(loc: tuple) -> type[BaseModel] | None:
    model: Any = TaskFile
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return model if part == loc[-1] else None
        found = None
        stack = [field.annotation]
        while stack:
            ann = stack.pop()
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                found = ann
                break
            stack.extend(getattr(ann, "__args__", ()))
        model = found
    return model


def explain(exc: ValidationError) -> str:
    """pydantic's errors as one line each: unknown keys with the closest valid key, missing keys, bad values."""
    msgs = []
    errors = exc.errors()
    for err in errors:
        if err["type"] == "string_type" and "str" in err["loc"] and len(errors) > 1:
            continue  # the plain-text branch of a `text or mapping` key: the other branch's error says more
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p in ("str", "list[PromptSpec]")
                                                                         or "[" in p or p.endswith("Spec"))))
        where = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent = _model_at(loc[:-1]) if len(loc) > 1 else TaskFile
            known = list(parent.model_fields) if parent is not None else []
            msgs.append(f"unknown key {where!r}{_hint(str(loc[-1]), known)}"
                        + (f"; valid keys here: {', '.join(known)}" if known else ""))
        elif err["type"] == "missing":
            msgs.append(f"missing key {where!r}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            msgs.append(f"{where}: {msg}" + (f" (got {err['input']!r})" if err["type"] != "value_error" else ""))
    return "; ".join(dict.fromkeys(msgs))


def parse_task(data: Any, where: str) -> TaskFile:
    """Validate one task mapping; every problem is one TaskFileError naming `where` and the key."""
    if not isinstance(data, dict):
        raise TaskFileError(f"{where}: a task is a mapping of keys (name, kind, data, prompts, metric, ...)")
    try:
        return TaskFile.model_validate(data)
    except ValidationError as exc:
        raise TaskFileError(f"{where}: {explain(exc)}") from None


def read_task_file(path: str | Path) -> TaskFile:
    """Read and validate a task file (YAML)."""
    path = Path(path)
    if not path.is_file():
        raise TaskFileError(f"task file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise TaskFileError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if isinstance(data, dict) and "name" not in data:
        data = {"name": path.stem, **data}
    return parse_task(data, str(path))


def task_files(directory: str | Path) -> list[Path]:
    """The task files (*.yaml, *.yml) of a folder, sorted."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TaskFileError(f"task folder {directory} does not exist")
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def is_task_file(name: str) -> bool:
    """Whether a --tasks entry names a task file rather than a registered task."""
    return name.endswith((".yaml", ".yml")) or ("/" in name and Path(name).exists())
