"""`ayakit safety toxicity | harm | distill`: toxicity and bias, harmful prompts, safety context distillation."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ayakit.recipe import Sampling

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Toxicity, bias and harmful-prompt evaluation; multilingual safety context distillation.")
console = Console()

DATA_DIR_HELP = "Public data folder (../shared/data layout: ldnoobw, sib200, holistic_bias, xsafety); " \
                "default: $AYAKIT_DATA_DIR."
OUT_HELP = "Where results go; default: runs/<name>/safety when MODEL is runs/<name>/model. summary.json is " \
           "updated there."


_PAPER = Sampling.model_fields  # the paper's sampling defaults, written once (ayakit.recipe.Sampling)
TEMPERATURE_HELP = f"Sampling temperature (default: the paper's {_PAPER['temperature'].default}; 0: greedy)."
TOP_P_HELP = f"Nucleus sampling top-p (default: the paper's {_PAPER['top_p'].default})."
SEED_HELP = f"Seed of the prompt sample and of sampling (default: {_PAPER['seed'].default})."
SPLIT_HELP = ("Share of each XSafety category held out (default: XSafety's 0.2, 40 of 200). Only when the run has "
              "no recorded split yet: the split is made once per run (<run>/safety/split/) and a different fraction "
              "is refused.")


def _sampling(temperature: float | None, top_p: float | None, seed: int | None) -> Sampling:
    given = {"temperature": temperature, "top_p": top_p, "seed": seed}
    return Sampling(**{k: v for k, v in given.items() if v is not None})


def _config(cls, **values):
    """A recipe safety section from command-line values; a bad value is one line naming the option."""
    from pydantic import ValidationError

    from ayakit.errors import DataError

    try:
        return cls(**values)
    except ValidationError as exc:
        raise DataError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})"
                                  for e in exc.errors())) from None


def _run_of(spec: str) -> Path | None:
    from ayakit.safety.summary import default_out

    out = default_out(spec)
    return out.parent if out is not None else None


def _required_split(spec: str) -> Path | None:
    """The split the model's distilled safety data was made with (its run's recipe names the source)."""
    import yaml

    from ayakit.safety.split import distilled_split

    run = _run_of(spec)
    if run is None or not (run / "recipe.yaml").is_file():
        return None
    recipe = yaml.safe_load((run / "recipe.yaml").read_text(encoding="utf-8")) or {}
    return distilled_split(((recipe.get("data") or {}).get("sources")) or [])


def _say_split(info: dict, status: str) -> None:
    what = {"made": "made and recorded", "adopted": "adopted from the safety data's distillation",
            "recorded": "the recorded one"}[status]
    console.print(f"split: {what} (seed {info['seed']}, test fraction {info['test_fraction']}): {info['path']}")


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
    temperature: float = typer.Option(None, "--temperature", min=0.0, help=TEMPERATURE_HELP),
    top_p: float = typer.Option(None, "--top-p", min=0.0, max=1.0, help=TOP_P_HELP),
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
    seed: int = typer.Option(None, "--seed", help=SEED_HELP),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Generation batch size."),
    engine: str = _engine_option(),
    compute_type: str = _compute_type_option(),
) -> None:
    """Toxicity of open-ended continuations: expected maximum toxicity and toxicity probability per language."""
    from ayakit.errors import DataError
    from ayakit.safety.measure import slug
    from ayakit.safety.scorers import load_scorer
    from ayakit.safety.summary import model_label, update_summary
    from ayakit.recipe import ToxicityConfig
    from ayakit.safety.toxicity import PROMPT_SETS, run_toxicity

    if prompts not in PROMPT_SETS:
        raise DataError(f"unknown prompt set {prompts!r}; choose one of {', '.join(PROMPT_SETS)}")
    data = _data_dir(data_dir)
    dest = _out(model, out)
    sc = load_scorer(scorer, data, classifier, perspective_url, qps, _langs(classifier_languages))
    cfg = _config(ToxicityConfig, prompt_set=prompts, samples=samples, per_language=max_prompts,
                  languages=_langs(languages), max_new_tokens=max_new_tokens, scorer=scorer,
                  classifier=str(classifier) if classifier else None)
    label = model_label(model) + ("+preamble" if preamble else "")
    backend = _backend(model, batch_size, engine, compute_type)
    result = run_toxicity(backend, sc, cfg, _sampling(temperature, top_p, seed), dest / "toxicity" / slug(label),
                          data, label, preamble=preamble)
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
    judge: str = typer.Option(None, "--judge", help="A judge model: an OpenAI-compatible URL "
                              "('http://host:port/v1#model') or a local model directory; default: the offline "
                              "refusal detector."),
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
    test_fraction: float = typer.Option(None, "--test-fraction", min=0.01, max=0.99, help=SPLIT_HELP),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1, help="Tokens per answer."),
    temperature: float = typer.Option(None, "--temperature", min=0.0, help=TEMPERATURE_HELP),
    top_p: float = typer.Option(None, "--top-p", min=0.0, max=1.0, help=TOP_P_HELP),
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    out: Path = typer.Option(None, "--out", help=OUT_HELP),
    seed: int = typer.Option(None, "--seed", help=SEED_HELP + " Also the seed of a new split (a recorded split "
                             "stays as it is)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Generation batch size."),
    engine: str = _engine_option(),
    compute_type: str = _compute_type_option(),
) -> None:
    """Harmful rate on held-out XSafety prompts per language, and over-refusal on benign prompts. The held-out
    prompts are those of the run's recorded split (made on first use, or adopted from the split the model's safety
    data was distilled with); a model whose training data holds a held-out prompt is refused."""
    from ayakit.errors import DataError
    from ayakit.recipe import HarmConfig
    from ayakit.safety.measure import measure_harm
    from ayakit.safety.split import check_disjoint, ensure_split, select
    from ayakit.safety.summary import model_label

    data = _data_dir(data_dir)
    if data is None:
        raise DataError("safety harm reads <data_dir>/xsafety: give --data-dir or set AYAKIT_DATA_DIR")
    dest = _out(model, out)
    sampling = _sampling(temperature, top_p, seed)
    prompts, split, status = ensure_split(dest, data, sampling.seed, test_fraction, _required_split(model))
    _say_split(split, status)
    run = _run_of(model)
    check_disjoint(prompts, run / "data" if run else None)
    cats = [c.strip() for c in categories.split(",")] if categories else None
    prompts = select(prompts, _langs(languages), cats)
    cfg = _config(HarmConfig, per_language=max_prompts, benign_per_language=benign_prompts,
                  max_new_tokens=max_new_tokens, classifier="judge" if judge else "refusal", judge=judge,
                  judge_model=judge_model)
    label = model_label(model) + ("+preamble" if preamble else "")
    result = measure_harm(_backend(model, batch_size, engine, compute_type), prompts, split, cfg, sampling, dest, label, preamble)
    detector = result["detector"]
    table = Table(title=f"Harmful rate ({detector['name']}) - {label}")
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
    temperature: float = typer.Option(None, "--temperature", min=0.0, help="Teacher " + TEMPERATURE_HELP.lower()),
    top_p: float = typer.Option(None, "--top-p", min=0.0, max=1.0, help="Teacher " + TOP_P_HELP.lower()),
    require_refusal: bool = typer.Option(False, "--require-refusal/--keep-all", help="Also drop answers the "
                                         "refusal detector does not recognise as refusals (the paper keeps all "
                                         "that pass its filters)."),
    test_fraction: float = typer.Option(None, "--test-fraction", min=0.01, max=0.99, help=SPLIT_HELP),
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    summary_dir: Path = typer.Option(None, "--summary-dir", help="Also record the counts in this folder's "
                                     "summary.json (default: runs/<name>/safety of the teacher, if any)."),
    seed: int = typer.Option(None, "--seed", help=SEED_HELP + " Also the seed of a new split (a recorded split "
                             "stays as it is)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Generation batch size."),
    engine: str = _engine_option(),
    compute_type: str = _compute_type_option(),
) -> None:
    """Teacher + safety preamble answers the TRAIN split of harmful prompts; filtered pairs without the preamble.
    The split is the teacher run's recorded one (--summary-dir's, else runs/<name>/safety of the teacher, else
    made and recorded in --out); the set's manifest names it, so a model trained on the set is measured on
    exactly the prompts the teacher never answered."""
    from ayakit.errors import DataError
    from ayakit.recipe import DistillConfig
    from ayakit.safety.distill import distill
    from ayakit.safety.split import ensure_split, select
    from ayakit.safety.summary import default_out, model_label, update_summary

    data = _data_dir(data_dir)
    if data is None:
        raise DataError("safety distill reads <data_dir>/xsafety: give --data-dir or set AYAKIT_DATA_DIR")
    sampling = _sampling(temperature, top_p, seed)
    prompts, split, status = ensure_split(summary_dir or default_out(teacher) or out, data, sampling.seed,
                                          test_fraction)
    _say_split(split, status)
    cats = [c.strip() for c in categories.split(",")] if categories else None
    prompts = select(prompts, _langs(languages), cats)
    translator = _translator(translation_model) if translation_model else None
    cfg = _config(DistillConfig, max_new_tokens=max_new_tokens, per_language=max_prompts,
                  require_refusal=require_refusal, translate_to=_langs(translate_to) or [],
                  translation_model=translation_model)
    label = model_label(teacher)
    info = distill(_backend(teacher, batch_size, engine, compute_type), prompts, cfg, sampling, out, label, translator, split=split)
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
