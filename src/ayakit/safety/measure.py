"""One harm or toxicity measurement of a model, recorded in a safety folder's summary.json: what `ayakit safety
harm | toxicity` and the `safety-eval` stages of `ayakit run` both do."""

from __future__ import annotations

import re
from pathlib import Path

from ayakit.models import Backend, load_backend
from ayakit.recipe import HarmConfig, Sampling, ToxicityConfig
from ayakit.safety.harm import LLMJudge, RefusalDetector, evaluate_harm
from ayakit.safety.sampling import Progress
from ayakit.safety.summary import update_summary
from ayakit.safety.xsafety import HarmPrompt


def slug(label: str) -> str:
    """A folder name for a model label."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "model"


def harm_classifier(cfg: HarmConfig) -> RefusalDetector | LLMJudge:
    """The recipe's harm classifier: the offline refusal detector, or an LLM judge (URL or local model)."""
    if cfg.classifier == "refusal":
        return RefusalDetector()
    return LLMJudge(load_backend(cfg.judge, model=cfg.judge_model, chat=True), cfg.judge)


def measure_harm(backend: Backend, prompts: list[HarmPrompt], split: dict, cfg: HarmConfig, sampling: Sampling,
                 safety_dir: str | Path, label: str, preamble: bool = False,
                 progress: Progress | None = None) -> dict:
    """Harmful rate and over-refusal of one model on the split's test prompts, into safety_dir (summary.json and
    harm/<label>/)."""
    safety_dir = Path(safety_dir)
    result = evaluate_harm(backend, prompts, cfg, sampling, safety_dir / "harm" / slug(label), harm_classifier(cfg),
                           label, preamble=preamble, progress=progress)
    result["split"] = split
    update_summary(safety_dir, ["models", label, "harm"], result)
    return result


def measure_toxicity(backend: Backend, cfg: ToxicityConfig, sampling: Sampling, data_dir: Path | None,
                     safety_dir: str | Path, label: str, preamble: bool = False, progress: Progress | None = None,
                     **scorer_options) -> dict:
    """Toxicity of one model's continuations with the recipe's scorer, into safety_dir (summary.json and
    toxicity/<label>/)."""
    from ayakit.safety.scorers import load_scorer
    from ayakit.safety.toxicity import run_toxicity

    scorer = load_scorer(cfg.scorer, data_dir, cfg.classifier, **scorer_options)
    safety_dir = Path(safety_dir)
    result = run_toxicity(backend, scorer, cfg, sampling, safety_dir / "toxicity" / slug(label), data_dir, label,
                          preamble=preamble, progress=progress)
    update_summary(safety_dir, ["models", label, "toxicity", result["prompt_set"]], result)
    return result
