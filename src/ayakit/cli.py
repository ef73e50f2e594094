"""`ayakit <stage>`: the root command; each stage's commands live in its own package and load on first use."""

from __future__ import annotations

import importlib
import sys

import click
import typer
import typer.core
from rich.console import Console
from rich.table import Table

# name -> ("module:attribute", one-line help). The attribute is a typer.Typer (a group of commands) or a
# plain function (one command). Loading on first use keeps `ayakit --help` fast (no torch import).
COMMANDS: dict[str, tuple[str, str]] = {
    "languages": ("ayakit.cli:languages_cmd", "Look up language codes, or list a language set (aya-101) by tier."),
    "data": ("ayakit.data.cli:app", "Build, plan, inspect and sample the weighted instruction mixture."),
    "tokenizer": ("ayakit.train.cli:tokenizer_app", "Train a tokenizer on a mixture; fertility per language."),
    "tokenize": ("ayakit.train.cli:tokenize_cmd", "Tokenise a run's mixture once into memory-mapped token shards."),
    "train": ("ayakit.train.cli:train_cmd", "Finetune a seq2seq or decoder model on a mixture."),
    "eval": ("ayakit.eval.cli:app", "Evaluate a model per language and resource tier; compare runs."),
    "run": ("ayakit.runner:run_cmd", "Run a recipe end to end: data, tokenizer, baseline, train, eval, report."),
    "ablate": ("ayakit.ablate:ablate_cmd", "Train recipe variants under one budget and compare them."),
    "report": ("ayakit.report.cli:report_cmd", "Write the HTML and Markdown report of a run."),
    "serve": ("ayakit.serve.cli:serve_cmd", "Serve a model over an OpenAI-compatible HTTP API."),
    "chat": ("ayakit.serve.cli:chat_cmd", "Chat with a model in the terminal, streaming tokens."),
    "judge": ("ayakit.eval.judge:judge_cmd", "LLM-judge win rates of two models, per language."),
    "translate": ("ayakit.data.translate:translate_cmd", "Translate a source into other languages, auditable."),
    "safety": ("ayakit.safety.cli:app", "Toxicity, bias and harmful-prompt evaluation; safety distillation."),
    "annotate": ("ayakit.annotate.cli:app", "The annotation and human-evaluation web app."),
}


class LazyGroup(typer.core.TyperGroup):
    """A click group whose subcommands are imported when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        target, help_text = COMMANDS[name]
        module_name, attr = target.split(":")
        obj = getattr(importlib.import_module(module_name), attr)
        if isinstance(obj, typer.Typer):
            cmd = typer.main.get_group(obj) if obj.registered_groups or len(obj.registered_commands) != 1 \
                or obj.registered_callback else typer.main.get_command(obj)
        else:
            sub = typer.Typer(add_completion=False)
            sub.command(name=name, help=None if obj.__doc__ else help_text)(obj)  # the docstring explains more
            cmd = typer.main.get_command(sub)
        cmd.name = name
        if not cmd.help:
            cmd.help = help_text
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_text) for name, (_, help_text) in COMMANDS.items()])


app = typer.Typer(
    cls=LazyGroup,
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help for the root, so listing commands imports none of them
    help="ayakit: build a multilingual instruction mixture, finetune, evaluate per language and tier, report.",
)


@app.callback()
def _root() -> None:
    """ayakit: the Aya-101 recipe, from one recipe file, at any scale."""


def languages_cmd(
    codes: list[str] = typer.Argument(None, help="Codes to look up, in any spelling: kin, sw, srp_Latn, zh-Hant-TW, "
                                                 "Kinyarwanda. Without codes: list a set."),
    set_name: str = typer.Option("aya-101", "--set", help="The language set to list (aya-101: the paper's 101)."),
    tier: str = typer.Option(None, "--tier", help="Only this resource tier: high, mid or low."),
) -> None:
    """Look up language codes (their normalised tag, name, tier, the paper's row they roll up into) or list a set.

    Any ISO 639-3 language is a language here; the Aya paper's 101 are a named set with the paper's resource tiers,
    and a language outside the set has the tier `unlisted`. `ayakit languages kin yue srp_Latn`;
    `ayakit languages --set aya-101 --tier low`."""
    from ayakit import languages as L

    console = Console()
    if codes:
        table = Table(title="Language codes")
        for col in ("code", "tag", "name", "tier", f"{set_name} row", "FLORES-200"):
            table.add_column(col)
        for code in codes:
            tag = L.tag(code)
            lang = L.parse(tag).language
            flores = [c for c in L.flores_codes() if L.tag(c).split("-")[0] == lang]
            table.add_row(code, tag, L.display_name(tag), L.tier(tag),
                          L.rollup(tag) if L.in_set(tag, set_name) else "– (not in the set)", ",".join(flores) or "–")
        console.print(table)
        return
    if tier is not None and tier not in L.SET_TIERS:
        raise typer.BadParameter(f"--tier {tier!r}: choose one of {', '.join(L.SET_TIERS)}")
    try:
        tags = L.language_set(set_name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    rows = [(t, L.get(t)) for t in tags if tier is None or L.tier(t) == tier]
    table = Table(title=f"{set_name} ({len(rows)}{', ' + tier if tier else ''})")
    for col in ("tag", "code", "name", "native", "scripts", "tier", "flores", "iso1"):
        table.add_column(col)
    for tag, lang in rows:
        table.add_row(tag, lang.code, lang.name, lang.native_name, ",".join(lang.scripts), lang.tier,
                      ",".join(lang.flores), lang.iso1 or "")
    console.print(table)


def main() -> None:
    """Entry point: user errors (bad recipe, unknown language, missing file) are one line, not a traceback."""
    from ayakit.errors import UserError

    try:
        app()
    except UserError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
