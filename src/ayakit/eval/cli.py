"""`ayakit eval`: evaluate a model per language and resource tier (`run`, the default), compare runs (`compare`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import typer
import typer.core
from rich.console import Console
from rich.table import Table

from ayakit.models.engines import ENGINE_HELP, check_engine


class _DefaultRun(typer.core.TyperGroup):
    """`ayakit eval MODEL ...` means `ayakit eval run MODEL ...`."""

    def resolve_command(self, ctx: click.Context, args: list[str]):  # noqa: ANN201 - click's signature
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(cls=_DefaultRun, add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Evaluate a model per language and resource tier (`ayakit eval MODEL` = `ayakit eval run "
                       "MODEL`); list the tasks (`ayakit eval tasks`); compare evaluated models "
                       "(`ayakit eval compare`).")


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


def _default_out(model: str) -> Path:
    path = Path(model)
    if path.is_dir() and path.name == "model" and (path.parent / "recipe.yaml").is_file():
        return path.parent / "eval" / "model"  # a run's model: runs/<name>/eval/model
    name = path.name if path.exists() else model.replace("/", "--").replace(":", "_")
    return Path("eval") / (name or "model")


def _fmt(score: float | None, ci: list | None = None) -> str:
    if score is None:
        return "–"
    if ci and all(c is not None and c == c for c in ci):
        return f"{score:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]"
    return f"{score:.1f}"


def tier_table(summary: dict) -> Table:
    """The per-task, per-tier table of one summary."""
    table = Table(title=f"{summary['model']}  ({summary['suite']}; median over prompts of the mean over languages; "
                        "'all' with its 95% bootstrap CI; per-language and per-tier CIs in summary.json)")
    tier_cols = ("high", "mid", "low", "unlisted")
    for col in ("task", "metric", "unseen", "langs", *tier_cols, "all", "chance"):
        table.add_column(col, justify="left" if col in ("task", "metric") else "right")
    for name, t in summary["tasks"].items():
        tiers = [_fmt(t["by_tier"].get(tier, {}).get("score")) for tier in tier_cols]
        table.add_row(name, t["metric"], "yes" if t["unseen_task"] else "no", str(len(t["by_language"])), *tiers,
                      _fmt(t["score"], t["ci"]), _fmt(t.get("chance")))
    overall = summary.get("by_tier", {})
    table.add_row("mean over tasks", "", "", "", *[_fmt(overall.get(tier, {}).get("score")) for tier in
                                                   tier_cols], "", "", end_section=True)
    return table


@app.command("run")
def run_cmd(
    model: str = typer.Argument(..., help="A model directory (an ayakit run's model/, any HF save_pretrained "
                                          "dir), a hub id, or an OpenAI-compatible URL (http://host:port/v1#model)."),
    suite: str = typer.Option("aya-mini", "--suite", "-s",
                              help="Named suite: aya-mini (embedded, no network, ~100 languages), aya-public (the "
                                   "public data dir), aya-paper (the paper's hub datasets)."),
    tasks: list[str] = typer.Option(None, "--tasks", "-t", help="Only these tasks: names (`ayakit eval tasks`) or task "
                                                                "files (path/to/task.yaml), comma-separated or "
                                                                "repeated; replace the suite's list (its k-shot "
                                                                "settings still apply)."),
    task_dir: Path = typer.Option(None, "--task-dir", help="Also run every task file (*.yaml) in this folder."),
    languages: list[str] = typer.Option(None, "--languages", "-l",
                                        help="Only these language varieties: a tag or code with a script or region "
                                             "(srp-Cyrl, zh-TW, fra_Latn) selects that variety only; a bare code "
                                             "(srp, zh, sw) every variety of it; `all` every variety in the data "
                                             "(FLORES-200 / SIB-200: all 204/205). Default: the Aya-101 set."),
    rollup: bool = typer.Option(False, "--rollup", help="Merge varieties into the paper's 101 rows (zho-Hans + "
                                                        "zho-Hant + yue-Hant -> zho, srp-* -> srp, ...); the "
                                                        "summary says so."),
    strict: bool = typer.Option(False, "--strict", help="Exit non-zero when anything was skipped or left out "
                                                        "(tasks without data, varieties not scored)."),
    prompts: int = typer.Option(5, "--prompts", min=1, help="Prompts per task (the paper: median over 5)."),
    prompt_ids: list[str] = typer.Option(None, "--prompt-ids",
                                         help="Use these prompts by id where a task has them (e.g. lm-eval, the "
                                              "benchmark prompt of lm-evaluation-harness); other tasks keep their "
                                              "defaults."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1,
                                       help="Cap on new tokens for every generation task (default: each task's own; "
                                            "the Aya open-ended tasks use 256)."),
    greedy: bool = typer.Option(None, "--greedy/--sample",
                                help="Greedy decoding for every generation task (--sample: sample where a task "
                                     "allows it). Default: each task's own (greedy for closed answers; the Aya "
                                     "open-ended tasks sample at temperature 0.9, top-p 0.8)."),
    temperature: float = typer.Option(None, "--temperature", min=0.0,
                                      help="Sampling temperature for every generation task (0 = greedy)."),
    max_items: int = typer.Option(None, "--max-items", min=1, help="At most this many items per (task, language)."),
    out: Path = typer.Option(None, "--out", "-o", help="Output directory (default: a run's eval/model, else "
                                                       "./eval/<model name>)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="The public data directory (default: $AYAKIT_DATA_DIR)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1,
                                   help="Rows per forward pass (choices count as rows; scores do not depend on it)."),
    normalization: str = typer.Option("none", "--normalization",
                                      help="Choice scores: none (sum of log-probs), token (per token), byte (per "
                                           "UTF-8 byte; never per character)."),
    num_fewshot: int = typer.Option(0, "--num-fewshot", min=0, help="k-shot exemplars from a task's train split."),
    seed: int = typer.Option(0, "--seed", help="Seed for item sampling, few-shot exemplars, sampling, bootstrap."),
    convention: str = typer.Option("ayakit", "--convention",
                                   help="How HF models score choices: ayakit (as the trainer tokenises: eos after "
                                        "seq2seq continuations) or lm-eval (lm-evaluation-harness's convention, for "
                                        "numbers comparable with it: also its benchmark prompts and splits)."),
    engine: str = typer.Option("hf", "--engine", help="Engine of a local model: " + ENGINE_HELP),
    compute_type: str = typer.Option(None, "--compute-type",
                                     help="ctranslate2 only: float32 or int8 on CPU, float16, int8_float16 or "
                                          "float32 on GPU (default: float32 on CPU, float16 on GPU; float32 gives "
                                          "HF's greedy outputs; int8 is faster and close, not identical)."),
) -> None:
    """Evaluate MODEL on a suite, named tasks or task files; write <task>.jsonl, summary.json and a manifest; print a
    per-tier table, then every task skipped and every variety left out (--strict: exit 1 if any)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ayakit.eval.harness import evaluate

    if normalization not in ("none", "token", "byte"):
        raise typer.BadParameter(f"{normalization!r}: use none, token or byte", param_hint="--normalization")
    if convention not in ("ayakit", "lm-eval"):
        raise typer.BadParameter(f"{convention!r}: use ayakit or lm-eval", param_hint="--convention")
    check_engine(engine, compute_type)  # before any model or data is read
    if engine != "hf" and model.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{model} is an endpoint: it generates as it is (--engine {engine} is for local "
                                 "models)", param_hint="--engine")
    out = out or _default_out(model)
    console = Console()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        ids: dict[str, int] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in ids:
                ids[name] = bar.add_task(name, total=total)
            bar.update(ids[name], completed=done, total=total)

        from ayakit.models import load_backend

        backend: Any = model
        if convention != "ayakit" and not model.startswith(("http://", "https://")):
            backend = load_backend(model, engine=engine, batch_size=batch_size, convention=convention,
                                   compute_type=compute_type)
        summary = evaluate(backend, out, suite=suite, tasks=_split(tasks), task_dir=task_dir,
                           languages=_split(languages), prompts=prompts, max_items=max_items, batch_size=batch_size,
                           normalization=normalization, num_fewshot=num_fewshot, data_dir=data_dir, seed=seed,
                           progress=progress, max_new_tokens=max_new_tokens, greedy=greedy, temperature=temperature,
                           rollup=rollup, prompt_ids=_split(prompt_ids), engine=engine,
                           compute_type=compute_type)
    console.print(tier_table(summary))
    for name, t in summary["tasks"].items():
        if len(t["by_language"]) <= 12:  # a handful of languages: show each (all of them are in summary.json)
            langs = ", ".join(f"{lang} {_fmt(v['score'])}" for lang, v in t["by_language"].items())
            console.print(f"{name} per language: {langs}", highlight=False)
    for note in summary["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    ran, skipped = summary["tasks_run"], summary["skipped"]
    console.print(f"ran {len(ran)} task(s): {', '.join(ran)}" + (f"; skipped {len(skipped)}: "
                                                                  f"{', '.join(s['task'] for s in skipped)}"
                                                                  if skipped else ""), highlight=False)
    console.print(f"results: {out}/summary.json and {out}/<task>.jsonl")
    if strict and summary["notes"]:
        console.print(f"[red]--strict: {len(summary['notes'])} warning(s) above[/]")
        raise typer.Exit(1)


@app.command("tasks")
def tasks_cmd(
    task_dir: Path = typer.Option(None, "--task-dir", help="Also list the task files (*.yaml) of this folder."),
    tasks: list[str] = typer.Option(None, "--tasks", "-t", help="Also list these task files."),
) -> None:
    """List every task: name, kind, metric, languages and where its data is expected; then the suites."""
    from ayakit.eval.tasks import embedded_tasks, load_task_file, registry, suites
    from ayakit.eval.tasks.selection import Selection
    from ayakit.eval.tasks.spec import task_files

    found = dict(registry())
    try:
        found.update(embedded_tasks(Selection(tags=("eng-Latn",)), 1, 1, 0))
    except Exception as exc:  # noqa: BLE001 - listing goes on without the embedded families
        Console().print(f"[yellow]note:[/] embedded tasks not listed ({exc})")
    files = [*(task_files(task_dir) if task_dir else []), *(_split(tasks) or [])]
    for path in files:
        task = load_task_file(path)
        found[task.name] = task
    table = Table(title="tasks (`ayakit eval MODEL --tasks NAME` or `--tasks path/to/task.yaml`)")
    for col in ("task", "kind", "metric", "languages", "data expected at"):
        table.add_column(col, overflow="fold")
    for name, t in found.items():
        table.add_row(name, t.kind, t.metric, t.languages, t.where)
    console = Console()
    console.print(table)
    for name, spec in suites().items():
        console.print(f"suite {name}: {spec.get('description', '')}", highlight=False)


@app.command("compare")
def compare_cmd(
    dirs: list[Path] = typer.Argument(..., help="Directories holding summary.json and <task>.jsonl, or run "
                                                "directories (their eval/*/)."),
    markdown: Path = typer.Option(None, "--markdown", help="Also write the comparison as Markdown to this file."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resamples."),
    width: int = typer.Option(80, "--width", min=40, help="Terminal columns the table must fit."),
) -> None:
    """Models side by side per task (the paper's Table 5), per resource tier (Table 7) and overall.

    Each difference is a paired bootstrap on the items both models answered, with its 95% interval; a model is
    marked the winner (*) only where it is significantly better than every other. Tasks, languages or items that
    not every model has are left out of the comparison and listed as warnings.
    """
    from ayakit.eval.compare import compare_dirs, to_markdown, to_text
    from ayakit.io import write_text_atomic

    comp = compare_dirs(dirs, seed=seed)
    console = Console(width=max(width, 40))
    console.print(to_text(comp, width), highlight=False, soft_wrap=True)
    if markdown:
        write_text_atomic(markdown, to_markdown(comp))
        console.print(f"written: {markdown}")
