"""`ayakit run`: the stages in order, each skipped when its inputs have not changed."""

from __future__ import annotations

import json

import contextlib
import os
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn, Task,
                           TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

from ayakit.io import (MANIFEST, file_sha256, fingerprint, read_json, write_json_atomic, write_manifest,
                       write_text_atomic)
from ayakit import runner_safety as safety
from ayakit.recipe import Recipe, RecipeError, load_recipe

STATE_DIR = "stages"  # runs/<name>/stages/<stage>/manifest.json: what each stage last finished with
STAGE_NAMES = ("data", "tokenizer", "tokenize", "baseline", "train", "eval", "safety-split", "safety-eval", "distill",
               "safe-data", "safe-train", "safe-eval", "safe-safety-eval", "report")
UNTRAINED_DIR = "model-untrained"


@dataclass
class RunContext:
    """What every stage sees: the recipe, the run directory, the shared progress display."""

    recipe: Recipe
    run_dir: Path
    progress: Any = None
    forced: set[str] = field(default_factory=set)
    resume: bool = False


@dataclass
class Stage:
    """One step of the run: its inputs (recipe sections + upstream fingerprints), its work, its output folder."""

    name: str
    inputs: Callable[[Recipe, dict[str, str], Path], dict[str, Any]]
    work: Callable[[RunContext], Path]
    output: str  # the folder (relative to the run dir) whose manifest.json fingerprints the result
    enabled: Callable[[Recipe], bool] = lambda recipe: True
    describe: str = ""


@dataclass
class RunResult:
    """What `run_recipe` did: the run directory, the report, each stage's status and seconds."""

    run_dir: Path
    report: Path | None
    statuses: dict[str, str]
    seconds: dict[str, float]
    headline: list[str]


# --------------------------------------------------------------------------------------------------- stages


def _section(recipe: Recipe, name: str) -> Any:
    return getattr(recipe, name).model_dump(mode="json")


def _eval_settings(recipe: Recipe) -> dict[str, Any]:
    """What decides an evaluation's result (whether a baseline is wanted does not; the default hf engine is left out
    so that runs made before engines existed keep their fingerprints)."""
    defaults = {"engine": "hf", "compute_type": None}
    return {k: v for k, v in _section(recipe, "eval").items()
            if k != "baseline" and not (k in defaults and v == defaults[k])}


def _data_dir(recipe: Recipe) -> str | None:
    d = recipe.resolved_data_dir()
    return str(d) if d else None


class StageBars:
    """A `progress(name, done, total)` callback drawing into the run's display: one bar per name, or one bar whose
    label follows the name (single=True)."""

    def __init__(self, progress: Progress | None, label: str, single: bool = False) -> None:
        self.progress, self.label, self.single = progress, label, single
        self.tasks: dict[str, Any] = {}

    def __call__(self, name: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        key = "" if self.single else name
        desc = f"  {self.label}: {name}"
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(desc, total=total)
        self.progress.update(self.tasks[key], completed=done, total=total, description=desc)


def _run_data(ctx: RunContext) -> Path:
    from ayakit.data.pipeline import build

    build(ctx.recipe, ctx.run_dir, force="data" in ctx.forced, progress=StageBars(ctx.progress, "data", single=True))
    return ctx.run_dir / "data"


def _run_tokenizer(ctx: RunContext) -> Path:
    from ayakit.train.tokenizer import build_tokenizer, fertility

    path = build_tokenizer(ctx.recipe, ctx.run_dir, progress=ctx.progress)
    fertility(path, ctx.run_dir)
    return path


def _evaluate(ctx: RunContext, model: Path, model_id: str) -> Path:
    from ayakit.eval.harness import evaluate

    ev = ctx.recipe.eval
    out = ctx.run_dir / "eval" / model_id
    evaluate(str(model), out, suite=ev.suite, tasks=ev.tasks, languages=ev.languages, prompts=ev.prompts,
             max_items=ev.max_items, batch_size=ev.batch_size, normalization=ev.normalization,
             num_fewshot=ev.num_fewshot, data_dir=ctx.recipe.resolved_data_dir(), seed=ctx.recipe.seed,
             max_new_tokens=ev.max_new_tokens, progress=StageBars(ctx.progress, f"eval {model_id}"),
             engine=ev.engine, compute_type=ev.compute_type)
    return out


def _run_baseline(ctx: RunContext) -> Path:
    from ayakit.train.model import init_model

    m = ctx.recipe.model
    if m.name_or_path and not m.overrides and _vocab_fits(m.name_or_path, ctx.run_dir / "tokenizer"):
        return _evaluate(ctx, m.name_or_path, "baseline")  # a pretrained start is referenced, never copied
    model = init_model(ctx.recipe, ctx.run_dir / "tokenizer", ctx.run_dir / UNTRAINED_DIR)
    return _evaluate(ctx, model, "baseline")


def _vocab_fits(name_or_path: str, tokenizer_dir: Path) -> bool:
    """Whether the pretrained model's embeddings cover the run's tokenizer (else it is resized, so saved)."""
    from transformers import AutoConfig

    from ayakit.train.tokenizer import load_tokenizer

    vocab = getattr(AutoConfig.from_pretrained(name_or_path), "vocab_size", None)
    return vocab is not None and len(load_tokenizer(tokenizer_dir)) <= vocab


def _run_tokenize(ctx: RunContext) -> Path:
    from ayakit.train.tokenize import tokenize

    return tokenize(ctx.recipe, ctx.run_dir, force="tokenize" in ctx.forced,
                    progress=StageBars(ctx.progress, "tokenize", single=True))


def _run_train(ctx: RunContext) -> Path:
    from ayakit.train.loop import train

    return train(ctx.recipe, ctx.run_dir, resume=ctx.resume, progress=ctx.progress)


def _run_eval(ctx: RunContext) -> Path:
    return _evaluate(ctx, ctx.run_dir / "model", "trained")


def _run_report(ctx: RunContext) -> Path:
    from ayakit.report import build_report

    return build_report(ctx.run_dir)


def _safety_fp(run_dir: Path) -> str | None:
    path = run_dir / "safety" / "summary.json"
    return file_sha256(path) if path.is_file() else None


def _data_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    return {"data": _section(r, "data"), "seed": r.seed, "data_dir": _data_dir(r)}


def _tokenizer_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    from ayakit.train.tokenizer import TEXT_VERSION

    return {"tokenizer": _section(r, "tokenizer"), "model": _section(r, "model"), "seed": r.seed,
            "data": up["data"], "text": TEXT_VERSION}


def _tokenize_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    t = r.train
    return {"model": _section(r, "model"), "lengths": [t.max_source_length, t.max_target_length],
            "validation_fraction": t.validation_fraction, "data": up["data"], "tokenizer": up["tokenizer"]}


def _baseline_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    return {"model": _section(r, "model"), "eval": _eval_settings(r), "seed": r.seed, "tokenizer": up["tokenizer"],
            "data_dir": _data_dir(r)}


def _train_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    return {"model": _section(r, "model"), "train": _section(r, "train"), "seed": r.seed, "data": up["data"],
            "tokenizer": up["tokenizer"], "tokens": up["tokenize"]}


def _eval_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    return {"eval": _eval_settings(r), "seed": r.seed, "model": up["train"], "data_dir": _data_dir(r)}


def _report_inputs(r: Recipe, up: dict, run_dir: Path) -> dict[str, Any]:
    return {"report": _section(r, "report"), "upstream": dict(up), "safety": _safety_fp(run_dir)}


STAGES: tuple[Stage, ...] = (
    Stage("data", _data_inputs, _run_data, "data", describe="sample the weighted mixture"),
    Stage("tokenizer", _tokenizer_inputs, _run_tokenizer, "tokenizer", describe="tokenizer and fertility"),
    Stage("tokenize", _tokenize_inputs, _run_tokenize, "tokens", describe="token shards"),
    Stage("baseline", _baseline_inputs, _run_baseline, "eval/baseline", enabled=lambda r: r.eval.baseline,
          describe="evaluate the untrained model"),
    Stage("train", _train_inputs, _run_train, "model", describe="finetune"),
    Stage("eval", _eval_inputs, _run_eval, "eval/trained", describe="evaluate the trained model"),
    Stage("safety-split", safety.split_inputs, safety.run_split, "safety/split", enabled=safety.enabled,
          describe="the run's XSafety train / test split"),
    Stage("safety-eval", safety.eval_inputs, safety.run_eval, "safety/trained", enabled=safety.enabled,
          describe="harm and toxicity of the trained model"),
    Stage("distill", safety.distill_inputs, safety.run_distill, "safety/distill", enabled=safety.distilling,
          describe="teacher + preamble answers the training split"),
    Stage("safe-data", safety.safe_data_inputs, safety.run_safe_data, "safe/data", enabled=safety.distilling,
          describe="the mixture with the safety source"),
    Stage("safe-train", safety.safe_train_inputs, safety.run_safe_train, "safe/model", enabled=safety.distilling,
          describe="finetune with the safety source"),
    Stage("safe-eval", safety.safe_eval_inputs, safety.run_safe_eval, "safe/eval/trained",
          enabled=safety.distilling, describe="evaluate the safety-trained model"),
    Stage("safe-safety-eval", safety.safe_safety_inputs, safety.run_safe_safety, "safety/safe",
          enabled=safety.distilling, describe="harm and toxicity of the safety-trained model"),
    Stage("report", _report_inputs, _run_report, "report", describe="write the report"),
)


# --------------------------------------------------------------------------------------------------- orchestration


def _state(run_dir: Path, stage: str) -> Path:
    return run_dir / STATE_DIR / stage


def _output_fingerprint(run_dir: Path, stage: Stage, inputs_fp: str) -> str:
    """The stage's result: its inputs plus the hash of the manifest it wrote (changes whenever it reran)."""
    manifest = run_dir / stage.output / MANIFEST
    return fingerprint({"inputs": inputs_fp, "manifest": file_sha256(manifest) if manifest.is_file() else None})


def _recorded(run_dir: Path, stage: str, inputs: dict[str, Any]) -> str | None:
    """The stage's recorded output fingerprint when it last finished with exactly these inputs."""
    path = _state(run_dir, stage) / MANIFEST
    if not path.is_file():
        return None
    try:
        rec = read_json(path)
    except (ValueError, OSError):
        return None
    if rec.get("inputs_fingerprint") != fingerprint(inputs) or rec.get("status") != "done":
        return None
    out = run_dir / STAGES[STAGE_NAMES.index(stage)].output
    if not out.exists():  # someone deleted the output: redo it
        return None
    return (rec.get("outputs") or {}).get("fingerprint")


def _started_with(run_dir: Path, stage: str) -> str | None:
    path = _state(run_dir, stage) / "started.json"
    try:
        return read_json(path).get("inputs_fingerprint") if path.is_file() else None
    except (ValueError, OSError):
        return None


def _clear(run_dir: Path, rel: str) -> None:
    target = (run_dir / rel).resolve()
    if target.is_dir() and run_dir.resolve() in target.parents:
        shutil.rmtree(target)


class FieldsColumn(ProgressColumn):
    """A stage's live numbers (training: loss, learning rate, tokens/s) beside its bar."""

    NAMES = {"tps": "tok/s"}

    def render(self, task: Task) -> Text:
        return Text(" ".join(f"{self.NAMES.get(k, k)}={v}" for k, v in task.fields.items() if v not in ("-", None)),
                    style="dim")


def make_progress(console: Console | None = None) -> Progress:
    """The one progress display of a run: the overall stage bar, each stage's own bars beneath it."""
    return Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TaskProgressColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    FieldsColumn(), console=console or Console(), transient=False)


def run_recipe(recipe: Recipe, run_dir: Path, force: str | None = None, progress: Progress | None = None,
               console: Console | None = None) -> RunResult:
    """Run every stage in order; skip those whose inputs match their last finished run; `force` redoes one
    stage and everything after it. Returns what happened."""
    if force is not None and force not in STAGE_NAMES:
        raise RecipeError(f"--force {force!r}: no such stage (stages: {', '.join(STAGE_NAMES)})")
    console = console or Console()
    _quiet_libraries()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = recipe.model_copy(update={"data_dir": _data_dir(recipe)})
    write_text_atomic(run_dir / "recipe.yaml", resolved.dump())
    forced = set(STAGE_NAMES[STAGE_NAMES.index(force):]) if force else set()
    statuses: dict[str, str] = {}
    seconds: dict[str, float] = {}
    upstream: dict[str, str | None] = {}
    own_progress = progress is None
    progress = progress or make_progress(console)
    active = [s for s in STAGES if s.enabled(recipe)]
    with progress if own_progress else contextlib.nullcontext():
        overall = progress.add_task(f"[bold]{recipe.name}", total=len(active))
        for stage in STAGES:
            if not stage.enabled(recipe):
                statuses[stage.name] = "disabled"
                upstream[stage.name] = None
                continue
            inputs = stage.inputs(recipe, upstream, run_dir)
            inputs_fp = fingerprint(inputs)
            done_fp = None if stage.name in forced else _recorded(run_dir, stage.name, inputs)
            progress.update(overall, description=f"[bold]{recipe.name}[/]: {stage.name} ({stage.describe})")
            if done_fp is not None:
                upstream[stage.name] = done_fp
                statuses[stage.name] = "skipped"
                seconds[stage.name] = 0.0
                progress.console.print(f"[dim]= {stage.name:<9} unchanged, skipped[/]")
                progress.advance(overall)
                continue
            resume = stage.name not in forced and _started_with(run_dir, stage.name) == inputs_fp
            if stage.name == "train" and not resume:
                _clear(run_dir, stage.output)  # never resume from checkpoints of other settings
            # the old record no longer describes the output once the stage starts rewriting it
            (_state(run_dir, stage.name) / MANIFEST).unlink(missing_ok=True)
            write_json_atomic(_state(run_dir, stage.name) / "started.json",
                              {"inputs_fingerprint": inputs_fp, "started_at": time.time()})
            before = set(progress.task_ids)
            t0, c0 = time.perf_counter(), _cpu_seconds()
            stage.work(RunContext(recipe, run_dir, progress, forced, resume))
            seconds[stage.name] = time.perf_counter() - t0
            cpu = _cpu_seconds() - c0
            for task_id in set(progress.task_ids) - before:  # the stage's own bars give way to the next stage's
                progress.remove_task(task_id)
            out_fp = _output_fingerprint(run_dir, stage, inputs_fp)
            write_manifest(_state(run_dir, stage.name), stage.name, inputs,
                           {"fingerprint": out_fp, "path": stage.output}, status="done",
                           seconds=round(seconds[stage.name], 2), cpu_seconds=round(cpu, 2), resumed=resume)
            upstream[stage.name] = out_fp
            statuses[stage.name] = "resumed" if resume else "done"
            progress.console.print(f"[green]✓[/] {stage.name:<9} {seconds[stage.name]:6.1f} s"
                                   + ("  (resumed)" if resume else ""))
            progress.advance(overall)
        progress.update(overall, description=f"[bold]{recipe.name}[/]: finished")
    report = run_dir / "report" / "index.html"
    headline = []
    if (run_dir / "report" / MANIFEST).is_file():
        headline = read_json(run_dir / "report" / MANIFEST).get("headline") or []
    return RunResult(run_dir, report if report.is_file() else None, statuses, seconds, headline)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (data workers): the work a stage did, whatever the load."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _quiet_libraries() -> None:
    """Library progress bars (weights loading) would tear the run's one display apart."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def prepare(recipe_path: Path, overrides: list[str] | tuple[str, ...] = (), data_dir: Path | None = None) -> Recipe:
    """Load a recipe with command-line overrides; --data-dir sets the recipe's data_dir."""
    extra = list(overrides) + ([f"data_dir={Path(data_dir).expanduser().resolve()}"] if data_dir else [])
    return load_recipe(recipe_path, extra)


def print_summary(result: RunResult, console: Console, elapsed: float) -> None:
    """The end of a run: the report's path and the headline lines."""
    console.print(f"\n[bold]run finished in {elapsed:.0f} s[/]: {result.run_dir}")
    if result.report:
        console.print(f"report: {result.report}")
        console.print(f"markdown: {result.report.with_name('report.md')}")
    for line in result.headline:
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    stats = result.run_dir / "data" / "stats.json"
    if stats.is_file():  # nothing dropped, skipped or repeated in silence
        from ayakit.data.summary import summary_lines

        for line in summary_lines(json.loads(stats.read_text(encoding="utf-8")).get("summary") or {}):
            console.print(f"  {line}", highlight=False, soft_wrap=True, style="yellow" if "warning" in line else None)


def run_cmd(
    recipe: Path = typer.Argument(..., help="The recipe YAML (e.g. recipes/demo.yaml)."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. train.lr=1e-3 data.budget=5000."),
    run_dir: Path = typer.Option(None, "--run-dir", help="Where the run's files go (default: runs/<recipe name>)."),
    force: str = typer.Option(None, "--force", help=f"Redo this stage and every later one ({', '.join(STAGE_NAMES)})."
                              ),
    data_dir: Path = typer.Option(None, "--data-dir", help="Public data directory (default: recipe data_dir, "
                                  "else $AYAKIT_DATA_DIR)."),
) -> None:
    """Run a recipe end to end: data -> tokenizer -> untrained baseline eval -> training -> eval -> report; with
    `safety.enabled`, harm and toxicity of the trained model before the report, and with `safety.distill.enabled`
    the distillation, a second training with the safety source and its evaluation (README: Safety).
    A rerun skips every stage whose inputs are unchanged and resumes an interrupted training run."""
    console = Console()
    rec = prepare(recipe, overrides or [], data_dir)
    t0 = time.perf_counter()
    result = run_recipe(rec, run_dir or Path("runs") / rec.name, force=force, console=console)
    print_summary(result, console, time.perf_counter() - t0)
