"""Readers of hub datasets from a local copy in the hub layout under the data dir (else from the hub itself).

`<data_dir>/<hub_id>/[<config>/]<split>*.{parquet,jsonl,json}` or `<split>/*.parquet` (the hub's own parquet layout);
a missing or misplaced copy is a MissingData that names the expected layout and, when the dataset's folder is
elsewhere under the data dir, where it was found.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.eval.tasks.loaders import (Context, LangData, MissingData, _field, _name, lang_tag, loader, read_jsonl,
                                       registry_code)
from ayakit.eval.tasks.selection import Selection, wants

HUB_LAYOUT = ("<data_dir>/<hub_id>/[<config>/]<split>*.{parquet,jsonl,json} or <data_dir>/<hub_id>/[<config>/]"
              "<split>/*.parquet (the hub's own parquet layout)")


def _misplaced(hub_id: str, data_dir: Path) -> str:
    """' found a copy at X' when the dataset's folder is somewhere else under the data dir."""
    short = hub_id.split("/")[-1]
    for depth in ("*", "*/*", "*/*/*"):
        for cand in Path(data_dir).glob(f"{depth}"):
            if cand.is_dir() and cand.name == short and cand != Path(data_dir) / hub_id:
                return f"; found {cand}: move it to {Path(data_dir) / hub_id}"
    return ""


def _split_files(base: Path, split: str) -> list[Path]:
    return sorted([*base.glob(f"{split}*.parquet"), *base.glob(f"{split}/*.parquet"),
                   *base.glob(f"{split}*.jsonl"), *base.glob(f"{split}*.json")])


def hub_files(hub_id: str, config: str | None, split: str, data_dir: Path | None, task: str) -> list[Path]:
    """The files of a hub dataset split in its local copy; MissingData naming the expected layout otherwise."""
    if data_dir is None:
        raise MissingData(f"task {task}: {hub_id} is read from a local copy in the hub layout under the data dir "
                          f"(--data-dir or AYAKIT_DATA_DIR): {HUB_LAYOUT}")
    root = Path(data_dir) / hub_id
    base = root / config if config else root
    files = _split_files(base, split) if base.is_dir() else []
    if files:
        return files
    if not root.is_dir():
        raise MissingData(f"task {task}: no local copy of {hub_id}: expected {base}/{split}*.parquet|jsonl|json "
                          f"(layout: {HUB_LAYOUT}){_misplaced(hub_id, Path(data_dir))}")
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())[:12]
    raise MissingData(f"task {task}: {hub_id} has no {config + '/' if config else ''}{split} split at {base}: "
                      f"expected {base}/{split}*.parquet|jsonl|json or {base}/{split}/*.parquet; the copy holds "
                      f"{', '.join(found) or 'no files'}")


def _rows_of(files: list[Path]) -> list[dict]:
    rows: list[dict] = []
    for f in files:
        if f.suffix == ".parquet":
            import pyarrow.parquet as pq

            try:
                rows.extend(pq.read_table(f).to_pylist())
            except Exception as exc:  # noqa: BLE001 - any parquet failure is a bad file
                raise DataError(f"{f}: not a readable Parquet file ({exc})") from None
        elif f.suffix == ".jsonl":
            rows.extend(read_jsonl(f))
        else:
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise DataError(f"{f}:{exc.lineno}: not valid JSON ({exc.msg})") from None
            rows.extend(data if isinstance(data, list) else data.get("data", []))
    return rows


def hub_rows(spec: dict, data_dir: Path | None, config: str | None, split: str,
             ctx: Context | None = None) -> list[dict] | None:
    """Rows of a hub dataset split: from its local copy in the hub layout under the data dir; else from the hub
    via `datasets`; None when a local copy exists but lacks this config or split."""
    hub_id = spec["hub_id"]
    if data_dir is not None and (Path(data_dir) / hub_id).is_dir():
        try:
            files = hub_files(hub_id, config, split, data_dir, spec["name"])
        except MissingData:
            return None
        if ctx is not None:
            ctx.files.update(files)
        return _rows_of(files)
    try:
        import datasets

        return [dict(r) for r in datasets.load_dataset(hub_id, config, split=split)]
    except Exception as exc:  # noqa: BLE001 - offline, missing config, ...: one clear message
        try:
            hub_files(hub_id, config, split, data_dir, spec["name"])
            local = ""
        except MissingData as missing:
            local = str(missing)
        raise MissingData(f"{local}; the hub copy could "
                          f"not be read either ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def _hub_configs(spec: dict, data_dir: Path | None) -> list[str] | None:
    """Configs present in the local copy (None: no local copy)."""
    if data_dir is not None and (Path(data_dir) / spec["hub_id"]).is_dir():
        return sorted(p.name for p in (Path(data_dir) / spec["hub_id"]).iterdir() if p.is_dir())
    return None


def _per_config(spec: dict, data_dir: Path | None, sel: Selection | None, ctx: Context,
                default_configs: Iterable[str], convert: Callable[[dict, str, str], dict],
                code_of: Callable[[str], str | None] = lang_tag) -> dict[str, LangData]:
    configs = _hub_configs(spec, data_dir) or list(default_configs)
    out = {}
    for config in configs:
        code = code_of(config)
        if code is None:
            ctx.notes.append(f"{spec['name']}: config {config!r} is not a language: not evaluated")
            continue
        if not wants(sel, code):
            continue
        rows = hub_rows(spec, data_dir, config, spec["split"], ctx)
        if rows is None:
            ctx.notes.append(f"{spec['name']}: {config} has no {spec['split']} split in the local copy: not evaluated")
            continue
        pool_rows = hub_rows(spec, data_dir, config, spec["fewshot_split"], ctx) if spec.get("fewshot_split") else None
        where = f"{spec['hub_id']}/{config}"
        out[code] = LangData([convert(r, f"{where}/{spec['split']}[{i}]", f"{config}-{i}") for i, r in enumerate(rows)],
                             [convert(r, f"{where}/{spec['fewshot_split']}[{i}]", f"{config}-shot-{i}")
                              for i, r in enumerate(pool_rows or [])])
    if not out and _hub_configs(spec, data_dir) is not None and sel is None:
        raise MissingData(f"task {spec['name']}: the local copy of {spec['hub_id']} has no usable config "
                          f"(layout: {HUB_LAYOUT})")
    return out


XNLI_CONFIGS = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")


@loader("xnli")
def load_xnli(spec: dict, data_dir: Path | None, sel: Selection | None, ctx: Context) -> dict[str, LangData]:
    """XNLI (facebook/xnli): premise, hypothesis, label (0 entailment, 1 neutral, 2 contradiction)."""
    def convert(r: dict, where: str, rid: str) -> dict:
        rec = {k: _field(r, k, where) for k in ("premise", "hypothesis", "label")}
        if rec["label"] not in (0, 1, 2):
            raise DataError(f"{where}: label must be 0, 1 or 2")
        return {**rec, "id": rid}

    return _per_config(spec, data_dir, sel, ctx, XNLI_CONFIGS, convert)


XSC_CONFIGS = ("ar", "en", "es", "eu", "hi", "id", "my", "ru", "sw", "te", "zh")


@loader("xstorycloze")
def load_xstorycloze(spec: dict, data_dir: Path | None, sel: Selection | None, ctx: Context) -> dict[str, LangData]:
    """XStoryCloze (juletxara/xstory_cloze): input_sentence_1..4, sentence_quiz1/2, answer_right_ending (1/2)."""
    def convert(r: dict, where: str, rid: str) -> dict:
        story = " ".join(str(_field(r, f"input_sentence_{i}", where)) for i in range(1, 5))
        right = _field(r, "answer_right_ending", where)
        if right not in (1, 2):
            raise DataError(f"{where}: answer_right_ending must be 1 or 2")
        return {"id": rid, "story": story, "ending1": _field(r, "sentence_quiz1", where),
                "ending2": _field(r, "sentence_quiz2", where), "label": right - 1}

    return _per_config(spec, data_dir, sel, ctx, XSC_CONFIGS, convert)


MMLU_CONFIGS = ("ar", "bn", "ca", "da", "de", "es", "eu", "fr", "gu", "hi", "hr", "hu", "hy", "id", "it", "kn", "ml",
                "mr", "ne", "nl", "pt", "ro", "ru", "sk", "sr", "sv", "ta", "te", "uk", "vi", "zh")


@loader("mmlu")
def load_mmlu(spec: dict, data_dir: Path | None, sel: Selection | None, ctx: Context) -> dict[str, LangData]:
    """Multilingual MMLU (alexandrainst/m_mmlu): instruction, option_a..option_d, answer (A-D)."""
    def convert(r: dict, where: str, rid: str) -> dict:
        answer = str(_field(r, "answer", where)).strip()
        if answer not in ("A", "B", "C", "D"):
            raise DataError(f"{where}: answer must be A, B, C or D (got {answer!r})")
        return {"id": rid, "question": _field(r, "instruction", where), "a": _field(r, "option_a", where),
                "b": _field(r, "option_b", where), "c": _field(r, "option_c", where),
                "d": _field(r, "option_d", where), "label": "ABCD".index(answer)}

    return _per_config(spec, data_dir, sel, ctx, MMLU_CONFIGS, convert)


XLSUM_CONFIGS = ("amharic", "arabic", "azerbaijani", "bengali", "burmese", "chinese_simplified", "english", "french",
                 "gujarati", "hausa", "hindi", "igbo", "indonesian", "japanese", "kirundi", "korean", "kyrgyz",
                 "marathi", "nepali", "oromo", "pashto", "persian", "portuguese", "punjabi", "russian",
                 "scottish_gaelic", "serbian_cyrillic", "sinhala", "somali", "spanish", "swahili", "tamil", "telugu",
                 "thai", "tigrinya", "turkish", "ukrainian", "urdu", "uzbek", "vietnamese", "welsh", "yoruba")


def _xlsum_code(config: str) -> str | None:
    script = {"chinese_simplified": "Hans", "serbian_cyrillic": "Cyrl"}.get(config)
    name = {"chinese_simplified": "chinese", "serbian_cyrillic": "serbian", "kirundi": "rundi",
            "scottish_gaelic": "gaelic"}.get(config, config)
    by_name = {lang.name.lower(): lang.code for lang in L.languages()}
    code = by_name.get(name.replace("_", " ")) or registry_code(name)
    return lang_tag(code, script=script) if code else None


@loader("xlsum")
def load_xlsum(spec: dict, data_dir: Path | None, sel: Selection | None, ctx: Context) -> dict[str, LangData]:
    """XLSum (csebuetnlp/xlsum): configs named by language; text, summary."""
    def convert(r: dict, where: str, rid: str) -> dict:
        summary = _field(r, "summary", where)
        return {"id": str(r.get("id") or rid), "text": _field(r, "text", where), "summary": summary,
                "answers": [summary], "lang_name": ""}

    out = _per_config(spec, data_dir, sel, ctx, XLSUM_CONFIGS, convert, code_of=_safe(_xlsum_code))
    for code, data in out.items():
        for rec in [*data.records, *data.pool]:
            rec["lang_name"] = _name(code)
    return out


def _safe(fn: Callable[[str], str | None]) -> Callable[[str], str | None]:
    def wrapped(x: str) -> str | None:
        try:
            return fn(x)
        except L.UnknownLanguageError:
            return None

    return wrapped


@loader("tydiqa")
def load_tydiqa(spec: dict, data_dir: Path | None, sel: Selection | None, ctx: Context) -> dict[str, LangData]:
    """TyDiQA GoldP (secondary_task): id "<language>-<n>", context, question, answers {text, answer_start}."""
    by_name = {lang.name.lower(): lang.code for lang in L.languages()}
    out: dict[str, LangData] = {}
    for split, attr in ((spec["split"], "records"), (spec.get("fewshot_split"), "pool")):
        if not split:
            continue
        rows = hub_rows(spec, data_dir, spec.get("config"), split, ctx) or []
        for i, r in enumerate(rows):
            where = f"{spec['hub_id']}/{split}[{i}]"
            rid = str(_field(r, "id", where))
            code = by_name.get(rid.split("-")[0])
            code = lang_tag(code) if code else None
            if code is None or not wants(sel, code):
                continue
            answers = _field(r, "answers", where)
            texts = answers.get("text") if isinstance(answers, dict) else None
            if not isinstance(texts, list):
                raise DataError(f"{where}: answers must be {{'text': [...], 'answer_start': [...]}}")
            rec = {"id": rid, "context": _field(r, "context", where), "question": _field(r, "question", where),
                   "answers": texts, "answer": texts[0] if texts else ""}
            getattr(out.setdefault(code, LangData([])), attr).append(rec)
    return {k: v for k, v in out.items() if v.records}


@loader("aya_suite")
def load_aya_suite(spec: dict, data_dir: Path | None, sel: Selection | None, ctx: Context) -> dict[str, LangData]:
    """CohereForAI/aya_evaluation_suite: id, inputs, targets, language (an ISO 639-3 code), script (ISO 15924).

    Every row's variety is its language + its `script` field (srp Cyrl and srp Latn stay apart); rows whose
    language is not a language code are listed in the notes."""
    rows = hub_rows(spec, data_dir, spec.get("config"), spec["split"], ctx)
    if rows is None:
        hub_files(spec["hub_id"], spec.get("config"), spec["split"], data_dir, spec["name"])  # raises, naming layout
    out: dict[str, LangData] = {}
    unknown: dict[str, int] = {}
    for i, r in enumerate(rows or []):
        where = f"{spec['hub_id']}/{spec.get('config')}/{spec['split']}[{i}]"
        raw = str(_field(r, "language", where))
        code = lang_tag(raw, script=str(r.get("script") or "") or None)
        if code is None:
            unknown[raw] = unknown.get(raw, 0) + 1
            continue
        if not wants(sel, code):
            continue
        targets = _field(r, "targets", where)
        rec = {"id": str(r.get("id", i)), "inputs": _field(r, "inputs", where), "targets": targets,
               "answers": [targets]}
        out.setdefault(code, LangData([])).records.append(rec)
    for raw, n in sorted(unknown.items()):
        ctx.notes.append(f"{spec['name']}: {n} rows with language {raw!r} not evaluated: not a language code")
    return out
