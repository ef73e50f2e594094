"""`ayakit tokenizer train|stats RUN_DIR` and `ayakit train RUN_DIR`."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ayakit.io import read_json

tokenizer_app = typer.Typer(add_completion=False, no_args_is_help=True,
                            help="Train a SentencePiece tokenizer on a run's mixture; fertility per language.")

RUN_DIR_HELP = "Run directory: holds recipe.yaml and data/shards-*.parquet written by `ayakit data build`."
RECIPE_HELP = "Recipe file to use instead of RUN_DIR/recipe.yaml."
OVERRIDES_HELP = "Recipe overrides as key=value, e.g. train.lr=1e-3 train.steps=200 model.preset=micro."


def _recipe(run_dir: Path, recipe: Path | None, overrides: list[str] | None):
    from ayakit.recipe import RecipeError, load_recipe

    path = recipe or run_dir / "recipe.yaml"
    if not path.is_file():
        raise RecipeError(f"no recipe at {path}: run `ayakit data build` first or pass --recipe")
    return load_recipe(path, overrides or [])


@tokenizer_app.command("train")
def tokenizer_train(
    run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
    recipe: Path = typer.Option(None, "--recipe", "-r", help=RECIPE_HELP),
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
) -> None:
    """Train the tokenizer on the mixture into RUN_DIR/tokenizer (or save the pretrained one there)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ayakit.train.tokenizer import build_tokenizer, fertility

    rec = _recipe(run_dir, recipe, overrides)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()) as progress:
        path = build_tokenizer(rec, run_dir, progress)
        result = fertility(path, run_dir)
    Console().print(f"tokenizer: {path}")
    _print_fertility(result)
    manifest = read_json(path / "manifest.json")
    if manifest.get("left_out_by_max_sentences"):
        Console().print(f"trained on {manifest['sentences']:,} of {manifest['distinct_texts']:,} distinct texts "
                        f"(tokenizer.max_sentences; every language took turns): "
                        f"{manifest['left_out_by_max_sentences']:,} left out")
    wanted = manifest.get("requested_vocab_size")
    if wanted and manifest.get("vocab_size", wanted) < wanted:
        Console().print(f"[yellow]warning:[/] tokenizer.vocab_size={wanted:,} asked, SentencePiece found "
                        f"{manifest['vocab_size']:,} pieces in this mixture's {manifest['distinct_texts']:,} distinct "
                        "texts (a small mixture supports fewer; words then split into more pieces)")


@tokenizer_app.command("stats")
def tokenizer_stats(
    run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
    tokenizer: Path = typer.Option(None, "--tokenizer", "-t",
                                   help="Tokenizer directory to measure (default: RUN_DIR/tokenizer)."),
    tier: str = typer.Option(None, "--tier", help="Only languages of this tier: high, mid or low."),
) -> None:
    """Fertility on the mixture: tokens per character and per word, per language and per resource tier."""
    from ayakit.train.tokenizer import fertility

    result = fertility(tokenizer or run_dir / "tokenizer", run_dir)
    _print_fertility(result, tier)


def _print_fertility(result: dict, tier: str | None = None) -> None:
    console = Console()
    table = Table(title="Fertility per language (words: characters for zho, jpn, tha, khm, lao, mya)")
    for col in ("language", "tier", "tokens/char", "tokens/word", "byte fallback", "texts"):
        table.add_column(col, justify="left" if col in ("language", "tier") else "right")
    rows = sorted(result["languages"].items(), key=lambda kv: -kv[1]["tokens_per_word"])
    for code, r in rows:
        if tier and r["tier"] != tier:
            continue
        table.add_row(code, r["tier"], f"{r['tokens_per_char']:.3f}", f"{r['tokens_per_word']:.2f}",
                      f"{100 * r['byte_fallback_fraction']:.2f}%", str(r["n"]))
    console.print(table)
    tiers = Table(title="Fertility per tier (mean over languages)")
    for col in ("tier", "languages", "tokens/char", "tokens/word", "byte fallback"):
        tiers.add_column(col)
    for name, r in result["tiers"].items():
        tiers.add_row(name, str(r["languages"]), f"{r['tokens_per_char']:.3f}", f"{r['tokens_per_word']:.2f}",
                      f"{100 * r['byte_fallback_fraction']:.2f}%")
    console.print(tiers)


def train_cmd(
    run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
    recipe: Path = typer.Option(None, "--recipe", "-r", help=RECIPE_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest good checkpoint in "
                                "RUN_DIR/model/checkpoints (a corrupt one is kept aside and an older one used)."),
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
) -> None:
    """Finetune the recipe's model on RUN_DIR's mixture with exact packing; writes RUN_DIR/model.

    Trains the tokenizer first when RUN_DIR/tokenizer is missing. Launch several processes with
    `accelerate launch -m ayakit.cli train RUN_DIR` (configs in recipes/accelerate/).
    """
    from ayakit.io import read_json
    from ayakit.train.loop import train

    rec = _recipe(run_dir, recipe, overrides)
    out = train(rec, run_dir, resume=resume)
    manifest = out / "manifest.json"
    if manifest.is_file() and os.environ.get("RANK", "0") == "0":  # one summary, not one per process
        m = read_json(manifest)
        Console().print(
            f"model: {out}  steps {m['steps']}/{m['total_steps']}"
            + (f"  train loss {m['final_train_loss']:.4f}" if m.get("final_train_loss") is not None else "")
            + (f"  validation loss {m['final_val_loss']:.4f}" if m.get("final_val_loss") is not None else "")
            + f"  {m['tokens_per_s']:,.0f} tokens/s  fill {100 * m['packing']['fill_rate']:.1f}%"
            + f"  {m['packing']['examples_per_row']:.2f} examples/row")


def tokenize_cmd(
    run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
    recipe: Path = typer.Option(None, "--recipe", "-r", help=RECIPE_HELP),
    executor: str = typer.Option(None, "--executor", help="local, slurm or ray (default: the recipe's "
                                 "data.executor); one task per mixture shard, data.workers at once locally."),
    force: bool = typer.Option(False, "--force", help="Redo every token shard even when the manifest matches."),
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
) -> None:
    """Tokenise RUN_DIR's mixture once into token shards (RUN_DIR/tokens) that training memory-maps.

    Each shard is a flat token file plus an index of example boundaries and the prompt/target split; the
    held-out validation slice goes to its own shards. Trains the tokenizer first when RUN_DIR/tokenizer is
    missing. Skipped when tokens/manifest.json matches the mixture, tokenizer and lengths; a killed run redoes
    only its unfinished tasks.
    """
    from ayakit.io import read_json
    from ayakit.train.tokenize import token_totals, tokenize
    from ayakit.train.tokenizer import build_tokenizer

    rec = _recipe(run_dir, recipe, overrides)
    if not (Path(run_dir) / "tokenizer" / "tokenizer_config.json").is_file():
        build_tokenizer(rec, Path(run_dir))
    out = tokenize(rec, Path(run_dir), executor=executor, force=force)
    totals = token_totals(run_dir)
    for split, t in totals.items():
        Console().print(f"{split}: {t['examples']:,} examples, {t['source_tokens']:,} source + "
                        f"{t['target_tokens']:,} target tokens")
    skipped = read_json(out / "manifest.json").get("test_rows_skipped", 0)
    if skipped:
        Console().print(f"{skipped:,} rows of split 'test' skipped (never trained on)")
    Console().print(f"token shards: {out}")
