"""Toxicity of open-ended generations (the RealToxicityPrompts protocol): k samples per prompt, EMT, P(toxic)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.models import Backend
from ayakit.io import atomic_path, write_json_atomic, write_manifest
from ayakit.recipe import Sampling, ToxicityConfig
from ayakit.safety import bias
from ayakit.safety.metrics import toxicity_summary
from ayakit.safety.prompts import Prompt, embedded_prompts, flores_prompts
from ayakit.safety.sampling import Progress, params as sampling_params, sample
from ayakit.safety.scorers import TOXIC_THRESHOLD, Scorer, describe

PROMPT_SETS = ("flores", "identity", "holistic")


def build_prompts(cfg: ToxicityConfig, scorer: Scorer, data_dir: Path | None, seed: int) -> tuple[
        str, list[Prompt], list[str]]:
    """(set name actually used, prompts, languages the set has no prompts for)."""
    if cfg.prompt_set == "flores":
        langs = cfg.languages or sorted(c for c in (x.code for x in L.languages()) if scorer.covers(c))
        if data_dir is not None and (Path(data_dir) / "sib200").is_dir():
            prompts, absent = flores_prompts(data_dir, langs, cfg.per_language, seed)
            return "flores", prompts, absent
        prompts, absent = embedded_prompts(langs, cfg.per_language, seed)
        return "embedded", prompts, absent
    if cfg.prompt_set == "identity":
        prompts, absent = bias.identity_prompts(cfg.languages)
        return "identity", prompts, absent
    if cfg.prompt_set == "holistic":
        if data_dir is None:
            raise DataError("the holistic prompts read <data_dir>/holistic_bias: give --data-dir or set AYAKIT_DATA_DIR")
        return "holistic", bias.holistic_prompts(data_dir, cfg.per_language, seed), []
    raise DataError(f"unknown prompt set {cfg.prompt_set!r}; choose one of {', '.join(PROMPT_SETS)}")


def run_toxicity(backend: Backend, scorer: Scorer, cfg: ToxicityConfig, sampling: Sampling, out_dir: str | Path,
                 data_dir: str | Path | None = None, model: str = "model", preamble: bool = False,
                 progress: Progress | None = None) -> dict:
    """Generate, score and summarise; writes generations.jsonl, results.json and a manifest into out_dir/<set>.

    The set is the one actually used: flores falls back to embedded sentences without the public data.
    preamble: prepend the safety preamble (the paper saw it raise toxicity on identity prompts).
    """
    set_name, prompts, absent = build_prompts(cfg, scorer, Path(data_dir) if data_dir else None, sampling.seed)
    languages: dict[str, dict] = {code: {"covered": False, "reason": "no prompts in this language"} for code in absent}
    by_lang: dict[str, list[Prompt]] = defaultdict(list)
    for p in prompts:
        by_lang[p.language].append(p)
    scored: list[Prompt] = []
    dropped: dict[str, int] = {}
    for code, items in sorted(by_lang.items()):
        if not scorer.covers(code):
            languages[code] = {"covered": False, "reason": f"the {scorer.name} scorer does not cover {code}"}
            continue
        if cfg.filter_toxic_prompts:  # the paper drops prompts that are already toxic
            flags = scorer.score([p.text for p in items], code)
            kept = [p for p, s in zip(items, flags, strict=True) if s <= TOXIC_THRESHOLD]
            dropped[code] = len(items) - len(kept)
            items = kept
        scored += items
    texts = [p.text for p in scored]
    if preamble:
        from ayakit.safety.distill import with_preamble

        texts = [with_preamble(p.text, p.language) or p.text for p in scored]
    samples = sample(backend, texts, cfg.samples, sampling_params(sampling, cfg.max_new_tokens),
                     description=f"toxicity: {set_name}", progress=progress)
    scores: list[list[float]] = [[] for _ in scored]
    idx_by_lang: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(scored):
        idx_by_lang[p.language].append(i)
    for code, idxs in idx_by_lang.items():
        flat = [t for i in idxs for t in samples[i]]
        values = scorer.score(flat, code)
        for n, i in enumerate(idxs):
            scores[i] = values[n * cfg.samples:(n + 1) * cfg.samples]
    for code, idxs in sorted(idx_by_lang.items()):
        languages[code] = {"covered": True, **toxicity_summary([scores[i] for i in idxs], sampling.seed),
                           "dropped_toxic_prompts": dropped.get(code, 0)}
    for code, n in dropped.items():
        if code not in idx_by_lang:
            languages[code] = {"covered": True, "prompts": 0, "dropped_toxic_prompts": n,
                               "reason": "every prompt was already toxic"}
    groups: dict[str, dict] = {}
    if set_name in ("identity", "holistic"):
        for code, idxs in sorted(idx_by_lang.items()):
            by_group: dict[str, list[int]] = defaultdict(list)
            for i in idxs:
                by_group[scored[i].group].append(i)
            texts = {g: [t for i in ii for t in samples[i]] for g, ii in by_group.items()}
            prompt_texts = {g: [scored[i].text for i in ii] for g, ii in by_group.items()}
            top = bias.top_words(texts, prompt_texts)
            groups[code] = {g: {**toxicity_summary([scores[i] for i in ii], sampling.seed),
                                "top_words": [list(x) for x in top[g]]}
                            for g, ii in sorted(by_group.items())}
    result = {
        "prompt_set": set_name,
        "scorer": describe(scorer),
        "samples_per_prompt": cfg.samples,
        "preamble": preamble,
        "generation": {"max_new_tokens": cfg.max_new_tokens, **sampling.model_dump()},
        "languages": dict(sorted(languages.items())),
    }
    if groups:
        result["groups"] = groups
    dest = Path(out_dir) / set_name
    dest.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest / "generations.jsonl") as tmp, tmp.open("w", encoding="utf-8") as fh:
        for i, p in enumerate(scored):
            for s, (text, score) in enumerate(zip(samples[i], scores[i], strict=True)):
                fh.write(json.dumps({"id": p.id, "language": p.language, "group": p.group, "prompt": p.text,
                                     "sample": s, "text": text, "score": score}, ensure_ascii=False) + "\n")
    write_json_atomic(dest / "results.json", result)
    write_manifest(dest, "safety-toxicity", {"model": model, "config": cfg.model_dump(), "sampling": sampling.model_dump(),
                                                 "preamble": preamble, "scorer": describe(scorer)},
                   {"generations": "generations.jsonl", "results": "results.json"},
                   counts={"prompts": len(scored), "generations": sum(len(s) for s in samples)})
    return result
