"""`ayakit data`: build, plan, inspect and sample the weighted instruction mixture."""

from __future__ import annotations

import random
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Build, plan, inspect and sample the weighted instruction mixture.")

STAGE_HELP = {"filter": "reading and filtering sources", "minhash": "MinHash near-dedup",
              "dedup": "exact dedup", "plan": "planning the mixture", "scatter": "scattering copies",
              "gather": "writing shards", "finalize": "writing stats and manifest"}


def _console() -> Console:
    return Console()


def human(n: float) -> str:
    """2500000 -> '2.5M', 375000 -> '375k'."""
    if abs(n) >= 1e6:
        return f"{n / 1e6:g}M"
    if abs(n) >= 1e3:
        return f"{n / 1e3:g}k"
    return f"{n:g}"


def _load(recipe: Path, overrides: list[str] | None):
    from ayakit.recipe import load_recipe

    return load_recipe(recipe, overrides or [])


@app.command("build")
def build_cmd(
    recipe: Path = typer.Argument(..., help="Recipe YAML file (its `data` section is used)."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. data.budget=5000 seed=7."),
    run_dir: Path = typer.Option(None, "--run-dir", help="Run directory (default: runs/<recipe name>)."),
    executor: str = typer.Option(None, "--executor",
                                 help="datatrove executor: local, slurm or ray (the optional ray extra); default: the recipe's data.executor (local)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even when the manifest matches the inputs."),
    strict: bool = typer.Option(False, "--strict",
                                help="Exit non-zero when the build warns: rows whose language code names no "
                                     "language, malformed rows skipped, a requested language or source that "
                                     "yields nothing, a source repeated more than 10x."),
) -> None:
    """Build the mixture: sources -> filters -> dedup -> weighted sample -> parquet shards + stats.json.

    Ends with what was dropped (per reason and language), skipped and heavily repeated; the same summary is in
    data/stats.json (`summary`), the manifest (`warnings`) and the report."""
    from ayakit.data import pipeline
    from ayakit.io import write_text_atomic

    rec = _load(recipe, overrides)
    if executor is not None and executor not in ("local", "slurm", "ray"):
        raise typer.BadParameter(f"--executor {executor!r}: choose local, slurm or ray")
    out = run_dir or Path("runs") / rec.name
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "recipe.yaml", rec.dump())
    console = _console()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} stages"), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("data build", total=None)

        def progress(stage: str, index: int, total: int) -> None:
            bar.update(task, total=total, completed=index,
                       description=f"data: {STAGE_HELP.get(stage, stage)}")

        data_dir = pipeline.build(rec, out, force=force, executor=executor, progress=progress)
        bar.update(task, completed=bar.tasks[0].total or 0, description="data: done")
    if (executor or rec.data.executor) == "slurm":
        console.print(f"submitted the data build to Slurm; the mixture appears in {data_dir}")
        return
    stats = pipeline.load_stats(out)
    console.print(f"[bold]{stats['total']:,}[/] examples in {stats['shards']} shards, "
                  f"{len(stats['counts']['language'])} language varieties -> {data_dir}")
    print_summary(console, stats, strict)


def print_summary(console: Console, stats: dict, strict: bool = False) -> None:
    """Print the build's drops, skips and repeats; with strict, exit 1 when it has warnings."""
    from ayakit.data.summary import build_summary, summary_lines

    summary = stats.get("summary") or build_summary(stats, None)
    for line in summary_lines(summary):
        console.print(Text(line, style="yellow" if line.startswith("warning") else "dim"))
    if strict and summary["warnings"]:
        console.print(f"[red]--strict: {len(summary['warnings'])} warning(s)[/]")
        raise typer.Exit(1)


def _share_table(title: str, requested: dict[str, float] | None, realised: dict[str, float],
                 counts: dict[str, int], extra: dict[str, str] | None = None) -> Table:
    table = Table(title=title)
    table.add_column("name")
    table.add_column("examples", justify="right")
    if requested is not None:
        table.add_column("requested", justify="right")
    table.add_column("realised", justify="right")
    if extra is not None:
        table.add_column("repetition", justify="right")
    names = list(dict.fromkeys([*(requested or {}), *counts]))
    for name in names:
        row = [name, f"{counts.get(name, 0):,}"]
        if requested is not None:
            row.append(f"{100 * requested.get(name, 0):.2f}%")
        row.append(f"{100 * realised.get(name, 0):.2f}%")
        if extra is not None:
            row.append(extra.get(name, ""))
        table.add_row(*row)
    return table


@app.command("stats")
def stats_cmd(
    run_dir: Path = typer.Argument(..., help="Run directory holding data/stats.json."),
    top: int = typer.Option(30, "--top", help="Languages to list (most examples first); 0 lists all."),
) -> None:
    """Requested vs realised shares by source, kind, tier and language; filter counts."""
    from ayakit.data.pipeline import load_stats

    s = load_stats(run_dir)
    console = _console()
    console.print(f"[bold]{s['total']:,}[/] examples (budget {s['budget']:,}, seed {s['seed']})")
    rep = {k: f"{v:.2f}x" for k, v in s["repetition"].items()}
    console.print(_share_table("sources", s["requested"]["source"], s["realised"]["source"],
                               s["counts"]["source"], rep))
    for key in ("kind", "tier"):
        console.print(_share_table(key, None, s["realised"][key], s["counts"][key]))
    langs = dict(list(s["counts"]["language"].items())[: top or None])
    console.print(_share_table(f"languages ({len(s['counts']['language'])}; top {len(langs)})", None,
                               s["realised"]["language"], langs))
    ft = Table(title="filters (rows removed)")
    ft.add_column("filter")
    ft.add_column("removed", justify="right")
    ft.add_column("most removed in")
    for name, f in s["filters"].items():
        worst = sorted(f["by_language"].items(), key=lambda kv: -kv[1])[:5]
        note = ", ".join(f"{k} {v:,}" for k, v in worst)
        if f.get("unchecked"):
            note += f" ({f['unchecked']:,} too short to check)"
        ft.add_row(name, f"{f['removed']:,}", note)
    console.print(ft)
    if s["skipped_sources"]:
        for name, why in s["skipped_sources"].items():
            console.print(f"[yellow]skipped source {name}[/]: {why}")
    bad = {k: v for k, v in s["errors"].items() if v}
    if bad:
        console.print(f"[yellow]malformed rows skipped[/]: {bad}")
    print_summary(console, s)


@app.command("plan")
def plan_cmd(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides."),
    sizes: bool = typer.Option(True, "--sizes/--no-sizes",
                               help="Ask each source for its dataset sizes when that is cheap (file metadata), "
                                    "to plan the dataset level too; never reads the examples."),
) -> None:
    """The allocation of the budget per source and dataset, without reading the data."""
    from ayakit.data import mixture

    rec = _load(recipe, overrides)
    known: dict[str, dict[str, int] | None] = {}
    notes: dict[str, str] = {}
    for spec in rec.data.sources:
        known[spec.name] = None
        if not sizes:
            continue
        try:
            from ayakit.data.sources import open_source

            src = open_source(spec, rec)
            known[spec.name] = src.dataset_sizes() if not src.skipped_reason else None
            if src.skipped_reason:
                notes[spec.name] = src.skipped_reason
        except Exception as exc:  # noqa: BLE001 - a source we cannot size is planned at the source level only
            notes[spec.name] = f"sizes unknown ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    p = mixture.plan(rec, known)
    console = _console()
    table = Table(title=f"{rec.name}: budget {rec.data.budget:,} ({human(rec.data.budget)})")
    for col, justify in (("source", "left"), ("weight", "right"), ("share", "right"), ("examples", "right"),
                         ("", "right"), ("available", "right"), ("repetition", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    reps = p.repetition()
    for spec in rec.data.sources:
        n = p.sources[spec.name]
        avail = sum(known[spec.name].values()) if known.get(spec.name) else None
        table.add_row(spec.name, f"{spec.weight:g}", f"{100 * p.requested[spec.name]:.2f}%", f"{n:,}", human(n),
                      f"{avail:,}" if avail is not None else "?",
                      f"{reps[spec.name]:.2f}x" if avail else "")
    console.print(table)
    for name, per_ds in p.datasets.items():
        dt = Table(title=f"{name}: datasets")
        for col in ("dataset", "available", "examples", "repetition"):
            dt.add_column(col, justify="left" if col == "dataset" else "right")
        for ds, n in sorted(per_ds.items(), key=lambda kv: -kv[1]):
            avail = known[name][ds]
            dt.add_row(ds, f"{avail:,}", f"{n:,}", f"{n / avail:.2f}x" if avail else "")
        console.print(dt)
    for name, note in notes.items():
        console.print(f"[dim]{name}: {note}[/]")


@app.command("sample")
def sample_cmd(
    run_dir: Path = typer.Argument(..., help="Run directory with a built mixture."),
    language: str = typer.Option(None, "--language", "-l",
                                 help="Only this language or variety (any code: sw, swh_Latn, zho-Hant; `zho` shows "
                                      "every script of Chinese, never Cantonese)."),
    source: str = typer.Option(None, "--source", help="Only this source."),
    n: int = typer.Option(5, "-n", "--n", help="How many examples to show."),
    seed: int = typer.Option(0, "--seed", help="Which examples: the same seed shows the same ones."),
) -> None:
    """Print a few examples of the mixture, with their provenance."""
    import pyarrow.compute as pc

    from ayakit.data.pipeline import read_mixture
    from ayakit.errors import DataError
    from ayakit.languages import matches, parse

    ds = read_mixture(run_dir)
    expr = None
    if language:
        parse(language)  # an unknown code is an error that names the closest
        tags = pc.unique(ds.to_table(columns=["language"]).column("language")).to_pylist()
        expr = pc.field("language").isin([t for t in tags if matches(language, t)])
    if source:
        e = pc.field("source") == source
        expr = e if expr is None else expr & e
    table = ds.to_table(filter=expr) if expr is not None else ds.to_table()
    if table.num_rows == 0:
        raise DataError(f"{run_dir}: no examples" + (f" in language {language!r}" if language else "")
                        + (f" from source {source!r}" if source else ""))
    rng = random.Random(seed)
    rows = table.take(sorted(rng.sample(range(table.num_rows), min(n, table.num_rows)))).to_pylist()
    console = _console()
    for r in rows:
        console.rule(Text(f"{r['language']} · {r['source']}/{r['dataset']} · {r['kind']} · {r['license']}"))
        console.print(Text.assemble(("inputs: ", "bold"), r["inputs"]))
        console.print(Text.assemble(("targets: ", "bold"), r["targets"]))
