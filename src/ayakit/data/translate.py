"""Translation augmentation (`ayakit translate`): the paper's translated data as an auditable, resumable step.

Each example's `inputs` and `targets` are split into sentences, translated sentence by sentence with any HF
model, and joined back (Aya Collection, [D] App. G). A model whose vocabulary holds FLORES-200 codes
(NLLB, M2M-style) is driven by language codes (source language set on the tokenizer, target code forced as
the first generated token); any other model gets the translation prompt of translate/rules.yaml. Sentences are
split and joined by ayakit.data.sentences, checked by ayakit.data.translation_checks, translated by
ayakit.data.translators; this module is the step and its command.

Filters, each recorded per example: an output with an unknown token (`<unk>`) is dropped; the language-ID check
(ayakit.data.langid) drops an output identified as another language, and by default one it cannot place
(`unknown`, or `short`: too few letters, judged on the example's fields together); the length-ratio filter drops
outputs whose length, normalised by the target script's density, is far from the source's. Per (dataset,
language), at most `cap` examples are kept, from a different random order per language.

Input: a JSONL / Parquet / CSV / TSV file or folder (read by the `files` reader; a `targets` column is
optional), a plain `.txt` file (one sentence per line), or with --recipe any named source of a recipe
(embedded, hub, ...); rows not in the --from language are skipped.

Output in OUT:
- data/<lang>.parquet: kept examples in EXAMPLE_SCHEMA with kind "translated", language = target, dataset /
  task / template / license / split of the original, source = --source-name. Point a recipe's `files` source
  at OUT/data.
- audit.jsonl: one line per example and target language, kept or not: id, source_id, dataset,
  source_language, target_language, model, model_fingerprint (of its weights), mode, source (the original
  inputs / targets), output (the translated ones), kept, reasons (why dropped), checks (unk, langid verdicts,
  length ratios) — the provenance the Example schema has no column for.
- manifest.json (with the input's path and hash); progress/<lang>.jsonl (what is done, so an interrupted run
  resumes where it stopped; keyed by the model's weights, not its folder's name).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from ayakit import languages as L
from ayakit.data.sentences import join_segments, script_of, segment
from ayakit.data.translation_checks import check_translation
from ayakit.data.translators import HFTranslator, Translator
from ayakit.errors import DataError
from ayakit.io import (atomic_path, fingerprint, read_json, read_jsonl_log, write_json_atomic, write_manifest,
                       write_text_atomic)
from ayakit.records import Example, example_id, examples_to_table


def read_examples(path: Path, source_language: str, columns: dict[str, str] | None = None,
                  limit: int | None = None) -> list[Example]:
    """Examples from a JSONL / Parquet / CSV / TSV file or folder (through the `files` reader; `targets` optional)
    or a plain .txt file (one sentence per line, as `inputs`)."""
    from ayakit.recipe import recipe_from_dict

    if path.is_file() and path.name.lower().endswith(".txt"):
        return read_text_lines(path, source_language, limit)
    spec = {"name": path.stem.split(".")[0] or "input", "type": "files", "path": str(path),
            "options": {"language": source_language, "required": ["inputs"]}, "columns": columns or {}}
    recipe = recipe_from_dict({"name": "translate", "data": {"sources": [spec]}}, where=str(path))
    return _read(recipe, recipe.data.sources[0], limit)


def read_text_lines(path: Path, language: str, limit: int | None = None) -> list[Example]:
    """One example per non-blank line of a UTF-8 text file (inputs = the line, no targets)."""
    from ayakit.data.sources.files import BOM, decode_line

    dataset = path.name.split(".")[0] or "input"
    out: list[Example] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            text = decode_line(raw.removeprefix(BOM) if lineno == 1 else raw, path, lineno).strip()
            if not text:
                continue
            out.append(Example(inputs=text, targets="", language=language, source=dataset, dataset=dataset,
                               kind="human", split="train", id=example_id(dataset, str(lineno), language, text)))
            if limit is not None and len(out) >= limit:
                break
    if not out:
        raise DataError(f"{path}: no lines of text")
    return out


def input_fingerprint(path: Path) -> dict[str, Any]:
    """The input's path and a SHA-256 of its bytes (of each file's, for a folder), for the manifest."""
    from ayakit.io import file_sha256

    path = Path(path)
    if path.is_file():
        return {"path": str(path.resolve()), "sha256": file_sha256(path)}
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else []
    return {"path": str(path.resolve()),
            "sha256": fingerprint({str(f.relative_to(path)): file_sha256(f) for f in files}), "files": len(files)}


def read_recipe_source(recipe_path: Path, name: str, limit: int | None = None) -> list[Example]:
    """Examples of the source called `name` in a recipe (any reader: embedded, files, hub datasets...)."""
    from ayakit.recipe import load_recipe

    recipe = load_recipe(recipe_path)
    spec = next((s for s in recipe.data.sources if s.name == name), None)
    if spec is None:
        names = ", ".join(s.name for s in recipe.data.sources)
        raise DataError(f"{recipe_path}: no source named {name!r} (sources: {names})")
    return _read(recipe, spec, limit)


def _read(recipe: Any, spec: Any, limit: int | None) -> list[Example]:
    import pyarrow as pa

    from ayakit.data.sources import open_source
    from ayakit.records import table_to_examples

    out: list[Example] = []
    for batch in open_source(spec, recipe).iter_batches():
        out += table_to_examples(pa.Table.from_batches([batch]))
        if limit is not None and len(out) >= limit:
            return out[:limit]
    return out


@dataclass
class TranslateSettings:
    """What decides the output (its fingerprint guards resuming)."""

    targets: list[str]
    source_language: str
    cap: int | None = None  # per (dataset, target language)
    langid: bool = True
    strict_langid: bool = True  # also drop outputs language ID cannot place (unknown, short)
    seed: int = 0
    batch_size: int = 32  # examples per translation batch
    source_name: str = "translated"


def _order(examples: list[Example], language: str, seed: int) -> list[Example]:
    """A different, reproducible random order per target language (the paper samples per language)."""
    shuffled = list(examples)
    random.Random(f"{seed}:{language}").shuffle(shuffled)
    return shuffled


def model_fingerprint(translator: Translator) -> str:
    """What identifies the translator's model: its weights' fingerprint (its name when it has none)."""
    return getattr(translator, "fingerprint", "") or translator.name


def translate_examples(examples: list[Example], translator: Translator, settings: TranslateSettings, out: Path,
                       progress: Callable[[str, int, int], None] | None = None,
                       source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Translate, filter, cap and write OUT (resuming from OUT/progress); returns the counts. `source` (path and
    hash of the input) goes into the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    state_file = out / "progress" / "settings.json"
    modes = {t: translator.mode_for(t) for t in settings.targets}
    decisive = {k: v for k, v in vars(settings).items() if k != "batch_size"}  # resuming may change the batch size
    model_fp = model_fingerprint(translator)
    key = fingerprint({"settings": decisive, "model": model_fp, "modes": modes,
                       "examples": [e.id for e in examples]})
    if state_file.is_file() and read_json(state_file).get("fingerprint") != key:
        raise DataError(f"{out} holds a translation made with other settings, model (weights) or input; "
                        "use another --out or pass --restart")
    write_json_atomic(state_file, {"fingerprint": key, "settings": vars(settings), "model": translator.name,
                                   "model_fingerprint": model_fp})
    counts: dict[str, Any] = {}
    audit: list[dict] = []
    for target in settings.targets:
        counts[target], rows = _translate_language(examples, translator, settings, out, target, progress)
        audit += rows
    write_text_atomic(out / "audit.jsonl", "".join(json.dumps({k: v for k, v in r.items() if k != "example"},
                                                                ensure_ascii=False) + "\n" for r in audit))
    outputs = {}
    for target in settings.targets:
        kept = [Example(**r["example"]) for r in audit if r["target_language"] == target and r["kept"]]
        path = out / "data" / f"{target}.parquet"
        import pyarrow.parquet as pq

        with atomic_path(path) as tmp:
            pq.write_table(examples_to_table(kept), tmp)
        outputs[str(path.relative_to(out))] = len(kept)
    write_manifest(out, "translate", {"fingerprint": key, "settings": vars(settings), "model": translator.name,
                                      "model_fingerprint": model_fp, "modes": modes, "examples": len(examples),
                                      "engine": getattr(translator, "engine", "hf"),
                                      "compute_type": getattr(translator, "compute_type", None),
                                      "source": source or {}},
                   outputs, counts=counts)
    return counts


def _progress_path(out: Path, target: str) -> Path:
    return out / "progress" / f"{target}.jsonl"


def _read_progress(path: Path) -> dict[str, dict]:
    """Finished rows by source id; a last line cut short by an interruption is cut off (that example is redone)."""
    return {row["source_id"]: row for row in read_jsonl_log(path) if isinstance(row, dict) and "source_id" in row}


def _translate_language(examples: list[Example], translator: Translator, settings: TranslateSettings, out: Path,
                        target: str, progress: Callable[[str, int, int], None] | None
                        ) -> tuple[dict[str, Any], list[dict]]:
    path = _progress_path(out, target)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = _read_progress(path)
    kept_per_dataset: dict[str, int] = {}
    for row in done.values():
        if row["kept"]:
            kept_per_dataset[row["dataset"]] = kept_per_dataset.get(row["dataset"], 0) + 1
    todo = [e for e in _order(examples, target, settings.seed) if e.language != target]
    total = len(todo)
    finished = sum(1 for e in todo if e.id in done)
    if progress:
        progress(target, finished, total)
    cap = settings.cap

    def full(dataset: str) -> bool:
        return cap is not None and kept_per_dataset.get(dataset, 0) >= cap

    with path.open("a", encoding="utf-8") as fh:
        queue = [e for e in todo if e.id not in done]
        while queue:
            pending = []
            planned: dict[str, int] = {}
            rest = []
            for e in queue:  # fill a batch without planning more than each dataset's remaining cap
                room = None if cap is None else cap - kept_per_dataset.get(e.dataset, 0) - planned.get(e.dataset, 0)
                if full(e.dataset):
                    continue
                if len(pending) < settings.batch_size and (room is None or room > 0):
                    pending.append(e)
                    planned[e.dataset] = planned.get(e.dataset, 0) + 1
                else:
                    rest.append(e)
            if not pending:
                break
            for row in _translate_batch(pending, translator, settings, target):
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                if row["kept"]:
                    kept_per_dataset[row["dataset"]] = kept_per_dataset.get(row["dataset"], 0) + 1
                done[row["source_id"]] = row
            fh.flush()
            queue = rest
            if progress:
                progress(target, len(pending), total)
    rows = list(done.values())
    reasons: dict[str, int] = {}
    for r in rows:
        for reason in r["reasons"]:
            reasons[reason] = reasons.get(reason, 0) + 1
    unsure = sum(any(x.endswith(("langid_unknown", "langid_short")) for x in r["reasons"]) for r in rows)
    counts = {"processed": len(rows), "kept": sum(r["kept"] for r in rows), "dropped": reasons,
              "langid_unsure": unsure,
              "kept_per_dataset": dict(sorted(kept_per_dataset.items()))}
    return counts, rows


def _translate_batch(batch: list[Example], translator: Translator, settings: TranslateSettings,
                     target: str) -> Iterable[dict]:
    src = settings.source_language
    fields = [(e, name, segment(getattr(e, name), e.language or src)) for e in batch for name in ("inputs", "targets")]
    sentences = [s for _, _, lines in fields for line in lines for s in line]
    by_source_lang: dict[str, list[int]] = {}
    k = 0
    for e, _, lines in fields:
        for line in lines:
            for _ in line:
                by_source_lang.setdefault(e.language or src, []).append(k)
                k += 1
    translated: list[tuple[str, bool]] = [("", False)] * len(sentences)
    for lang, idx in by_source_lang.items():
        for i, result in zip(idx, translator.translate([sentences[i] for i in idx], lang, target)):
            translated[i] = result
    k = 0
    per_example: dict[str, dict[str, Any]] = {}
    for e, name, lines in fields:
        out_lines, unk = [], False
        for line in lines:
            out_lines.append([translated[k + j][0] for j in range(len(line))])
            unk = unk or any(translated[k + j][1] for j in range(len(line)))
            k += len(line)
        text = join_segments(out_lines, target)
        reasons, checks = check_translation(getattr(e, name), text, target, unk, settings.langid,
                                            settings.strict_langid)
        entry = per_example.setdefault(e.id, {"example": e, "texts": {}, "reasons": [], "checks": {}})
        entry["texts"][name] = text
        entry["reasons"] += [f"{name}:{r}" for r in reasons]
        entry["checks"][name] = checks
    script = script_of(target)
    model_fp = model_fingerprint(translator)
    for e in batch:
        entry = per_example[e.id]
        _judge_together(entry, target)
        new = Example(inputs=entry["texts"]["inputs"], targets=entry["texts"]["targets"], language=target,
                      script=script, source=settings.source_name, dataset=e.dataset, task=e.task,
                      template=e.template, kind="translated", license=e.license, split=e.split,
                      id=example_id("translated", e.id, target, model_fp))
        yield {"id": new.id, "source_id": e.id, "dataset": e.dataset, "source_language": e.language or src,
               "target_language": target, "model": translator.name, "model_fingerprint": model_fp,
               "mode": translator.mode_for(target), "source": {"inputs": e.inputs, "targets": e.targets},
               "output": {"inputs": new.inputs, "targets": new.targets},
               "kept": not entry["reasons"], "reasons": entry["reasons"], "checks": entry["checks"],
               "example": new.to_dict()}


def _judge_together(entry: dict[str, Any], target: str) -> None:
    """A field too short (or unplaceable) for language ID alone is judged with the example's other field:
    when the two together are identified as the target language, the field's unsure verdict is lifted."""
    from ayakit.data import langid as lid

    unsure = [r for r in entry["reasons"] if r.split(":", 1)[1] in ("langid_unknown", "langid_short")]
    if not unsure:
        return
    together = "\n".join(t for t in entry["texts"].values() if t.strip())
    verdict = lid.verdict(together, target)
    entry["checks"]["together"] = {"langid": verdict}
    if verdict == lid.MATCH:
        entry["reasons"] = [r for r in entry["reasons"] if r not in unsure]


def translate_cmd(
    source: str = typer.Argument(..., help="Examples to translate: a JSONL / Parquet / CSV / TSV file or a folder "
                                           "of them (column inputs; optional targets, language, dataset, task, "
                                           "template, license, split, id), a .txt file (one sentence per line), "
                                           "or with --recipe the name of one of its sources."),
    model: str = typer.Option(..., "--model", help="HF translation model dir: NLLB-style (FLORES codes in its "
                                                   "vocabulary) or an instruction model."),
    to: str = typer.Option(..., "--to", help="Comma-separated target languages, any language or variety "
                                             "(swa, fr, fra_Latn, kin, zho-Hant, srp-Latn)."),
    from_: str = typer.Option("eng", "--from", help="Source language: rows without a language column are in it; "
                                                    "rows in other languages are skipped."),
    recipe: Path = typer.Option(None, "--recipe", help="Read SOURCE as the name of a source in this recipe."),
    limit: int = typer.Option(None, min=1, help="Read at most this many examples from the source."),
    out: Path = typer.Option(..., "--out", help="Output folder (data/<lang>.parquet, audit.jsonl, manifest.json)."),
    cap: int = typer.Option(None, min=1, help="Most kept examples per (dataset, target language); the paper: 3000."),
    mode: str = typer.Option("auto", help="auto (FLORES codes when the vocabulary has them), nllb or prompt."),
    batch_size: int = typer.Option(16, min=1, help="Examples per translation batch (their sentences go together)."),
    max_new_tokens: int = typer.Option(256, min=1, help="Longest translation of one sentence, in tokens."),
    langid: bool = typer.Option(True, help="Drop outputs the language-ID check says are another language."),
    strict_langid: bool = typer.Option(True, help="Also drop outputs the language-ID check cannot place "
                                                  "(unknown, or too short to tell even with the example's other "
                                                  "field); --no-strict-langid keeps them. Counted and printed."),
    source_name: str = typer.Option("translated", help="The `source` field of the output examples."),
    seed: int = typer.Option(0, help="Seed of the per-language sample order."),
    restart: bool = typer.Option(False, help="Discard the progress in --out and start over."),
    device: str = typer.Option(None, help="torch device (default: cuda when present, else cpu)."),
    engine: str = typer.Option("hf", "--engine",
                               help="hf (transformers) or ctranslate2 (CTranslate2: converted once, cached in "
                                    "<model>/.ct2; float32 gives hf's greedy translations, faster). The output's "
                                    "ids and resume state are per engine unless hf."),
    compute_type: str = typer.Option(None, "--compute-type",
                                     help="ctranslate2 only: float32 or int8 on CPU; float16, int8_float16 or "
                                          "float32 on GPU (default: float32 on CPU, float16 on GPU)."),
) -> None:
    """Translate a source into other languages, sentence by sentence, with filters, caps and an audit trail."""
    import shutil

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from ayakit.models import check_engine

    check_engine(engine, compute_type)  # before the source is read
    src = L.tag(from_)
    targets = list(dict.fromkeys(L.tag(c.strip()) for c in to.split(",") if c.strip()))
    if not targets:
        raise DataError("--to names no language")
    if recipe is not None:
        examples = read_recipe_source(recipe, source, limit)
        origin = {**input_fingerprint(recipe), "source_name": source}
    else:
        if not Path(source).exists():
            raise FileNotFoundError(f"{source} does not exist")
        examples = read_examples(Path(source), src, limit=limit)
        origin = input_fingerprint(Path(source))
    console = Console()
    other = sum(not L.matches(from_, e.language) for e in examples)
    examples = [e for e in examples if L.matches(from_, e.language)]
    if other:
        console.print(f"skipping {other} examples not in {src} (--from)")
    if not examples:
        raise DataError(f"{source}: no examples in {src} to translate")
    if restart and (out / "progress").exists():
        shutil.rmtree(out / "progress")
    translator = HFTranslator(model, mode=mode, max_new_tokens=max_new_tokens, device=device, engine=engine,
                              compute_type=compute_type)
    settings = TranslateSettings(targets=targets, source_language=src, cap=cap, langid=langid,
                                 strict_langid=strict_langid, seed=seed, batch_size=batch_size,
                                 source_name=source_name)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns) as bar:
        tasks: dict[str, Any] = {}

        def tick(target: str, n: int, total: int) -> None:
            if target not in tasks:
                tasks[target] = bar.add_task(f"{src} -> {target}", total=total)
            bar.advance(tasks[target], n)

        counts = translate_examples(examples, translator, settings, out, tick, source=origin)
    table = Table(title=f"{len(examples)} examples from {source} translated with {translator.name}")
    for col in ("language", "mode", "processed", "kept", "dropped (reason: n)"):
        table.add_column(col)
    for lang, c in counts.items():
        table.add_row(lang, translator.mode_for(lang), str(c["processed"]), str(c["kept"]),
                      ", ".join(f"{k}: {v}" for k, v in sorted(c["dropped"].items())) or "-")
    console.print(table)
    unsure = {lang: c["langid_unsure"] for lang, c in counts.items() if c["langid_unsure"]}
    if unsure and strict_langid:
        console.print("examples dropped (among other reasons) because language ID could not place an output "
                      "(unknown / too short): " + ", ".join(f"{lang} {n}" for lang, n in unsure.items())
                      + "; --no-strict-langid keeps them")
