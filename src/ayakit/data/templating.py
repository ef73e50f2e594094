"""Prompt templates as data: YAML files of Jinja `inputs` / `targets` (/ `answer_choices`), and per-language literals.

A template file `ayakit/data/templates/<family>.yaml` holds `family:` and a list `templates:`; each template has
`id`, `languages` (the languages its instruction is written in; `eng` templates are the code-mixed ones used for
every target language), `inputs`, `targets` and optionally `answer_choices` (choices separated by `|||`).
Rendering sees the record's fields, `lang` (the target language: code, name, native_name) and `lit` (the target
language's literals from `literals.tsv`: question_mark, question_open, colon, yes, no, because, therefore,
list_sep; and spaces, word_sep from ayakit.languages.unspaced). A literal the table leaves empty is undefined, so a
template that needs it fails to render for that language (TemplateError) instead of borrowing another language's
word.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
import yaml

from ayakit.errors import DataError
from ayakit.languages import get, unspaced

PACKAGE = "ayakit.data.templates"
CHOICE_SEP = "|||"


class TemplateError(DataError):
    """A template that cannot render a record in a language (missing field or literal)."""


@dataclass(frozen=True)
class Template:
    """One prompt: Jinja text for inputs and targets, the languages its instruction is written in."""

    id: str
    family: str
    languages: tuple[str, ...]
    inputs: str
    targets: str
    answer_choices: str | None = None

    def written_in(self, language: str) -> bool:
        """True when the instruction is in `language` (a native, not code-mixed, prompt)."""
        return language in self.languages


@functools.cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


@functools.cache
def _compiled(text: str) -> jinja2.Template:
    return _env().from_string(text)


def _template_files() -> list[str]:
    root = resources.files(PACKAGE)
    return sorted(p.name for p in root.iterdir() if p.name.endswith(".yaml") and p.name != "families.yaml")


@functools.cache
def _all_templates() -> tuple[Template, ...]:
    out: list[Template] = []
    seen: set[str] = set()
    for name in _template_files():
        where = f"{PACKAGE}/{name}"
        doc = yaml.safe_load(resources.files(PACKAGE).joinpath(name).read_text(encoding="utf-8")) or {}
        family = doc.get("family")
        if not family:
            raise DataError(f"{where}: missing `family:`")
        for i, t in enumerate(doc.get("templates") or []):
            missing = [k for k in ("id", "languages", "inputs", "targets") if k not in t]
            if missing:
                raise DataError(f"{where}: template {i} lacks {missing}")
            if t["id"] in seen:
                raise DataError(f"{where}: duplicate template id {t['id']!r}")
            seen.add(t["id"])
            langs = tuple(get(code).code for code in t["languages"])
            out.append(Template(id=t["id"], family=family, languages=langs, inputs=t["inputs"],
                                targets=t["targets"], answer_choices=t.get("answer_choices")))
    return tuple(out)


def load_templates(family: str | None = None) -> list[Template]:
    """Every packaged template, or those of one family (DataError when the family has none)."""
    found = [t for t in _all_templates() if family is None or t.family == family]
    if family is not None and not found:
        known = sorted({t.family for t in _all_templates()})
        raise DataError(f"no templates for family {family!r}; families with templates: {', '.join(known)}")
    return found


@functools.cache
def _literal_table() -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    with resources.files(PACKAGE).joinpath("literals.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            entry: dict[str, Any] = {k: v for k, v in row.items() if k != "code" and v != ""}
            entry["spaces"] = not unspaced(row["code"])
            entry["word_sep"] = " " if entry["spaces"] else ""
            entry.setdefault("question_open", "")
            table[row["code"]] = entry
    return table


def literals(language: str) -> dict[str, Any]:
    """The literal table row of a language (keys absent where the table has no value)."""
    code = get(language).code
    return dict(_literal_table().get(code, {}))


def render(template: Template, record: dict, language: str) -> tuple[str, str, list[str] | None]:
    """(inputs, targets, answer choices or None) of a record in a target language; TemplateError if it cannot."""
    lang = get(language)
    ctx = {**record, "lang": {"code": lang.code, "name": lang.name, "native_name": lang.native_name},
           "lit": literals(lang.code)}
    try:
        inputs = _compiled(template.inputs).render(ctx).strip()
        targets = _compiled(template.targets).render(ctx).strip()
        choices = None
        if template.answer_choices:
            text = _compiled(template.answer_choices).render(ctx)
            choices = [c.strip() for c in text.split(CHOICE_SEP)]
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"template {template.id!r} cannot render in {lang.code}: {exc.message}") from None
    return inputs, targets, choices
