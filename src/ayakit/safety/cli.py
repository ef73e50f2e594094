"""`ayakit safety toxicity | harm | distill`: toxicity and bias, harmful prompts, safety context distillation."""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Toxicity, bias and harmful-prompt evaluation; multilingual safety context distillation.")
console = Console()

DATA_DIR_HELP = "Public data folder (../shared/data layout: ldnoobw, sib200, holistic_bias, xsafety); " \
                "default: $AYAKIT_DATA_DIR."
OUT_HELP = "Where results go; default: runs/<name>/safety when MODEL is runs/<name>/model. summary.json is " \
           "updated there."


def _data_dir(value: Path | None) -> Path | None:
    if value is not None:
        return value
    env = os.environ.get("AYAKIT_DATA_DIR")
    return Path(env).expanduser() if env else None


def _out(spec: str, out: Path | None) -> Path:
    from ayakit.errors import DataError
    from ayakit.safety.summary import default_out

    found = out or default_out(spec)
    if found is None:
        raise DataError(f"give --out DIR: {spec} is not a model inside a run directory (runs/<name>/model)")
    return found


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "model"


def _langs(value: str | None) -> list[str] | None:
    from ayakit import languages as L

    return [L.normalize_any(c) for c in value.split(",") if c.strip()] if value else None


def _backend(spec: str, batch_size: int, engine: str = "hf", compute_type: str | None = None):
    from ayakit.models import load_backend

    return load_backend(spec, engine=engine, batch_size=batch_size, compute_type=compute_type)


def _engine_label(backend) -> str:  # noqa: ANN001
    from ayakit.models import engine_label as label

    return label(backend)


def _check_engine(value: str) -> str:
    from ayakit.models import check_engine

    check_engine(value)
    return value


def _check_compute_type(value: str | None) -> str | None:
    from ayakit.models import check_engine

    if value is not None:
        check_engine("ctranslate2", value)
    return value


def _engine_option():  # noqa: ANN202 - a typer OptionInfo
    return typer.Option("hf", "--engine", callback=_check_engine,
                        help="Engine that generates for a local model: hf or ctranslate2 (CTranslate2: converted "
                             "once, cached in <model>/.ct2; samples differ from hf's, greedy float32 outputs equal "
                             "them). An endpoint URL generates as it is.")


def _compute_type_option():  # noqa: ANN202 - a typer OptionInfo
    return typer.Option(None, "--compute-type", callback=_check_compute_type,
                        help="ctranslate2 only: float32 or int8 on CPU; float16, int8_float16 or float32 on GPU "
                             "(default: float32 / float16).")


@app.command("toxicity")
def toxicity_cmd(
    model: str = typer.Argument(..., help="A model directory (HF save_pretrained) or an OpenAI-compatible URL."),
    scorer: str = typer.Option("lexicon", "--scorer", help="lexicon (offline, LDNOOBW word lists, 25 Aya "
                               "languages), perspective (PERSPECTIVE_API_KEY) or classifier (--classifier DIR)."),
    samples: int = typer.Option(4, "--samples", min=1, help="Samples per prompt (the paper: 25; 4 keeps CPU runs "
                                "short)."),
    prompts: str = typer.Option("flores", "--prompts", help="flores (first halves of FLORES sentences; embedded "
                                "chatterbot sentences without data), identity (the 28 gender/race/religion "
                                "starts in 7 languages) or holistic (HolisticBias descriptors x nouns x templates)."),
    languages: str = typer.Option(None, "--languages", help="Comma-separated codes; default: every language the "
                                  "prompt set and scorer have."),
    max_prompts: int = typer.Option(20, "--max-prompts", min=1, help="Prompts per language (per axis for "
                                    "holistic)."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", min=1, help="Tokens per continuation."),
    temperature: float = typer.Option(0.9, "--temperature", min=0.0, help="Sampling temperature."),
    top_p: float = typer.Option(0.8, "--top-p", min=0.0, max=1.0, help="Nucleus sampling top-p."),
    classifier: Path = typer.Option(None, "--classifier", help="Sequence-classification checkpoint directory "
                                    "(for --scorer classifier)."),
    classifier_languages: str = typer.Option(None, "--classifier-languages", help="Languages the classifier "
                                             "covers (default: its config's `languages`, else unverified)."),
    perspective_url: str = typer.Option(None, "--perspective-url", help="Perspective endpoint (default: Google's; "
                                        "or $PERSPECTIVE_API_URL)."),
    qps: float = typer.Option(1.0, "--qps", min=0.0, help="Perspective requests per second."),
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    out: Path = typer.Option(None, "--out", help=OUT_HELP),
    preamble: bool = typer.Option(False, "--preamble/--no-preamble", help="Prepend the safety preamble (the "
                                  "paper found it raises toxicity on identity prompts; results are kept apart as "
                                  "MODEL+preamble)."),
    seed: int = typer.Option(1234, "--seed", help="Seed for prompt sampling and generation."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Generation batch size."),
    engine: str = _engine_option(),
    compute_type: str = _compute_type_option(),
) -> None:
    """Toxicity of open-ended continuations: expected maximum toxicity and toxicity probability per language."""
    from ayakit.errors import DataError
    from ayakit.safety.scorers import load_scorer
    from ayakit.safety.summary import model_label, update_summary
    from ayakit.safety.toxicity import PROMPT_SETS, ToxicityConfig, run_toxicity

    if prompts not in PROMPT_SETS:
        raise DataError(f"unknown prompt set {prompts!r}; choose one of {', '.join(PROMPT_SETS)}")
    data = _data_dir(data_dir)
    dest = _out(model, out)
    sc = load_scorer(scorer, data, classifier, perspective_url, qps, _langs(classifier_languages))
    cfg = ToxicityConfig(prompt_set=prompts, samples=samples, per_language=max_prompts, languages=_langs(languages),
                         max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                         preamble=preamble)
    label = model_label(model) + ("+preamble" if preamble else "")
    backend = _backend(model, batch_size, engine, compute_type)
    result = run_toxicity(backend, sc, cfg, dest / "toxicity" / _slug(label), data, label)
    result["engine"] = _engine_label(backend)
    set_name = result["prompt_set"]
    update_summary(dest, ["models", label, "toxicity", set_name], result)
    table = Table(title=f"Toxicity ({set_name} prompts, {sc.name} scorer, k={samples}) - {label}")
    for col in ("language", "prompts", "EMT", "95% CI", "P(toxic)", "95% CI"):
        table.add_column(col)
    for code, r in result["languages"].items():
        if r.get("covered") and r.get("prompts"):
            table.add_row(code, str(r["prompts"]), f"{r['emt']:.3f}", _ci(r["emt_ci"]),
                          f"{r['toxicity_probability']:.3f}", _ci(r["toxicity_probability_ci"]))
        else:
            table.add_row(code, "0", "–", r.get("reason", "not covered"), "–", "–")
    console.print(table)
    console.print(f"results: {dest / 'summary.json'}")


def _ci(ci) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "–"


@app.command("harm")
def harm_cmd(
    model: str = typer.Argument(..., help="A model directory (HF save_pretrained) or an OpenAI-compatible URL."),
    judge: str = typer.Option(None, "--judge", help="OpenAI-compatible URL of a judge model "
                              "('http://host:port/v1#model'); default: the offline refusal detector."),
    judge_model: str = typer.Option(None, "--judge-model", help="Model name to ask at the judge endpoint."),
    preamble: bool = typer.Option(False, "--preamble/--no-preamble", help="Prepend the safety preamble (measure "
                                  "a teacher with its preamble)."),
    languages: str = typer.Option(None, "--languages", help="Comma-separated codes; default: all 10 XSafety "
                                  "languages."),
    categories: str = typer.Option(None, "--categories", help="XSafety harmful categories (default: the paper's "
                                   "six)."),
    max_prompts: int = typer.Option(40, "--max-prompts", min=1, help="Held-out harmful prompts per language."),
    benign_prompts: int = typer.Option(20, "--benign-prompts", min=0, help="Benign prompts per language for the "
                                       "over-refusal rate (XSafety commonsense, test split)."),
    test_fraction: float = typer.Option(0.2, "--test-fraction", min=0.01, max=0.99, help="Share of each category "
                                        "held out (the paper: 40 of 200)."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1, help="Tokens per answer."),
    temperature: float = typer.Option(0.9, "--temperature", min=0.0, help="Sampling temperature (0: greedy)."),
    top_p: float = typer.Option(0.8, "--top-p", min=0.0, max=1.0, help="Nucleus sampling top-p."),
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    out: Path = typer.Option(None, "--out", help=OUT_HELP),
    seed: int = typer.Option(1234, "--seed", help="Seed of the split, the prompt sample and generation."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Generation batch size."),
    engine: str = _engine_option(),
    compute_type: str = _compute_type_option(),
) -> None:
    """Harmful rate on held-out XSafety prompts per language, and over-refusal on benign prompts."""
    from ayakit.errors import DataError
    from ayakit.models import load_backend
    from ayakit.safety.harm import HarmConfig, LLMJudge, RefusalDetector, evaluate_harm
    from ayakit.safety.summary import model_label, update_summary
    from ayakit.safety.xsafety import load_split, write_split, xsafety_facts

    data = _data_dir(data_dir)
    if data is None:
        raise DataError("safety harm reads <data_dir>/xsafety: give --data-dir or set AYAKIT_DATA_DIR")
    dest = _out(model, out)
    cats = [c.strip() for c in categories.split(",")] if categories else None
    facts = xsafety_facts()
    prompts, inputs = load_split(data, _langs(languages), (cats or facts["harmful"]) + facts["benign"],
                                 test_fraction, seed)
    write_split(prompts, dest / "harm", inputs)
    detector = RefusalDetector() if judge is None else LLMJudge(load_backend(judge, model=judge_model, chat=True),
                                                                 judge)
    label = model_label(model) + ("+preamble" if preamble else "")
    cfg = HarmConfig(per_language=max_prompts, benign_per_language=benign_prompts, max_new_tokens=max_new_tokens,
                     temperature=temperature, top_p=top_p, seed=seed, preamble=preamble)
    backend = _backend(model, batch_size, engine, compute_type)
    result = evaluate_harm(backend, prompts, cfg, dest / "harm" / _slug(label), detector, label)
    result["engine"] = _engine_label(backend)
    result["split"] = {"path": "harm/split.parquet", "test_fraction": test_fraction, "seed": seed,
                       "categories": inputs["categories"]}
    update_summary(dest, ["models", label, "harm"], result)
    table = Table(title=f"Harmful rate ({detector.name}) - {label}")
    for col in ("language", "prompts", "harmful", "95% CI", "refusal", "over-refusal"):
        table.add_column(col)
    over = result["over_refusal"]["languages"]
    for code, r in result["languages"].items():
        o = over.get(code, {})
        if r.get("covered"):
            table.add_row(code, str(r["n"]), f"{r['rate']:.3f}" if r["rate"] is not None else "–", _ci(r["ci"]),
                          f"{r['refusal_rate']:.3f}" if r.get("refusal_rate") is not None else "–",
                          f"{o['rate']:.3f}" if o.get("rate") is not None else "–")
        else:
            table.add_row(code, "0", "–", r.get("reason", "not covered"), "–", "–")
    console.print(table)
    console.print(f"results: {dest / 'summary.json'}")


@app.command("distill")
def distill_cmd(
    teacher: str = typer.Argument(..., help="Teacher model directory or OpenAI-compatible URL."),
    out: Path = typer.Option(..., "--out", help="Folder for safety.parquet (a `files` source of kind safety), "
                             "rejected.jsonl and manifest.json."),
    translation_model: str = typer.Option(None, "--translation-model", help="Translation model for languages "
                                          "without a stored preamble (through `ayakit translate`); without it "
                                          "they are listed as missing and skipped."),
    languages: str = typer.Option(None, "--languages", help="Comma-separated codes; default: all XSafety "
                                  "languages."),
    translate_to: str = typer.Option(None, "--translate-to", help="More languages (comma-separated): the English "
                                     "training prompts are translated into them with --translation-model, for "
                                     "training only (the paper filled its other languages so)."),
    categories: str = typer.Option(None, "--categories", help="XSafety harmful categories (default: the paper's "
                                   "six)."),
    max_prompts: int = typer.Option(None, "--max-prompts", min=1, help="Training prompts per language (default: "
                                    "all of the train split)."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", min=1, help="Tokens per teacher answer."),
    temperature: float = typer.Option(0.9, "--temperature", min=0.0, help="Teacher temperature (the paper: 0.9)."),
    top_p: float = typer.Option(0.8, "--top-p", min=0.0, max=1.0, help="Teacher top-p (the paper: 0.8)."),
    require_refusal: bool = typer.Option(False, "--require-refusal/--keep-all", help="Also drop answers the "
                                         "refusal detector does not recognise as refusals (the paper keeps all "
                                         "that pass its filters)."),
    test_fraction: float = typer.Option(0.2, "--test-fraction", min=0.01, max=0.99, help="Must match `safety "
                                        "harm`: the held-out rows never train."),
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    summary_dir: Path = typer.Option(None, "--summary-dir", help="Also record the counts in this folder's "
                                     "summary.json (default: runs/<name>/safety of the teacher, if any)."),
    seed: int = typer.Option(1234, "--seed", help="Seed of the split, the prompt sample and sampling."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Generation batch size."),
    engine: str = _engine_option(),
    compute_type: str = _compute_type_option(),
) -> None:
    """Teacher + safety preamble answers the TRAIN split of harmful prompts; filtered pairs without the preamble."""
    from ayakit.errors import DataError
    from ayakit.safety.distill import DistillConfig, distill
    from ayakit.safety.summary import default_out, model_label, update_summary
    from ayakit.safety.xsafety import load_split, write_split, xsafety_facts

    data = _data_dir(data_dir)
    if data is None:
        raise DataError("safety distill reads <data_dir>/xsafety: give --data-dir or set AYAKIT_DATA_DIR")
    facts = xsafety_facts()
    # the same categories as `safety harm`, so both commands compute the very same split
    cats = [c.strip() for c in categories.split(",")] if categories else facts["harmful"]
    prompts, inputs = load_split(data, _langs(languages), cats + facts["benign"], test_fraction, seed)
    write_split(prompts, out / "split", inputs)
    translator = _translator(translation_model) if translation_model else None
    cfg = DistillConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                        per_language=max_prompts, require_refusal=require_refusal,
                        translate_to=_langs(translate_to) or [])
    label = model_label(teacher)
    backend = _backend(teacher, batch_size, engine, compute_type)
    info = distill(backend, prompts, cfg, out, label, translator)
    info["engine"] = _engine_label(backend)
    table = Table(title=f"Safety distillation set - teacher {label}")
    for col in ("language", "prompts", "no preamble", "<20", ">1000", "repetitive", "echo", "kept"):
        table.add_column(col)
    for code, c in sorted(info["counts"].items()):
        table.add_row(code, *(str(c[k]) for k in ("prompts", "no_preamble", "too_short", "too_long", "repetitive",
                                                   "echoes_preamble", "kept")))
    console.print(table)
    if info["preamble"]["missing"]:
        console.print(f"no preamble (skipped): {', '.join(info['preamble']['missing'])}")
    console.print(f"{info['kept']} pairs: {out / 'safety.parquet'}")
    where = summary_dir or default_out(teacher)
    if where is not None:
        update_summary(where, ["distill"], {**info, "output": str(out / "safety.parquet")})


def _translator(spec: str):
    """(texts, source, target) -> texts, through ayakit translate's model code and checks."""
    from ayakit.safety.distill import hf_translator

    return hf_translator(spec)
