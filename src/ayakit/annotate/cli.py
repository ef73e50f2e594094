"""`ayakit annotate ...`: serve the app, add people, load work, export annotations, human-evaluation agreement."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ayakit.annotate.db import DEFAULT_URL, ENV_URL

app = typer.Typer(add_completion=False, no_args_is_help=True, help=(
    "The participatory annotation and human-evaluation web app: people write, edit, rate and compare in their "
    f"languages. Every command takes --db (default {DEFAULT_URL}, or ${ENV_URL})."))

DB_HELP = (f"Database URL: sqlite:///path.db (default {DEFAULT_URL}) or postgresql://user:pass@host/db for a "
           f"team; ${ENV_URL} sets the default.")


def _db(url: str | None):  # noqa: ANN202
    from ayakit.annotate.db import default_url, open_db

    return open_db(url or default_url())


@app.command()
def serve(
    db: str = typer.Option(None, "--db", help=DB_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 to accept other machines)."),
    port: int = typer.Option(8080, "--port", help="TCP port to listen on."),
    secure_cookies: bool = typer.Option(False, "--secure-cookies",
                                        help="Mark cookies Secure (use when served over HTTPS by a proxy)."),
) -> None:
    """Run the web app (upgrades the database schema to the newest revision first)."""
    import uvicorn

    from ayakit.annotate.app import create_app

    web = create_app(factory=_db(db), secure_cookies=secure_cookies)
    Console().print(f"annotate: http://{host}:{port}/  (sign in with a token from `ayakit annotate add-user`)")
    uvicorn.run(web, host=host, port=port, log_level="info", proxy_headers=False)


@app.command("add-user")
def add_user(
    name: str = typer.Argument(..., help="The person's name (unique)."),
    languages: str = typer.Option(..., "--languages", "-l",
                                  help="Comma-separated languages they annotate in, any code: swa,ara or sw,ar."),
    admin: bool = typer.Option(False, "--admin", help="May see the progress page of everyone."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Create a person and print their sign-in token (once: only its hash is stored)."""
    from ayakit.annotate import auth

    with _db(db)() as s:
        user, token = auth.add_user(s, name, languages, admin=admin)
    Console(stderr=True).print(f"added {user.name} ({', '.join(user.language_codes)}"
                               f"{', admin' if admin else ''}); their token, shown only now:")
    typer.echo(token)


@app.command("rotate-token")
def rotate_token(
    name: str = typer.Argument(..., help="The person whose token is replaced."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Give a person a new token; the old one and their sessions stop working."""
    from ayakit.annotate import auth

    with _db(db)() as s:
        token = auth.rotate_token(s, name)
    Console(stderr=True).print(f"new token for {name}, shown only now:")
    typer.echo(token)


@app.command()
def load(
    path: Path = typer.Argument(..., help="A mixture run dir (runs/<name>, reads data/shards-*.parquet), a folder, "
                                          "or a JSONL/Parquet file of examples or of judge answer pairs."),
    activity: str = typer.Option(..., "--activity", "-a", help="edit or rate (examples), compare (answer pairs)."),
    languages: str = typer.Option(None, "--languages", "-l", help="Only these languages (comma-separated)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Load at most this many new rows."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Load work: examples to edit or rate, or two models' answers to compare (rows already loaded are skipped)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ayakit.annotate import auth
    from ayakit.annotate.load import count_rows, find_files
    from ayakit.annotate.load import load as load_rows

    keep = auth.parse_languages(languages) if languages else None
    total = count_rows(find_files(path, activity))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with _db(db)() as s, Progress(*columns, transient=True) as bar:
        task = bar.add_task(f"loading for {activity}", total=total)
        result = load_rows(s, path, activity, languages=keep, limit=limit,
                           progress=lambda n: bar.advance(task, n))
    Console().print(f"loaded {result.added} new for {activity} ({result.skipped} already there) "
                    f"from {len(result.files)} file(s)")


@app.command()
def export(
    out: Path = typer.Argument(..., help="The Parquet file to write (a manifest goes beside it)."),
    fmt: str = typer.Option("aya-dataset", "--format", "-f",
                            help="aya-dataset: inputs, targets, language, language_code, annotation_type, user_id "
                                 "(+ approval_ratio, votes_up, votes_down); examples: ayakit's Example schema."),
    min_approval: float = typer.Option(None, "--min-approval", min=0.0, max=1.0,
                                       help="Leave out annotations voted below this approval ratio."),
    languages: str = typer.Option(None, "--languages", "-l", help="Only these languages (comma-separated)."),
    license: str = typer.Option("unknown", "--license", help="Licence written in the examples format."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Export submitted annotations (originals and re-annotations) as a recipe-ready Parquet file."""
    from ayakit.annotate import auth
    from ayakit.annotate.export import FORMATS
    from ayakit.annotate.export import export as do_export
    from ayakit.errors import DataError

    if fmt not in FORMATS:
        raise DataError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    keep = auth.parse_languages(languages) if languages else None
    with _db(db)() as s:
        result = do_export(s, out, fmt, min_approval=min_approval, languages=keep, license=license)
    console = Console()
    console.print(f"wrote {result.rows} annotations to {result.path}")
    if result.approval:
        table = Table(title="approval from votes")
        for col in ("group", "up", "down", "approval"):
            table.add_column(col)
        for group, v in result.approval.items():
            ratio = "" if v["approval_ratio"] is None else f"{v['approval_ratio']:.2f}"
            table.add_row(group, str(v["up"]), str(v["down"]), ratio)
        console.print(table)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


@app.command()
def agreement(
    judge: Path = typer.Option(None, "--judge", help="An `ayakit judge` JSONL/Parquet of verdicts to compare with "
                                                     "(default: the verdicts loaded with the pairs)."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write the report as JSON here."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=100, help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Human win rates per language (95% CIs), inter-annotator agreement, and agreement with the LLM judge."""
    from ayakit.annotate.agreement import report
    from ayakit.io import write_json_atomic

    with _db(db)() as s:
        rep = report(s, judge, n_boot=bootstrap, seed=seed)
    console = Console()
    table = Table(title=f"human win rates ({rep['ratings']} ratings, {rep['incomprehensible']} incomprehensible)")
    for col in ("model", "vs", "language", "pairs", "ratings", "win %", "95% CI", "tie %", "loss %", "judge win %"):
        table.add_column(col)
    for r in rep["win_rates"]:
        table.add_row(r["model"], r["opponent"], r["language"], str(r["pairs"]), str(r["ratings"]),
                      _pct(r["win_rate"]), f"{_pct(r['ci95'][0])}-{_pct(r['ci95'][1])}", _pct(r["tie_rate"]),
                      _pct(r["loss_rate"]), _pct(r["judge_win_rate"]))
    console.print(table)
    table = Table(title="agreement")
    for col in ("language", "doubly rated", "raw agreement %", "Cohen's kappa", "rated by judge", "human=judge %"):
        table.add_column(col)
    langs = sorted(set(rep["inter_annotator"]) | set(rep["human_vs_judge"]), key=lambda k: (k == "all", k))
    for lang in langs:
        ia, hj = rep["inter_annotator"].get(lang, {}), rep["human_vs_judge"].get(lang, {})
        kappa = ia.get("kappa")
        table.add_row(lang, str(ia.get("pairs", 0)), _pct(ia.get("raw_agreement")),
                      "-" if kappa is None else f"{kappa:.2f}", str(hj.get("ratings", 0)), _pct(hj.get("agreement")))
    console.print(table)
    if out:
        write_json_atomic(out, rep)
        console.print(f"wrote {out}")
