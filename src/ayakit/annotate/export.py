"""Export submitted annotations: the Aya Dataset layout (or ayakit's Example schema), with approval from the votes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ayakit import languages as L
from ayakit.annotate.auth import public_user_id
from ayakit.annotate.db import app_secret
from ayakit.annotate.models import Annotation, Item, User, Vote
from ayakit.io import atomic_path, versions, write_json_atomic
from ayakit.records import Example, examples_to_table

FORMATS = ("aya-dataset", "examples")
# The Aya Dataset's columns (CohereForAI/aya_dataset, config default), then the vote counts.
AYA_SCHEMA = pa.schema([
    pa.field("inputs", pa.string(), nullable=False),
    pa.field("targets", pa.string(), nullable=False),
    pa.field("language", pa.string(), nullable=False),  # the language's English name
    pa.field("language_code", pa.string(), nullable=False),  # ISO 639-3
    pa.field("annotation_type", pa.string(), nullable=False),  # original-annotations | re-annotations
    pa.field("user_id", pa.string(), nullable=False),  # hashed, stable within one database
    pa.field("approval_ratio", pa.float64()),  # up / (up + down); null without votes
    pa.field("votes_up", pa.int64(), nullable=False),
    pa.field("votes_down", pa.int64(), nullable=False),
])


@dataclass
class ExportResult:
    """What an export wrote."""

    path: Path
    rows: int
    by_language: dict[str, int]
    approval: dict[str, dict[str, float | int | None]] = field(default_factory=dict)


def _ratio(up: int, down: int) -> float | None:
    return up / (up + down) if up + down else None


def vote_counts(session: Session, column) -> dict[int, tuple[int, int]]:  # noqa: ANN001
    """target id -> (thumbs up, thumbs down), for votes on annotations or on items."""
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for target, up, n in session.execute(select(column, Vote.up, func.count()).where(column.is_not(None))
                                         .group_by(column, Vote.up)):
        counts[target][0 if up else 1] += n
    return {k: (v[0], v[1]) for k, v in counts.items()}


def approval_summary(session: Session) -> dict[str, dict[str, float | int | None]]:
    """Average approval (up / all votes) by annotation type and, for loaded items, by their kind and source."""
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    ann_votes = vote_counts(session, Vote.annotation_id)
    for ann in session.scalars(select(Annotation).where(Annotation.id.in_(list(ann_votes)))):
        up, down = ann_votes[ann.id]
        groups[ann.annotation_type][0] += up
        groups[ann.annotation_type][1] += down
    item_votes = vote_counts(session, Vote.item_id)
    for item in session.scalars(select(Item).where(Item.id.in_(list(item_votes)))):
        up, down = item_votes[item.id]
        for key in (f"kind:{item.kind or 'unknown'}", f"source:{item.source or 'unknown'}"):
            groups[key][0] += up
            groups[key][1] += down
    return {k: {"up": up, "down": down, "approval_ratio": _ratio(up, down)} for k, (up, down) in sorted(groups.items())}


def export(session: Session, out: str | Path, fmt: str = "aya-dataset", min_approval: float | None = None,
           languages: list[str] | None = None, license: str = "unknown") -> ExportResult:
    """Write the submitted annotations to a Parquet file (atomically) and a manifest beside it."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    out = Path(out)
    secret = app_secret(session)
    votes = vote_counts(session, Vote.annotation_id)
    stmt = select(Annotation, User).join(User, User.id == Annotation.user_id).where(
        Annotation.status == "submitted").order_by(Annotation.id)
    rows: list[dict] = []
    for ann, user in session.execute(stmt):
        if languages and ann.language not in languages:
            continue
        up, down = votes.get(ann.id, (0, 0))
        ratio = _ratio(up, down)
        if min_approval is not None and ratio is not None and ratio < min_approval:
            continue
        rows.append({"inputs": ann.inputs, "targets": ann.targets, "language": L.info(ann.language).name,
                     "language_code": ann.language, "annotation_type": ann.annotation_type,
                     "user_id": public_user_id(secret, user), "approval_ratio": ratio, "votes_up": up,
                     "votes_down": down, "_ann": ann})
    if fmt == "aya-dataset":
        table = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "_ann"} for r in rows], schema=AYA_SCHEMA)
    else:
        table = examples_to_table([
            Example(inputs=r["inputs"], targets=r["targets"], language=r["language_code"],
                    script=L.info(r["language_code"]).script, source="annotate", dataset="annotate",
                    task="instruction", template=r["annotation_type"], kind="human", license=license,
                    split="train", id=f"annotate-{r['_ann'].id}")
            for r in rows])
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)
    by_language: dict[str, int] = defaultdict(int)
    for r in rows:
        by_language[r["language_code"]] += 1
    result = ExportResult(out, len(rows), dict(sorted(by_language.items())), approval_summary(session))
    write_json_atomic(manifest_path(out), {
        "stage": "annotate-export", "format": fmt, "output": out.name, "rows": result.rows,
        "by_language": result.by_language, "approval": result.approval,
        "filters": {"min_approval": min_approval, "languages": languages}, "versions": versions()})
    return result


def manifest_path(out: str | Path) -> Path:
    """Where an export's manifest goes: OUT.parquet -> .OUT.manifest.json beside it.

    Hidden, so that a recipe source whose `path:` is the export's folder reads only the data files (readers of
    local folders skip dot-files; a visible *.json there would be read as data).
    """
    out = Path(out)
    return out.with_name(f".{out.stem}.manifest.json")
