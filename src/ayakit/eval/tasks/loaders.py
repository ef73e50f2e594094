"""Readers of evaluation data: the public data dir's layouts and local copies of hub datasets.

Each loader returns {language tag: LangData}: the records to evaluate and the pool for k-shot exemplars. A record is
a plain dict with an `id`, the fields its prompts use, and `label` (choice tasks) or `answers` (generation tasks).
Varieties stay distinct (srp-Cyrl and srp-Latn, zho-Hans, zho-Hant and yue-Hant are separate keys). A loader
records every file it reads and notes every variety in the data it does not evaluate. A file in the wrong format is
a DataError that names the file and line; data that is absent is a MissingData (a suite skips that task).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.eval.tasks.selection import Selection, wants
from ayakit.io import iter_jsonl

LOADERS: dict[str, Callable[..., dict[str, LangData]]] = {}
# Where each built-in reader expects its data under the data dir (what `ayakit eval tasks` shows).
LOCATIONS = {"xcopa": "xcopa/data/<lang>/<split>.<lang>.jsonl", "xwinograd": "xwinograd/dataset.tsv",
             "sib200": "sib200/data/annotated/<flores code>/<split>.tsv",
             "flores": "sib200/data/annotated/<flores code>/<split>.tsv",
             "tatoeba": "tatoeba/data/tatoeba/v1/tatoeba.<xxx>-eng.{xxx,eng}", "xquad": "xquad/xquad.<iso1>.json"}


@dataclass
class LangData:
    """One language's records and its few-shot pool."""

    records: list[dict]
    pool: list[dict] = field(default_factory=list)


class MissingData(DataError):
    """A task's data is not where it is expected: a suite records the task as skipped and goes on."""


@dataclass
class Context:
    """What a loader reports besides its records: the files it read and notes on what it left out."""

    files: set[Path] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def loader(name: str) -> Callable:
    """Register a loader under a name (tasks.yaml's `loader:`)."""

    def wrap(fn: Callable) -> Callable:
        LOADERS[name] = fn
        return fn

    return wrap


def registry_code(code: str) -> str | None:
    """The registry code of a dataset's language code, or None when it is not one of the 101 languages."""
    try:
        return L.normalize(code)
    except L.UnknownLanguageError:
        return None


def lang_tag(code: str, script: str | None = None) -> str | None:
    """The language tag of a dataset's code (any ISO 639-3 language, not only the 101), or None when it is none."""
    try:
        return L.tag(code, script=script)
    except (L.UnknownLanguageError, ValueError):
        return None


def _name(tag: str) -> str:
    try:
        return L.display_name(tag)
    except (L.UnknownLanguageError, ValueError, LookupError):
        return tag


def _not_evaluated(ctx: Context, task: str, present: list[str], used: list[str]) -> None:
    left = sorted(set(present) - set(used))
    if left:
        ctx.notes.append(f"{task}: {len(left)} varieties in the data not evaluated (outside the aya-101 set, or a "
                         f"second variety of a language; `-l all` or `-l <tag>` evaluates them): {', '.join(left)}")


def _need_dir(data_dir: Path | None, sub: str, task: str) -> Path:
    if data_dir is None:
        raise MissingData(f"task {task} needs the public data dir: pass --data-dir, set AYAKIT_DATA_DIR or the "
                        "recipe's data_dir")
    path = Path(data_dir) / sub
    if not path.exists():
        raise MissingData(f"task {task}: {path} not found (is {data_dir} the public data dir?)")
    return path


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file; a bad line is a DataError naming the file and line."""
    return [row for _, row in iter_jsonl(path)]


def _field(row: dict, key: str, where: str) -> Any:
    if key not in row:
        raise DataError(f"{where}: missing field {key!r} (has {sorted(row)})")
    return row[key]


# --- public data dir --------------------------------------------------------------------------------------------


@loader("xcopa")
def load_xcopa(spec: dict, data_dir: Path | None, sel: Selection | None, ctx: Context) -> dict[str, LangData]:
    """XCOPA: data/<lang>/{val,test}.<lang>.jsonl (premise, choice1, choice2, question, label)."""
    root = _need_dir(data_dir, "xcopa/data", "xcopa")
    split = spec.get("split", "val")
    out = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        code = lang_tag(d.name) or d.name  # Quechua is outside the 101 languages: kept, tier unlisted
        if not wants(sel, code):
            continue
        path = d / f"{split}.{d.name}.jsonl"
        if not path.is_file():
            raise MissingData(f"xcopa: {path} not found")
        ctx.files.add(path)
        records = []
        for n, row in enumerate(read_jsonl(path), 1):
            where = f"{path}:{n}"
            rec = {k: _field(row, k, where) for k in ("premise", "choice1", "choice2", "question", "label")}
            if rec["question"] not in ("cause", "effect") or rec["label"] not in (0, 1):
                raise DataError(f"{where}: question must be cause/effect and label 0/1")
            rec["id"] = f"{d.name}-{split}-{row.get('idx', n - 1)}"
            records.append(rec)
        out[code] = LangData(records)
    return out


def _spans(sentence: str, tokens: list[str]) -> list[tuple[int, int]] | None:
    spans, cursor = [], 0
    for tok in tokens:
        start = sentence.find(tok, cursor)
        if start < 0:
            return None
        spans.append((start, start + len(tok)))
        cursor = start + len(tok)
    return spans


@loader("xwinograd")
def load_xwinograd(spec: dict, data_dir: Path | None, sel: Selection | None, ctx: Context) -> dict[str, LangData]:
    """XWinograd: dataset.tsv (lang, source, English, sentence, tokens, pronoun span, candidate spans + gold)."""
    path = _need_dir(data_dir, "xwinograd/dataset.tsv", "xwinograd")
    ctx.files.add(path)
    out: dict[str, LangData] = {}
    unscorable: dict[str, int] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            where = f"{path}:{n}"
            if len(row) != 7:
                raise DataError(f"{where}: expected 7 tab-separated columns, got {len(row)}")
            lang = lang_tag({"jp": "ja"}.get(row[0], row[0]))
            if lang is None or not wants(sel, lang):
                continue
            try:
                sentence, tokens, pronoun, cands = row[3], json.loads(row[4]), json.loads(row[5]), json.loads(row[6])
                (p_start, p_end) = pronoun[1]
                options = [c[0] for c in cands]
                golds = [bool(c[3]) for c in cands]
            except (json.JSONDecodeError, ValueError, IndexError, TypeError) as exc:
                raise DataError(f"{where}: malformed token/pronoun/candidate columns ({exc})") from None
            spans = _spans(sentence, tokens)
            if spans is None or len(options) != 2 or golds.count(True) != 1 or p_end > len(spans):
                unscorable[lang] = unscorable.get(lang, 0) + 1  # the pronoun cannot be located in the raw sentence
                continue
            start, end = spans[p_start][0], spans[p_end - 1][1]
            # before / after: lm-eval's partial scoring (context = text before the blank + option)
            rec = {"id": f"{row[0]}-{n}", "sentence": sentence[:start] + "_" + sentence[end:],
                   "option1": options[0], "option2": options[1], "label": golds.index(True),
                   "before": sentence[:start], "after": sentence[end:].strip()}
            out.setdefault(lang, LangData([])).records.append(rec)
    for lang, n in sorted(unscorable.items()):
        ctx.notes.append(f"xwinograd: {n} {lang} rows not scored: the pronoun or candidates cannot be located in the "
                         "raw sentence, or there are not exactly two candidates with one gold")
    return out


def _read_tsv(path: Path, columns: tuple[str, ...]) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}:1: missing columns {missing} (has {reader.fieldnames})")
        return [dict(r) for r in reader]


def _sib_dirs(root: Path, sel: Selection | None, ctx: Context, task: str) -> dict[str, Path]:
    """SIB-200 / FLORES-200 folders by tag: by default one per Aya-101 language (its first FLORES code present);
    with a selection, every variety present that it asks for (`-l all`: all of them, each once)."""
    present = {lang_tag(p.name): p for p in sorted(root.iterdir()) if p.is_dir()}
    present.pop(None, None)
    if sel is not None:
        return {t: p for t, p in present.items() if sel.wants(t)}
    out = {}
    for lang in L.languages():
        for flores in lang.flores:
            if (root / flores).is_dir():
                out[lang_tag(flores)] = root / flores
                break
    _not_evaluated(ctx, task, list(present), list(out))
    return out


@loader("sib200")
def load_sib200(spec: dict, data_dir: Path | None, sel: Selection | None, ctx: Context) -> dict[str, LangData]:
    """SIB-200: annotated/<flores>/{train,dev,test}.tsv (index_id, category, text); 7 topics."""
    from ayakit.eval.tasks.prompts import load_prompts

    root = _need_dir(data_dir, "sib200/data/annotated", "sib200")
    labels = load_prompts(spec["prompts"]).tables["labels"]
    out = {}
    for code, d in _sib_dirs(root, sel, ctx, spec["name"]).items():
        parts = {}
        for split in (spec.get("split", "test"), spec.get("fewshot_split", "train")):
            ctx.files.add(d / f"{split}.tsv")
            rows = _read_tsv(d / f"{split}.tsv", ("index_id", "category", "text"))
            recs = []
            for n, r in enumerate(rows, 2):
                if r["category"] not in labels:
                    raise DataError(f"{d / f'{split}.tsv'}:{n}: unknown category {r['category']!r}")
                recs.append({"id": f"{split}-{r['index_id']}", "text": r["text"], "labels": labels,
                             "label": labels.index(r["category"]), "lang_name": _name(code)})
            parts[split] = recs
        out[code] = LangData(parts[spec.get("split", "test")], parts[spec.get("fewshot_split", "train")])
    return out


def _pairs(code: str, sources: list[str], targets: list[str], ids: list[str], direction: str) -> list[dict]:
    name = _name(code)
    src_name, tgt_name = (name, "English") if direction == "x-eng" else ("English", name)
    out = []
    for i, x, e in zip(ids, sources, targets):
        source, target = (x, e) if direction == "x-eng" else (e, x)
        out.append({"id": i, "source": source, "target": target, "answers": [target],
                    "src_name": src_name, "tgt_name": tgt_name, "lang_name": name})
    return out


@loader("flores")
def load_flores(spec: dict, data_dir: Path | None, sel: Selection | None, ctx: Context) -> dict[str, LangData]:
    """FLORES-200 sentences through SIB-200's parallel split (rows aligned by index_id), English on the other side."""
    root = _need_dir(data_dir, "sib200/data/annotated", spec["name"])
    english = {}
    for split in (spec.get("split", "test"), spec.get("fewshot_split", "train")):
        ctx.files.add(root / "eng_Latn" / f"{split}.tsv")
        english[split] = {r["index_id"]: r["text"] for r in _read_tsv(root / "eng_Latn" / f"{split}.tsv",
                                                                       ("index_id", "text"))}
    out = {}
    dirs = _sib_dirs(root, sel, ctx, spec["name"])
    dirs.pop("eng-Latn", None)  # English to English is not translation
    for code, d in dirs.items():
        parts = {}
        for split, eng in english.items():
            ctx.files.add(d / f"{split}.tsv")
            rows = [r for r in _read_tsv(d / f"{split}.tsv", ("index_id", "text")) if r["index_id"] in eng]
            parts[split] = _pairs(code, [r["text"] for r in rows], [eng[r["index_id"]] for r in rows],
                                  [f"{split}-{r['index_id']}" for r in rows], spec["direction"])
        out[code] = LangData(parts[spec.get("split", "test")], parts[spec.get("fewshot_split", "train")])
    return out


def _tatoeba_files(root: Path, sel: Selection | None, ctx: Context, task: str) -> dict[str, str]:
    """Tatoeba file codes by tag: by default one per registry language (the registry code itself, else its aliases
    in order); with a selection, every file whose variety it asks for."""
    codes = sorted(p.name.split(".")[1].split("-")[0] for p in root.glob("tatoeba.*-eng.eng"))
    tagged = {c: lang_tag(c) for c in codes}
    if sel is not None:
        return {t: c for c, t in tagged.items() if t and sel.wants(t)}
    found: dict[str, list[str]] = {}
    for file_code in codes:
        code = registry_code(file_code)
        if code:
            found.setdefault(code, []).append(file_code)
    out = {}
    for code, files in found.items():
        rank = [code, *L.get(code).aliases]
        chosen = sorted(files, key=lambda f: (rank.index(f) if f in rank else len(rank), f))[0]
        out[tagged[chosen] or code] = chosen
    _not_evaluated(ctx, task, [t for t in tagged.values() if t], list(out))
    return out


@loader("tatoeba")
def load_tatoeba(spec: dict, data_dir: Path | None, sel: Selection | None, ctx: Context) -> dict[str, LangData]:
    """Tatoeba: tatoeba.<xxx>-eng.{xxx,eng}, line-aligned; evaluated on the held-out lines, shots from the rest."""
    try:
        from ayakit.data.sources.parallel import tatoeba_split
    except ImportError:
        try:
            from ayakit.data.sources.tatoeba import tatoeba_split
        except ImportError as exc:
            raise DataError(f"task {spec['name']}: the Tatoeba train/held-out split is not available ({exc})") from None
    root = _need_dir(data_dir, "tatoeba/data/tatoeba/v1", spec["name"])
    out = {}
    for code, fc in sorted(_tatoeba_files(root, sel, ctx, spec["name"]).items()):
        if code.startswith("eng-"):
            continue
        ctx.files.update([root / f"tatoeba.{fc}-eng.{fc}", root / f"tatoeba.{fc}-eng.eng"])
        xs = (root / f"tatoeba.{fc}-eng.{fc}").read_text(encoding="utf-8").splitlines()
        es = (root / f"tatoeba.{fc}-eng.eng").read_text(encoding="utf-8").splitlines()
        if len(xs) != len(es):
            raise DataError(f"{root}/tatoeba.{fc}-eng.*: {len(xs)} vs {len(es)} lines; the files must be aligned")
        train_idx, held_idx = tatoeba_split(len(xs), seed=0, heldout_fraction=0.5)
        held = _pairs(code, [xs[i] for i in held_idx], [es[i] for i in held_idx], [f"{fc}-{i}" for i in held_idx],
                      spec["direction"])
        pool = _pairs(code, [xs[i] for i in train_idx], [es[i] for i in train_idx],
                      [f"{fc}-{i}" for i in train_idx], spec["direction"])
        out[code] = LangData(held, pool)
    return out


def _squad_records(data: dict, where: str, prefix: str) -> list[dict]:
    out = []
    try:
        for article in data["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    answers = [a["text"] for a in qa["answers"]]
                    out.append({"id": f"{prefix}{qa['id']}", "context": para["context"], "question": qa["question"],
                                "answers": answers, "answer": answers[0] if answers else ""})
    except (KeyError, TypeError) as exc:
        raise DataError(f"{where}: not in SQuAD v1.1 format (missing {exc})") from None
    return out


@loader("xquad")
def load_xquad(spec: dict, data_dir: Path | None, sel: Selection | None, ctx: Context) -> dict[str, LangData]:
    """XQuAD: xquad.<iso1>.json in SQuAD v1.1 format (no train split: zero-shot)."""
    root = _need_dir(data_dir, "xquad", "xquad")
    out = {}
    for path in sorted(root.glob("xquad.*.json")):
        code = lang_tag(path.name.split(".")[1])
        if code is None or not wants(sel, code):
            continue
        ctx.files.add(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        out[code] = LangData(_squad_records(data, str(path), ""))
    return out


from ayakit.eval.tasks import hub  # noqa: E402, F401 - registers the hub datasets' readers (they use this module)
