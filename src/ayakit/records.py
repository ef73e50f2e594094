"""Example (one instruction pair with provenance), EvalItem, and their Arrow schemas."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields

import pyarrow as pa

KINDS = ("human", "templated", "translated", "synthetic", "safety")
SPLITS = ("train", "validation", "test")


@dataclass
class Example:
    """One instruction pair; field names follow the Aya datasets so their files load as they are."""

    inputs: str
    targets: str
    language: str  # language tag: ISO 639-3 + script (+ region), ayakit.languages.tag
    script: str = ""  # ISO 15924
    source: str = ""  # the recipe's source name
    dataset: str = ""  # the dataset inside the source
    task: str = ""  # task family
    template: str = ""  # template id
    kind: str = "templated"  # one of KINDS
    license: str = "unknown"
    split: str = "train"
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = example_id(self.source, self.dataset, self.language, self.inputs, self.targets)

    def to_dict(self) -> dict:
        return asdict(self)


EXAMPLE_FIELDS = tuple(f.name for f in fields(Example))
EXAMPLE_SCHEMA = pa.schema([pa.field(name, pa.string(), nullable=False) for name in EXAMPLE_FIELDS])


def example_id(*parts: str) -> str:
    """A stable id from the parts that make an example unique."""
    h = hashlib.blake2b(digest_size=12)
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


def examples_to_table(examples: list[Example]) -> pa.Table:
    """A pyarrow Table in EXAMPLE_SCHEMA."""
    cols = {name: [getattr(e, name) for e in examples] for name in EXAMPLE_FIELDS}
    return pa.Table.from_pydict(cols, schema=EXAMPLE_SCHEMA)


def table_to_examples(table: pa.Table) -> list[Example]:
    """Examples from a table with (at least) the EXAMPLE_SCHEMA columns."""
    rows = table.select(list(EXAMPLE_FIELDS)).to_pylist()
    return [Example(**r) for r in rows]


@dataclass
class EvalItem:
    """One evaluation item under one prompt: a choice item (choices + gold) or a generation item (targets)."""

    id: str  # stable across prompts: the underlying item
    task: str
    language: str
    prompt_id: str
    inputs: str
    targets: list[str] = field(default_factory=list)  # references for generation; gold text for choice items
    choices: list[str] | None = None
    gold: int | None = None
    meta: dict = field(default_factory=dict)
