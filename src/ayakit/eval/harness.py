"""Run tasks against a backend: cached per (model, task, prompt, item), scored per language, tier and task.

Aggregation (the paper's protocol): a (task, language, prompt) score is the metric over the language's items; a
language's score is the median over prompts; a task's score is the median over prompts of the mean over languages.
Confidence intervals are a bootstrap over items within each language (deterministic seed); task and tier intervals
reuse the per-language resamples (a hierarchical bootstrap), so they cost nothing extra.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import statistics
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.eval.metrics import get_metric, spbleu_unavailable_reason
from ayakit.eval.tasks import Task, chance, resolve, selection
from ayakit.eval.tasks.loaders import Context, MissingData
from ayakit.io import file_sha256, fingerprint, write_json_atomic, write_manifest, write_text_atomic
from ayakit.models import Backend, GenerationParams, LogLik, engine_label, load_backend
from ayakit.models.backend import backend_name, model_fingerprint
from ayakit.records import EvalItem

NORMALIZATIONS = ("none", "token", "byte")
TIERS = L.TIERS  # high, mid, low, unlisted
N_RESAMPLES = 1000  # for mean metrics (vectorised)
N_RESAMPLES_CORPUS = 200  # for corpus metrics (chrF++, spBLEU): one sacrebleu score per resample

Progress = Callable[[str, int, int], None]


# --- cache -----------------------------------------------------------------------------------------------------


class ResultCache:
    """SQLite key -> JSON value, committed after every chunk: an interrupted run resumes where it stopped."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self.db.commit()

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """Cached values of these keys."""
        out = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            rows = self.db.execute(f"SELECT key, value FROM results WHERE key IN ({','.join('?' * len(part))})", part)
            out.update({k: json.loads(v) for k, v in rows})
        return out

    def put_many(self, values: dict[str, Any]) -> None:
        """Store and commit."""
        self.db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?)",
                            [(k, json.dumps(v, ensure_ascii=False)) for k, v in values.items()])
        self.db.commit()

    def close(self) -> None:
        """Close the database."""
        self.db.close()


def item_key(model_fp: str, item: EvalItem, extra: Any = None) -> str:
    """The cache key of one item under one prompt: model, task, prompt, item and exactly what is sent."""
    return fingerprint([model_fp, item.task, item.prompt_id, item.id, item.inputs, item.choices,
                        item.meta.get("contexts"), extra])


# --- scoring ------------------------------------------------------------------------------------------------------


def _requests(item: EvalItem) -> list[tuple[str, list[str]]]:
    contexts = item.meta.get("contexts")
    if contexts:
        return [(ctx, [choice]) for ctx, choice in zip(contexts, item.choices or [])]
    return [(item.inputs, list(item.choices or []))]


def normalized(ll: dict, normalization: str) -> float:
    """A choice's score: log-likelihood, per token, or per UTF-8 byte (never per character)."""
    if normalization == "token":
        return ll["logprob"] / max(1, ll["n_tokens"])
    if normalization == "byte":
        return ll["logprob"] / max(1, ll["n_bytes"])
    return ll["logprob"]


def _batches(todo: list[int], items: list[EvalItem], rows: int) -> list[list[int]]:
    """Consecutive items holding about `rows` scored rows (choices) each: one backend call, one progress step."""
    out, part, n = [], [], 0
    for i in todo:
        part.append(i)
        n += max(1, len(items[i].choices or []))
        if n >= rows:
            out.append(part)
            part, n = [], 0
    return out + ([part] if part else [])


def _run_choice(backend: Backend, items: list[EvalItem], keys: list[str], cache: ResultCache,
                progress: Progress | None, name: str, batch: int = 32) -> dict[str, Any]:
    """Items are scored in batches of about `batch` rows; each batch is committed to the cache and moves the bar."""
    done = cache.get_many(keys)
    todo = [i for i, k in enumerate(keys) if k not in done]
    count = len(keys) - len(todo)
    if progress:
        progress(name, count, len(keys))
    for part in _batches(todo, items, batch):
        reqs, spans = [], []
        for i in part:
            r = _requests(items[i])
            spans.append((len(reqs), len(r)))
            reqs.extend(r)
        lls = backend.loglikelihood(reqs)
        fresh = {}
        for i, (s, n) in zip(part, spans):
            flat: list[LogLik] = [ll for row in lls[s:s + n] for ll in row]
            fresh[keys[i]] = [{"logprob": ll.logprob, "n_tokens": ll.n_tokens, "n_bytes": ll.n_bytes,
                               "is_greedy": ll.is_greedy} for ll in flat]
        cache.put_many(fresh)
        done.update(fresh)
        count += len(part)
        if progress:
            progress(name, count, len(keys))
    return done


def _run_generation(backend: Backend, items: list[EvalItem], keys: list[str], params: GenerationParams,
                    cache: ResultCache, progress: Progress | None, name: str, batch: int) -> dict[str, Any]:
    """Chunks of one batch are fixed over the whole item list and committed whole, each sampled with its own seed: a
    resumed run regenerates exactly the missing chunks, with the same prompts and seeds, so sampled outputs are
    identical; the bar moves per batch."""
    done = cache.get_many(keys)
    step = max(1, batch)
    count = sum(k in done for k in keys)
    if progress:
        progress(name, count, len(keys))
    for chunk, start in enumerate(range(0, len(keys), step)):
        part = [i for i in range(start, min(start + step, len(keys)))]
        if all(keys[i] in done for i in part):
            continue
        outs = backend.generate([items[i].inputs for i in part], replace(params, seed=params.seed + chunk))
        fresh = {keys[i]: out for i, out in zip(part, outs) if keys[i] not in done}
        cache.put_many(fresh)
        done.update(fresh)
        count += len(fresh)
        if progress:
            progress(name, count, len(keys))
    return done


# --- aggregation --------------------------------------------------------------------------------------------------


def _ci(draws: np.ndarray) -> list[float]:
    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return [float("nan"), float("nan")]
    lo, hi = np.quantile(finite, [0.025, 0.975])
    return [round(float(lo), 4), round(float(hi), 4)]


def _language_scores(metric: Any, stats: dict[str, np.ndarray], seed: int) -> tuple[dict[str, float], np.ndarray]:
    """Per-prompt scores and bootstrap draws (n_resamples x n_prompts) of one language."""
    by_prompt, draws = {}, []
    rng = np.random.default_rng(seed)
    for pid, s in stats.items():
        by_prompt[pid] = metric.aggregate(s)
        if getattr(metric, "fn", None) is not None:  # a mean metric: vectorised
            idx = rng.integers(0, len(s), size=(N_RESAMPLES, len(s)))
            draws.append(s[:, 0][idx].mean(axis=1) * 100)
        else:
            idx = rng.integers(0, len(s), size=(N_RESAMPLES_CORPUS, len(s)))
            draws.append(np.array([metric.aggregate(s[row]) for row in idx]))
    return by_prompt, np.stack(draws, axis=1)


def _r(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def aggregate_task(task: Task, items: list[EvalItem], rows: list[dict], metric_name: str, seed: int,
                   rollup: bool = False) -> dict:
    """Scores of one metric of a task: per language variety (per paper row with rollup), per tier and overall, with
    bootstrap intervals."""
    metric = get_metric(metric_name)
    stats: dict[str, dict[str, list[list[float]]]] = {}
    for item, row in zip(items, rows):
        lang = L.rollup(item.language) if rollup else item.language
        stats.setdefault(lang, {}).setdefault(item.prompt_id, []).append(row["stats"][metric_name])
    prompts = sorted({it.prompt_id for it in items}, key=[it.prompt_id for it in items].index)
    by_language, draws_by_lang, prompt_scores = {}, {}, {}
    for lang in sorted(stats):
        arrays = {pid: np.array(stats[lang][pid], dtype=float) for pid in prompts if pid in stats[lang]}
        by_prompt, draws = _language_scores(metric, arrays, seed)
        prompt_scores[lang], draws_by_lang[lang] = by_prompt, draws
        by_language[lang] = {"score": _r(statistics.median(by_prompt.values())), "ci": _ci(np.median(draws, axis=1)),
                             "n": len(next(iter(arrays.values()))), "tier": L.tier(lang),
                             "unseen_language": L.tier(lang) == "unlisted",
                             "by_prompt": {p: _r(v) for p, v in by_prompt.items()}}

    def combine(langs: list[str]) -> tuple[float | None, list[float]]:
        if not langs:
            return None, [float("nan"), float("nan")]
        per_prompt = [np.mean([prompt_scores[lang][p] for lang in langs]) for p in prompts
                      if all(p in prompt_scores[lang] for lang in langs)]
        draws = np.stack([draws_by_lang[lang] for lang in langs])  # langs x resamples x prompts
        return _r(float(np.median(per_prompt))) if per_prompt else None, _ci(np.median(draws.mean(axis=0), axis=1))

    score, ci = combine(list(by_language))
    by_tier = {}
    for tier in TIERS:
        langs = [lang for lang, v in by_language.items() if v["tier"] == tier]
        if langs:
            s, c = combine(langs)
            by_tier[tier] = {"score": s, "ci": c, "n_languages": len(langs)}
    return {"score": score, "ci": ci, "by_language": by_language, "by_tier": by_tier}


def _item_rows(task: Task, items: list[EvalItem], keys: list[str], results: dict[str, Any], normalization: str,
               metrics: list[str]) -> list[dict]:
    rows = []
    scorers = {m: get_metric(m) for m in metrics}
    for item, key in zip(items, keys):
        value = results[key]
        row: dict[str, Any] = {"id": item.id, "language": item.language, "prompt_id": item.prompt_id}
        if task.kind == "choice":
            scores = [normalized(ll, normalization) for ll in value]
            pred = int(np.argmax(scores))
            row.update(prediction=pred, prediction_text=item.choices[pred], gold=item.gold,
                       correct=pred == item.gold, loglikelihoods=[ll["logprob"] for ll in value],
                       n_tokens=[ll["n_tokens"] for ll in value], n_bytes=[ll["n_bytes"] for ll in value],
                       normalized=scores)
            prediction = item.choices[pred]
        else:
            row.update(prediction=value, gold=item.targets)
            prediction = value
        row["stats"] = {m: s.item_stats(prediction, item.targets, item.language) for m, s in scorers.items()}
        first = scorers[metrics[0]]
        row["score"] = _r(first.aggregate(np.array([row["stats"][metrics[0]]])))
        rows.append(row)
    return rows


# --- the entry point ------------------------------------------------------------------------------------------


def _generation_params(task: Task, seed: int, greedy: bool | None, temperature: float | None,
                       max_new_tokens: int | None) -> GenerationParams:
    """A task's decoding settings with the run's overrides: --greedy, --temperature, --max-new-tokens (a cap)."""
    is_greedy = task.greedy if greedy is None else greedy
    temp = task.temperature if temperature is None else temperature
    if temperature is not None and greedy is None:
        is_greedy = temperature == 0
    cap = task.max_new_tokens if max_new_tokens is None else min(task.max_new_tokens, max_new_tokens)
    if is_greedy or temp == 0:
        return GenerationParams(max_new_tokens=cap, stop=list(task.stop), seed=seed)
    return GenerationParams(max_new_tokens=cap, temperature=temp, top_p=task.top_p, stop=list(task.stop), seed=seed)


@functools.lru_cache(maxsize=4096)
def _sha256_of(path: str, mtime: float, size: int) -> str:
    return file_sha256(path)


def _sha256(path: Path) -> str:
    st = path.stat()
    return _sha256_of(str(path), st.st_mtime, st.st_size)


def _absent(task: str, sel: Any, items: list[EvalItem]) -> list[str]:
    """Notes for languages asked for by name that the task has no data for."""
    if sel is None or sel.every:
        return []
    present = {it.language for it in items}
    out = []
    for want in [*sel.tags, *sel.bare]:
        probe = type(sel)(tags=(want,)) if "-" in want else type(sel)(bare=(want,))
        if not any(probe.wants(t) for t in present):
            out.append(f"{task}: no data for {want} (asked for with -l)")
    return out


def evaluate(model: str | Backend, out_dir: Path, suite: str | None = "aya-mini", tasks: list[str] | None = None,
             languages: list[str] | None = None, prompts: int = 5, max_items: int | None = None,
             batch_size: int = 32, normalization: str = "none", num_fewshot: int = 0,
             data_dir: Path | None = None, seed: int = 0, progress: Progress | None = None,
             max_new_tokens: int | None = None, task_dir: Path | None = None, greedy: bool | None = None,
             temperature: float | None = None, rollup: bool = False,
             prompt_ids: list[str] | None = None, engine: str = "hf", compute_type: str | None = None) -> dict:
    """Evaluate a model (a path, hub id, URL or Backend) and write <task>.jsonl, summary.json and a manifest.

    tasks: names or task-file paths; task_dir: every task file of a folder. languages: codes or tags (a bare code
    matches every variety of the language, `all` every variety in the data). A task whose data is missing is
    skipped and recorded; a DataError is raised only when nothing ran. max_new_tokens caps every generation task;
    greedy / temperature override the tasks' decoding. rollup merges varieties into the paper's 101 rows.
    prompt_ids picks prompts by id (a task without them keeps its defaults); with a backend whose convention is
    lm-eval, the tasks' `lm-eval` prompts and lm-eval's splits are used. engine / compute_type pick the engine of
    a local model given by path (ayakit.models.ENGINES); results are cached per engine.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    out_dir = Path(out_dir)
    sel = selection(languages)
    if data_dir is None and os.environ.get("AYAKIT_DATA_DIR"):
        data_dir = Path(os.environ["AYAKIT_DATA_DIR"])
    chosen, suite_shots = resolve(suite, tasks, sel, prompts, max_items, seed, task_dir)
    backend = load_backend(model, engine=engine, batch_size=batch_size, compute_type=compute_type) \
        if isinstance(model, str) else model
    describe = getattr(backend, "describe", None)
    convention = (describe() if callable(describe) else {}).get("convention") or getattr(backend, "convention",
                                                                                       "ayakit")
    if convention == "lm-eval" and not prompt_ids:
        prompt_ids = ["lm-eval"]
    model_fp = model_fingerprint(backend)
    name = model if isinstance(model, str) else backend_name(backend)
    notes: list[str] = []
    skipped: list[dict[str, str]] = []
    data_files: dict[str, str] = {}
    custom = bool(tasks or task_dir)
    summary: dict[str, Any] = {"model": str(name), "fingerprint": model_fp, "suite": "custom" if custom else suite,
                               "tasks_run": [], "skipped": skipped, "languages": sel.asked() if sel else "default",
                               "rollup": rollup, "normalization": normalization, "scale": "0-100", "tasks": {},
                               "by_tier": {}, "notes": notes, "engine": engine_label(backend)}
    if rollup:
        notes.append("--rollup: language varieties merged into the paper's 101 rows (zho-Hans, zho-Hant and yue-Hant "
                     "-> zho; srp-Cyrl and srp-Latn -> srp; ckb and kmr -> kur; prs -> pes; nno and nob -> nor; "
                     "regional variants -> their language)")
    outputs = {}
    with closing(ResultCache(out_dir / "cache" / "results.sqlite")) as cache:
        for task in chosen:
            k = suite_shots.get(task.name, num_fewshot)
            ctx = Context()
            ids = None
            if prompt_ids and task.spec is not None and isinstance(task.spec.prompts, str):
                from ayakit.eval.tasks.prompts import load_prompts

                known = {p.id for p in load_prompts(task.spec.prompts).prompts}
                ids = [i for i in prompt_ids if i in known] or None
            try:
                items, task_notes = task.items(sel, prompts, max_items, k, data_dir, seed, prompt_ids=ids, ctx=ctx,
                                               convention=convention)
            except MissingData as exc:
                skipped.append({"task": task.name, "reason": str(exc)})
                notes.append(f"{task.name}: skipped: {exc}")
                continue
            for path in sorted(ctx.files):
                data_files[str(path)] = _sha256(Path(path))
            notes.extend(n for n in task_notes if n not in notes)
            notes.extend(_absent(task.name, sel, items))
            if not items:
                reason = f"no items in the requested languages ({', '.join(sel.asked()) if sel else 'default'})"
                skipped.append({"task": task.name, "reason": reason})
                notes.append(f"{task.name}: skipped: {reason}")
                continue
            metrics = [task.metric]
            for extra in task.extra_metrics:
                if extra == "spbleu" and (why := spbleu_unavailable_reason()):
                    if why not in notes:
                        notes.append(why)
                    continue
                metrics.append(extra)
            gen = None
            if task.kind == "choice":
                keys = [item_key(model_fp, it) for it in items]
                results = _run_choice(backend, items, keys, cache, progress, task.name, batch_size)
            else:
                gen = _generation_params(task, seed, greedy, temperature, max_new_tokens)
                keys = [item_key(model_fp, it, vars(gen)) for it in items]
                results = _run_generation(backend, items, keys, gen, cache, progress, task.name, batch_size)
            rows = _item_rows(task, items, keys, results, normalization, metrics)
            path = out_dir / f"{task.name}.jsonl"
            write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            outputs[path.name] = len(rows)
            main = aggregate_task(task, items, rows, task.metric, seed, rollup)
            entry = {"metric": task.metric, "kind": task.kind, "unseen_task": task.unseen_task,
                     "description": task.description, "score": main["score"], "ci": main["ci"],
                     "chance": _r(chance(items)) if task.kind == "choice" else None,
                     "n_items": len({it.id for it in items}), "n_prompts": len({it.prompt_id for it in items}),
                     "prompts": sorted({it.prompt_id for it in items}),
                     "num_fewshot": k, "by_language": main["by_language"], "by_tier": main["by_tier"],
                     "unseen_languages": sorted(lang for lang, v in main["by_language"].items()
                                                if v["unseen_language"])}
            if gen is not None:
                entry["generation"] = {"greedy": gen.temperature == 0, "temperature": gen.temperature,
                                       "top_p": gen.top_p, "max_new_tokens": gen.max_new_tokens, "stop": gen.stop}
            extra = {m: aggregate_task(task, items, rows, m, seed, rollup) for m in metrics[1:]}
            if extra:
                entry["extra_metrics"] = {m: {"score": v["score"], "ci": v["ci"], "by_tier": v["by_tier"]}
                                          for m, v in extra.items()}
            summary["tasks"][task.name] = entry
            summary["tasks_run"].append(task.name)
    if not summary["tasks"]:
        raise DataError("nothing was evaluated: " + "; ".join(f"{s['task']}: {s['reason']}" for s in skipped))
    summary["by_tier"] = tier_summary(summary["tasks"])
    summary["groups"] = {group: tier_summary({n: t for n, t in summary["tasks"].items() if t["unseen_task"] == flag})
                         for group, flag in (("unseen_tasks", True), ("seen_tasks", False))}
    summary["data_files"] = data_files
    write_json_atomic(out_dir / "summary.json", summary)
    write_manifest(out_dir, "eval", inputs={"model": model_fp, "suite": summary["suite"],
                                            "tasks": [t.name for t in chosen], "tasks_run": summary["tasks_run"],
                                            "skipped": skipped, "languages": summary["languages"], "rollup": rollup,
                                            "prompts": prompts, "prompt_ids": prompt_ids, "max_items": max_items,
                                            "normalization": normalization, "num_fewshot": num_fewshot,
                                            "seed": seed, "max_new_tokens": max_new_tokens, "greedy": greedy,
                                            "temperature": temperature, "engine": summary["engine"],
                                            "data_dir": str(data_dir) if data_dir else None,
                                            "data_files": data_files},
                   outputs={"summary.json": len(summary["tasks"]), **outputs})
    return summary


def tier_summary(tasks: dict[str, dict]) -> dict[str, dict]:
    """Per tier: the mean over tasks of the task's tier score, and how many tasks have that tier."""
    out = {}
    for tier in TIERS:
        scores = [t["by_tier"][tier]["score"] for t in tasks.values()
                  if tier in t["by_tier"] and t["by_tier"][tier]["score"] is not None]
        if scores:
            out[tier] = {"score": round(float(np.mean(scores)), 4), "n_tasks": len(scores)}
    return out
