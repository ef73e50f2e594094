"""Render a Report to self-contained HTML (inline CSS, PNGs beside it) and to Markdown, from packaged Jinja templates."""

from __future__ import annotations

import functools
import re
import time
from importlib import resources

import jinja2

from ayakit import __version__
from ayakit.report.model import Report, Table

_NUMERIC = re.compile(r"^[+\-−]?[\d,]*\.?\d+(%|×)?( \[.*\])?$")


def _md_cell(cell: str, bold: bool) -> str:
    text = str(cell).replace("|", "\\|").replace("\n", " ")
    return f"**{text}**" if bold and text else text


def md_table(table: Table) -> str:
    """A GitHub-flavoured Markdown pipe table."""
    lines = ["| " + " | ".join(_md_cell(c, False) for c in table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    for i, row in enumerate(table.rows):
        lines.append("| " + " | ".join(_md_cell(c, (i, j) in table.bold) for j, c in enumerate(row)) + " |")
    return "\n".join(lines)


@functools.cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ayakit.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["md_table"] = md_table
    env.tests["numeric_cell"] = lambda cell: bool(_NUMERIC.match(str(cell)))
    return env


def _context(report: Report) -> dict:
    css = resources.files("ayakit.report").joinpath("templates/style.css").read_text(encoding="utf-8")
    return {"report": report, "css": css, "version": __version__,
            "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def to_html(report: Report) -> str:
    """The report as one HTML page: no external scripts, fonts or stylesheets."""
    return _env().get_template("index.html.j2").render(**_context(report))


def to_markdown(report: Report) -> str:
    """The report as Markdown with the same content (images referenced beside it)."""
    text = _env().get_template("report.md.j2").render(**_context(report))
    return re.sub(r"\n{3,}", "\n\n", text)
