"""The safety stages of `ayakit run` (runner.py's stage table names them): the run's XSafety split, harm and
toxicity of the trained model, and with `safety.distill` on, the paper's mitigation loop: the teacher answers the
training split with the safety preamble, the filtered answers become a `safety` source of a second training of the
same recipe (run_dir/safe/: data, model, eval), and that model is measured again.

Layout: run_dir/safety/{split/, trained/, distill/, safe/ (stage manifests), harm/<model>/, toxicity/<model>/,
summary.json}; run_dir/safe/{recipe.yaml, data/, tokenizer/ (the first training's), model/, eval/trained/}.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ayakit.errors import DataError
from ayakit.io import file_sha256, fingerprint, write_manifest, write_text_atomic
from ayakit.recipe import Recipe, recipe_from_dict

if TYPE_CHECKING:
    from ayakit.runner import RunContext

SAFE_DIR = "safe"  # the second training: run_dir/safe/{data, tokenizer, model, eval}
TRAINED, SAFE = "trained", "safe"  # model labels in safety/summary.json (as eval/<model-id>)
DISTILL_OUT = "safety/distill"


def enabled(recipe: Recipe) -> bool:
    """Whether the run measures safety."""
    return recipe.safety.enabled


def distilling(recipe: Recipe) -> bool:
    """Whether the run distills a safety source and trains a second model with it."""
    return recipe.safety.enabled and recipe.safety.distill.enabled


def _data_dir(recipe: Recipe) -> Path:
    data = recipe.resolved_data_dir()
    if data is None or not (data / "xsafety").is_dir():
        raise DataError(f"safety reads <data_dir>/xsafety (found none at {data}): set the recipe's data_dir, "
                        "--data-dir or $AYAKIT_DATA_DIR, or turn the stages off with safety.enabled=false")
    return data


def _measure_settings(r: Recipe) -> dict[str, Any]:
    s = r.safety
    return {"harm": s.harm.model_dump(), "toxicity": s.toxicity.model_dump(), "sampling": s.sampling.model_dump(),
            "languages": s.languages, "categories": s.categories, "batch_size": s.batch_size}


def _distilled_sources(r: Recipe) -> list[dict]:
    return [s.model_dump() for s in r.data.sources]


# ----------------------------------------------------------------------------------------------------- inputs


def split_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    """The split depends on its seed and fraction, the XSafety files, and a split a recipe source was distilled
    with."""
    from ayakit.safety.split import distilled_split

    data = r.resolved_data_dir()
    files = sorted((data / "xsafety").rglob("*.*")) if data and (data / "xsafety").is_dir() else []
    required = distilled_split(_distilled_sources(r))
    return {"seed": r.safety.sampling.seed, "test_fraction": r.safety.test_fraction,
            "xsafety": fingerprint({str(p.relative_to(data)): p.stat().st_size for p in files}),
            "required": file_sha256(required) if required and required.is_file() else None}


def eval_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    """Harm and toxicity of the trained model."""
    return {**_measure_settings(r), "split": up["safety-split"], "model": up["train"], "data_dir": str(
        r.resolved_data_dir())}


def distill_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    """The teacher's answers: the distill settings, the sampling, the split and the teacher."""
    s = r.safety
    teacher = up["train"] if s.distill.teacher is None else s.distill.teacher
    return {"distill": s.distill.model_dump(exclude={"enabled", "share"}), "sampling": s.sampling.model_dump(),
            "languages": s.languages, "categories": s.categories, "split": up["safety-split"], "teacher": teacher,
            "batch_size": s.batch_size}


def safe_recipe(r: Recipe, run_dir: Path) -> Recipe:
    """The same recipe plus the distilled `safety` source, weighted to safety.distill.share of the total weight."""
    d = r.safety.distill
    data = r.model_dump(mode="json")
    others = sum(s["weight"] for s in data["data"]["sources"])
    weight = round(d.share / (1 - d.share) * others, 6)
    data["data"]["sources"].append({"name": d.source_name, "type": "files", "kind": "safety",
                                    "path": str((Path(run_dir) / DISTILL_OUT / "safety.parquet").resolve()),
                                    "license": _xsafety_license(), "weight": weight})
    data["description"] = (f"{r.description} + distilled safety source at {d.share:.1%} of the weight").strip()
    data["safety"]["enabled"] = False  # the second training is measured by this run's stages
    return recipe_from_dict(data, where=f"{r.name} (with the distilled safety source)")


def _xsafety_license() -> str:
    from ayakit.safety.xsafety import xsafety_facts

    return xsafety_facts()["license"]


def safe_data_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    """The second mixture: the data inputs of the recipe with the safety source, and the distilled set."""
    from ayakit.runner import _data_inputs

    return {**_data_inputs(safe_recipe(r, run_dir), up, run_dir), "distill": up["distill"],
            "tokenizer": up["tokenizer"]}


def safe_train_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    """The second training: the train inputs on the second mixture and the first training's tokenizer."""
    from ayakit.runner import _train_inputs

    # the second mixture's token shards are made by the training itself, from that mixture: it decides them
    return _train_inputs(safe_recipe(r, run_dir), {"data": up["safe-data"], "tokenizer": up["tokenizer"],
                                                   "tokenize": up["safe-data"]}, run_dir)


def safe_eval_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    """The general evaluation of the second model: the recipe's eval settings on it."""
    from ayakit.runner import _eval_inputs

    return _eval_inputs(r, {"train": up["safe-train"]}, run_dir)


def safe_safety_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    """Harm and toxicity of the second model."""
    return {**_measure_settings(r), "split": up["safety-split"], "model": up["safe-train"],
            "data_dir": str(r.resolved_data_dir())}


# ------------------------------------------------------------------------------------------------------- work


def _split(ctx: RunContext):
    from ayakit.safety.split import describe, read_split, split_path

    path = split_path(ctx.run_dir / "safety")
    return read_split(path), describe(path)


def run_split(ctx: RunContext) -> Path:
    """Make (or adopt) the run's split; a changed seed or fraction replaces it, and everything after reruns."""
    from ayakit.safety.split import SPLIT_DIR, distilled_split, ensure_split

    r = ctx.recipe
    folder = ctx.run_dir / "safety" / SPLIT_DIR
    if folder.is_dir():
        shutil.rmtree(folder)  # this stage reruns only when the split's inputs changed
    _, info, status = ensure_split(ctx.run_dir / "safety", _data_dir(r), r.safety.sampling.seed,
                                   r.safety.test_fraction, distilled_split(_distilled_sources(r)))
    ctx.progress.console.print(f"  split {status}: seed {info['seed']}, test fraction {info['test_fraction']}")
    return folder


def _measure(ctx: RunContext, model: Path, label: str, data: Path) -> Path:
    from ayakit.models import load_backend
    from ayakit.runner import StageBars
    from ayakit.safety.measure import measure_harm, measure_toxicity
    from ayakit.safety.split import check_disjoint, select

    r = ctx.recipe
    s = r.safety
    prompts, split = _split(ctx)
    checked = check_disjoint(prompts, data)  # a model that trained on a held-out prompt is not measured
    prompts = select(prompts, s.languages, s.categories)
    backend = load_backend(str(model), batch_size=s.batch_size)
    bars = StageBars(ctx.progress, f"safety {label}")
    safety_dir = ctx.run_dir / "safety"
    results: dict[str, Any] = {}
    if s.harm.enabled:
        harm = measure_harm(backend, prompts, split, s.harm, s.sampling, safety_dir, label, progress=bars)
        results["harm"] = {c: v.get("rate") for c, v in harm["languages"].items()}
    if s.toxicity.enabled:
        tox = measure_toxicity(backend, s.toxicity, s.sampling, _data_dir(r), safety_dir, label, progress=bars)
        results["toxicity"] = {c: v.get("toxicity_probability") for c, v in tox["languages"].items()}
    out = safety_dir / label
    write_manifest(out, "safety-eval", {"model": str(model), "split": split, **_measure_settings(r)},
                   {"summary": "../summary.json"}, results=results, training_inputs_checked=checked)
    return out


def run_eval(ctx: RunContext) -> Path:
    """Harm (per language, with over-refusal) and toxicity of the trained model."""
    return _measure(ctx, ctx.run_dir / "model", TRAINED, ctx.run_dir / "data")


def run_distill(ctx: RunContext) -> Path:
    """The teacher (default: the trained model) answers the training split with the preamble; the paper's filters."""
    from ayakit.models import load_backend
    from ayakit.runner import StageBars
    from ayakit.safety.distill import distill, hf_translator
    from ayakit.safety.split import select
    from ayakit.safety.summary import update_summary

    r = ctx.recipe
    s = r.safety
    prompts, split = _split(ctx)
    teacher = s.distill.teacher or str(ctx.run_dir / "model")
    translator = hf_translator(s.distill.translation_model) if s.distill.translation_model else None
    out = ctx.run_dir / DISTILL_OUT
    info = distill(load_backend(teacher, batch_size=s.batch_size), select(prompts, s.languages, s.categories),
                   s.distill, s.sampling, out, TRAINED if s.distill.teacher is None else teacher, translator,
                   split=split, progress=StageBars(ctx.progress, "distill"))
    update_summary(ctx.run_dir / "safety", ["distill"], {**info, "output": str(out / "safety.parquet")})
    dropped = {k: sum(c[k] for c in info["counts"].values()) for k in
               ("no_preamble", "too_short", "too_long", "repetitive", "echoes_preamble", "not_refusal")}
    prompts_n = sum(c["prompts"] for c in info["counts"].values())
    ctx.progress.console.print(f"  distill: {info['kept']} of {prompts_n} teacher answers kept; dropped "
                               + ", ".join(f"{k} {v}" for k, v in dropped.items() if v))
    if info["kept"] == 0:
        raise DataError(f"safety distill: every teacher answer failed the paper's filters ({dropped}; "
                        f"{out / 'rejected.jsonl'} has them): use a stronger teacher (safety.distill.teacher)")
    return out


def _safe_ctx(ctx: RunContext) -> RunContext:
    from ayakit.runner import RunContext

    return RunContext(safe_recipe(ctx.recipe, ctx.run_dir), ctx.run_dir / SAFE_DIR, ctx.progress, ctx.forced,
                      ctx.resume)


def run_safe_data(ctx: RunContext) -> Path:
    """The second mixture (with the safety source) and the first training's tokenizer beside it."""
    from ayakit.runner import _run_data

    safe = _safe_ctx(ctx)
    safe.run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(safe.run_dir / "recipe.yaml", safe.recipe.dump())
    tok = safe.run_dir / "tokenizer"
    if tok.is_dir():
        shutil.rmtree(tok)
    shutil.copytree(ctx.run_dir / "tokenizer", tok)  # the same tokenizer: the two models differ only in data
    safe.forced = safe.forced | ({"data"} if "safe-data" in ctx.forced else set())
    out = _run_data(safe)
    ctx.progress.console.print("  " + safety_source_line(out / "stats.json", ctx.recipe))
    return out


def safety_source_line(stats_path: Path, recipe: Recipe) -> str:
    """What the second mixture did with the distilled set: kept after the data filters, repeated, its share."""
    from ayakit.io import read_json

    stats = read_json(stats_path)
    name = recipe.safety.distill.source_name
    available = sum(((stats.get("available") or {}).get(name) or {}).values())
    counts = (stats.get("counts") or {}).get("source") or {}
    used, total = counts.get(name, 0), stats.get("total") or sum(counts.values()) or 0
    repeat = (stats.get("repetition") or {}).get(name)
    return (f"safe-data: source '{name}': {available} distilled examples after the data filters, "
            f"{used} of {total} in the mixture ({100 * used / total if total else 0:.1f}%, asked "
            f"{100 * recipe.safety.distill.share:.1f}%)" + (f", each repeated {repeat:.1f}x" if repeat and repeat > 1
                                                               else ""))


def run_safe_train(ctx: RunContext) -> Path:
    """Train the same recipe on the mixture with the safety source."""
    from ayakit.runner import _clear, _run_train

    safe = _safe_ctx(ctx)
    if not ctx.resume:
        _clear(safe.run_dir, "model")  # never resume from checkpoints of other settings
    return _run_train(safe)


def run_safe_eval(ctx: RunContext) -> Path:
    """The general evaluation of the second model (the general-task cost of the safety data)."""
    from ayakit.runner import _run_eval

    return _run_eval(_safe_ctx(ctx))


def run_safe_safety(ctx: RunContext) -> Path:
    """Harm and toxicity of the second model, on the same held-out split."""
    return _measure(ctx, ctx.run_dir / SAFE_DIR / "model", SAFE, ctx.run_dir / SAFE_DIR / "data")
