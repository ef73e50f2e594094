"""The embedded source (`type: embedded`, the default): instruction tasks generated from installed packages, no network.

Facts come from Unicode CLDR through babel (month, weekday, country and language names; number, date,
currency, unit, list and relative-time formatting), num2words (numbers in words) and chatterbot-corpus
(human-written dialogue turns). Task families and their licences are listed in
`ayakit/data/templates/families.yaml`; each family renders its facts through the templates of
`<family>.yaml`: English (code-mixed) instructions for every language, plus instructions written in the
target language where a template exists for it. Held-out families are never emitted here; they are the
unseen-task evaluation (`heldout_items`).

Recipe options for a source of this type:
  families: [month_name, ...]      which training families (default: all of them; a held-out family is an error)
  languages: [swa, fra, ...]       which languages (default: the recipe's data.languages, else all 101)
  options:
    per_language: N                at most N examples per (family, language) (default: no cap)
    variants: K                    render each fact through K different templates (default 1)
    numbers: N                     facts per language for the generated-value families: number, date,
                                   currency, unit and relative-time formatting, number words (default 12)
    native_share: p                probability of picking a template written in the target language when
                                   one exists, instead of a code-mixed English one (default 0.5)
The output is deterministic for the recipe's seed.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ayakit.data.sources import facts as F
from ayakit.data.sources.base import Source, make_source
from ayakit.data.templating import Template, TemplateError, load_templates, render
from ayakit.errors import DataError
from ayakit.languages import get, languages
from ayakit.recipe import Recipe, SourceSpec
from ayakit.records import EvalItem, example_id


@dataclass(frozen=True)
class Family:
    """One task family of families.yaml."""

    name: str
    description: str
    facts: str
    dataset: str
    kind: str
    license: str
    heldout: bool
    metric: str | None = None  # held-out families: the eval metric when not the default (accuracy / chrF++)
    max_new_tokens: int | None = None  # held-out generation families: the answer length to generate


@functools.cache
def families() -> dict[str, Family]:
    """Every task family of the catalogue, by name."""
    cat = F.catalog()
    out: dict[str, Family] = {}
    for f in cat["families"]:
        out[f["name"]] = Family(name=f["name"], description=f["description"], facts=f["facts"],
                                dataset=f["dataset"], kind=f["kind"], license=cat["licenses"][f["dataset"]],
                                heldout=bool(f["heldout"]), metric=f.get("metric"),
                                max_new_tokens=f.get("max_new_tokens"))
    return out


def training_families() -> list[str]:
    """Families the embedded source may emit for training."""
    return [name for name, f in families().items() if not f.heldout]


def heldout_families() -> list[str]:
    """Families kept for the unseen-task evaluation; never emitted for training."""
    return [name for name, f in families().items() if f.heldout]


def family_facts(family: str, language: str, seed: int = 0, numbers: int = 12) -> list[dict[str, Any]]:
    """The fact records of one family in one language (empty where the packages lack them)."""
    fam = families()[family]
    return F.EXTRACTORS[fam.facts](get(language).code, seed=seed, n=numbers)


def _pool(family: str, language: str) -> tuple[list[Template], list[Template]]:
    """(code-mixed English templates, templates written in the language) of a family."""
    temps = load_templates(family)
    native = [t for t in temps if t.written_in(language) and language != "eng"]
    english = [t for t in temps if t.written_in("eng")]
    return english, native


def _pick(rng: random.Random, english: list[Template], native: list[Template], k: int,
          native_share: float) -> list[Template]:
    chosen: list[Template] = []
    for _ in range(k):
        pool = native if native and rng.random() < native_share else english
        left = [t for t in pool if t not in chosen] or [t for t in english + native if t not in chosen]
        if not left:
            break
        chosen.append(rng.choice(left))
    return chosen


def generate(family: str, language: str, seed: int = 0, *, variants: int = 1, numbers: int = 12,
             per_language: int | None = None, native_share: float = 0.5) -> Iterator[dict[str, Any]]:
    """Training rows (Example fields) of one family in one language."""
    fam = families()[family]
    if fam.heldout:
        raise DataError(f"family {family!r} is held out for evaluation and never emitted for training")
    code = get(language).code
    english, native = _pool(family, code)
    records = family_facts(family, code, seed=seed, numbers=numbers)
    rng = random.Random(f"{seed}:{family}:{code}:templates")
    emitted = 0
    for rec in records:
        for tpl in _pick(rng, english, native, variants, native_share):
            if per_language is not None and emitted >= per_language:
                return
            try:
                inputs, targets, _ = render(tpl, rec, code)
            except TemplateError:
                continue  # a literal the language lacks (e.g. yes/no): no example rather than a wrong one
            if not inputs or not targets:
                continue
            emitted += 1
            yield {"inputs": inputs, "targets": targets, "language": code, "script": rec.get("script", ""),
                   "dataset": fam.dataset, "task": family, "template": tpl.id, "kind": fam.kind,
                   "license": fam.license, "split": "train"}


def embedded_reader(spec: SourceSpec, recipe: Recipe) -> Source:
    """Instruction tasks from CLDR / num2words / chatterbot-corpus (see the module docstring for options)."""
    known = families()
    chosen = list(spec.families) if spec.families else training_families()
    for name in chosen:
        if name not in known:
            raise DataError(f"source {spec.name!r}: unknown family {name!r}; known: {', '.join(training_families())}")
        if known[name].heldout:
            raise DataError(f"source {spec.name!r}: family {name!r} is held out for evaluation and cannot be "
                            f"used for training (held out: {', '.join(heldout_families())})")
    opts = spec.options
    unknown = set(opts) - {"per_language", "variants", "numbers", "native_share"}
    if unknown:
        raise DataError(f"source {spec.name!r}: unknown embedded option(s) {sorted(unknown)}; "
                        "known: native_share, numbers, per_language, variants")
    variants = int(opts.get("variants", 1))
    numbers = int(opts.get("numbers", 12))
    per_language = opts.get("per_language")
    per_language = int(per_language) if per_language is not None else None
    native_share = float(opts.get("native_share", 0.5))
    licenses = sorted({known[n].license for n in chosen})
    kinds = sorted({known[n].kind for n in chosen})

    def rows(source: Source) -> Iterator[dict[str, Any]]:
        codes = [lang.code for lang in languages()]
        units = ((name, code) for name in chosen for code in codes
                 if source.languages is None or code in source.languages)
        for unit, (name, code) in enumerate(units):  # a (family, language) pair is one unit of a shard
            if source.owns(unit):
                yield from generate(name, code, recipe.seed, variants=variants, numbers=numbers,
                                    per_language=per_language, native_share=native_share)

    return make_source(spec, recipe, kind=kinds[0] if len(kinds) == 1 else "templated",
                       license=licenses[0] if len(licenses) == 1 else " AND ".join(licenses), rows=rows,
                       shardable=True)


def coverage(seed: int = 0) -> dict[str, dict[str, int]]:
    """Facts per (training and held-out) family per language: what the installed packages cover."""
    out: dict[str, dict[str, int]] = {}
    for lang in languages():
        out[lang.code] = {name: len(family_facts(name, lang.code, seed)) for name in families()}
    return out


def heldout_items(language: str, n_prompts: int = 5, max_items: int | None = None, seed: int = 0) -> list[EvalItem]:
    """Evaluation items of every held-out family in a language, each under n_prompts different prompts.

    Choice families give task "<family>" with `choices` and `gold` (rank classification); generation
    families give task "<family>-gen" with reference `targets`. An item's id is the same under every prompt.
    """
    if n_prompts < 1:
        raise ValueError("n_prompts must be at least 1")
    code = get(language).code
    out: list[EvalItem] = []
    for family in heldout_families():
        fam = families()[family]
        meta = {"family": family} | {k: v for k, v in (("metric", fam.metric), ("max_new_tokens", fam.max_new_tokens))
                                     if v is not None}
        temps = load_templates(family)[:n_prompts]
        records = family_facts(family, code, seed=seed)
        if max_items is not None and len(records) > max_items:
            records = random.Random(f"{seed}:{family}:{code}:items").sample(records, max_items)
            records.sort(key=lambda r: r["number"] if "number" in r else 0)
        for rec in records:
            item_id = example_id("heldout", family, code, str(rec["key"]))
            for tpl in temps:
                try:
                    inputs, targets, choices = render(tpl, rec, code)
                except TemplateError:
                    continue
                if choices is not None:
                    out.append(EvalItem(id=item_id, task=family, language=code, prompt_id=tpl.id, inputs=inputs,
                                        targets=[targets], choices=choices, gold=rec["gold"], meta=dict(meta)))
                else:
                    out.append(EvalItem(id=item_id, task=f"{family}-gen", language=code, prompt_id=tpl.id,
                                        inputs=inputs, targets=[targets], meta=dict(meta)))
    return out
