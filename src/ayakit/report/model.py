"""What a report is made of: sections of paragraphs, tables, figures and code blocks, rendered to HTML and Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    """A table of preformatted cells; `bold` holds the (row, column) cells to emphasise (winners)."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""
    bold: set[tuple[int, int]] = field(default_factory=set)


@dataclass
class Figure:
    """A PNG beside the report, referenced by its file name."""

    path: str
    caption: str


@dataclass
class Section:
    """One titled part of the report."""

    id: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    code: str | None = None


@dataclass
class Report:
    """A whole report: a title, headline lines and its sections."""

    title: str
    subtitle: str
    headline: list[str]
    sections: list[Section]
