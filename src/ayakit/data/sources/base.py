"""The Source record every reader returns, and the batch builder that turns raw rows into EXAMPLE_SCHEMA."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ayakit.errors import DataError
from ayakit.languages import UnknownLanguageError, get
from ayakit.recipe import Recipe, SourceSpec
from ayakit.records import EXAMPLE_FIELDS, EXAMPLE_SCHEMA, KINDS, example_id

# A reader: (spec, recipe) -> Source.
Reader = Callable[[SourceSpec, Recipe], "Source"]


@dataclass
class Block:
    """Rows given column-wise (field -> list of n values, or one value for every row): the fast path of readers
    that read columnar batches (Parquet, CSV)."""

    columns: dict[str, Any]
    n: int


@dataclass
class Source:
    """A named, licensed stream of examples; counters fill in while it is read."""

    name: str
    kind: str
    license: str
    rows: Callable[["Source"], Iterable[dict[str, Any] | Block]] = field(repr=False, default=lambda s: ())
    defaults: dict[str, str] = field(default_factory=dict)  # field values for rows that lack them
    languages: frozenset[str] | None = None  # keep only these registry codes (None: all 101)
    sizes: Callable[[], dict[str, int] | None] | None = field(repr=False, default=None)
    errors: int = 0  # malformed lines skipped under data.on_error: skip
    dropped_languages: dict[str, int] = field(default_factory=dict)  # codes outside the 101 -> rows dropped
    skipped_reason: str | None = None  # why an optional source yields nothing
    rows_read: int = 0  # rows yielded so far
    shardable: bool = False  # the reader honours `shard`: each task then reads only its own units
    shard: tuple[int, int] | None = None  # (index, count): this reader reads only units k with k % count == index
    units_read: int = 0  # units (files, (family, language) pairs, language pairs) this read opened

    def owns(self, unit: int) -> bool:
        """Whether work unit `unit` (a file, a (family, language) pair, ...) belongs to this shard; counts it."""
        mine = self.shard is None or unit % self.shard[1] == self.shard[0]
        self.units_read += mine
        return mine

    def iter_batches(self, batch_size: int = 4096) -> Iterator[pa.RecordBatch]:
        """Stream the source as EXAMPLE_SCHEMA record batches of at most batch_size rows."""
        if self.skipped_reason:
            return
        self.errors, self.rows_read, self.dropped_languages = 0, 0, {}  # counts are per read
        self.units_read = 0
        builder = BatchBuilder(self)
        for item in self.rows(self):
            if isinstance(item, Block):
                builder.add_block(item)
            else:
                builder.add(item)
            while len(builder) >= batch_size:
                yield builder.flush(batch_size)
        if len(builder):
            yield builder.flush()
        if self.rows_read == 0:
            raise DataError(f"source {self.name!r} yielded no examples" + _why_empty(self))

    def dataset_sizes(self) -> dict[str, int] | None:
        """Rows per dataset when that is cheap to know without reading the data (parquet metadata), else None."""
        return self.sizes() if self.sizes else None


def _why_empty(source: Source) -> str:
    parts = []
    if source.dropped_languages:
        parts.append(f"all rows had languages outside the 101: {dict(sorted(source.dropped_languages.items()))}")
    if source.languages is not None:
        parts.append(f"after keeping only languages {sorted(source.languages)}")
    if source.errors:
        parts.append(f"{source.errors} malformed rows skipped")
    return (" (" + "; ".join(parts) + ")") if parts else ""


class BatchBuilder:
    """Collects raw rows, normalises language and provenance, fills ids, and emits EXAMPLE_SCHEMA batches."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.cols: dict[str, list[str]] = {f: [] for f in EXAMPLE_FIELDS}
        self._lang_cache: dict[str, tuple[str, str] | None] = {}

    def __len__(self) -> int:
        return len(self.cols["inputs"])

    def _language(self, raw: str) -> tuple[str, str] | None:
        """(registry code, default script), or None when the code is outside the 101."""
        if raw not in self._lang_cache:
            try:
                lang = get(raw)
                self._lang_cache[raw] = (lang.code, lang.script)
            except UnknownLanguageError:
                self._lang_cache[raw] = None
        return self._lang_cache[raw]

    def add(self, row: dict[str, Any]) -> bool:
        """Add one raw row; False when it was dropped (language outside the 101 or not selected)."""
        src = self.source
        raw_lang = _text(row.get("language")) or src.defaults.get("language", "")
        found = self._language(raw_lang)
        if found is None:
            key = raw_lang or "<empty>"
            src.dropped_languages[key] = src.dropped_languages.get(key, 0) + 1
            return False
        code, script = found
        if src.languages is not None and code not in src.languages:
            return False
        values = {f: _text(row.get(f)) or src.defaults.get(f, "") for f in EXAMPLE_FIELDS}
        values["language"] = code
        values["script"] = values["script"] or script
        values["source"] = src.name
        values["kind"] = src.defaults.get("kind_override") or values["kind"] or src.kind
        values["license"] = src.defaults.get("license_override") or values["license"] or src.license
        values["split"] = values["split"] or "train"
        if not values["id"]:
            values["id"] = example_id(src.name, values["dataset"], code, values["inputs"], values["targets"])
        for f in EXAMPLE_FIELDS:
            self.cols[f].append(values[f])
        src.rows_read += 1
        return True

    def add_block(self, block: Block) -> int:
        """Add rows given column-wise; returns how many were kept."""
        src, n = self.source, block.n
        defaults = src.defaults

        def column(fld: str) -> list | None:
            value = block.columns.get(fld)
            if value is None:
                return None
            return value if isinstance(value, list) else [value] * n

        raw_langs = column("language") or [""] * n
        default_lang = defaults.get("language", "")
        keep: list[int] = []
        codes: list[str] = []
        scripts: list[str] = []
        for i, raw in enumerate(raw_langs):
            raw = _text(raw) or default_lang
            found = self._language(raw)
            if found is None:
                key = raw or "<empty>"
                src.dropped_languages[key] = src.dropped_languages.get(key, 0) + 1
                continue
            if src.languages is not None and found[0] not in src.languages:
                continue
            keep.append(i)
            codes.append(found[0])
            scripts.append(found[1])
        if not keep:
            return 0
        values: dict[str, list[str]] = {}
        for fld in EXAMPLE_FIELDS:
            col, default = column(fld), defaults.get(fld, "")
            values[fld] = [default] * len(keep) if col is None else [_text(col[i]) or default for i in keep]
        values["language"] = codes
        values["script"] = [s or d for s, d in zip(values["script"], scripts)]
        values["source"] = [src.name] * len(keep)
        for fld, base in (("kind", src.kind), ("license", src.license)):
            forced = defaults.get(f"{fld}_override")
            values[fld] = [forced] * len(keep) if forced else [v or base for v in values[fld]]
        values["split"] = [v or "train" for v in values["split"]]
        values["id"] = [v or example_id(src.name, d, lang, a, b) for v, d, lang, a, b in
                        zip(values["id"], values["dataset"], codes, values["inputs"], values["targets"])]
        for fld in EXAMPLE_FIELDS:
            self.cols[fld].extend(values[fld])
        src.rows_read += len(keep)
        return len(keep)

    def flush(self, size: int | None = None) -> pa.RecordBatch:
        """The first `size` rows collected (default: all) as one batch, removed from the builder."""
        size = len(self) if size is None else min(size, len(self))
        batch = pa.RecordBatch.from_pydict({f: v[:size] for f, v in self.cols.items()}, schema=EXAMPLE_SCHEMA)
        self.cols = {f: v[size:] for f, v in self.cols.items()}
        return batch


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def selected_languages(spec: SourceSpec, recipe: Recipe) -> frozenset[str] | None:
    """The registry codes a source keeps: spec.languages within recipe.data.languages (unknown codes raise)."""
    chosen: frozenset[str] | None = None
    for where, codes in (("data.languages", recipe.data.languages),
                         (f"data.sources[{spec.name}].languages", spec.languages)):
        if codes is None:
            continue
        try:
            these = frozenset(get(c).code for c in codes)
        except UnknownLanguageError as exc:
            raise UnknownLanguageError(f"recipe {where}: {exc}") from None
        chosen = these if chosen is None else chosen & these
    return chosen


def make_source(spec: SourceSpec, recipe: Recipe, *, kind: str, license: str,
                rows: Callable[[Source], Iterable[dict[str, Any]]],
                defaults: dict[str, str] | None = None,
                sizes: Callable[[], dict[str, int] | None] | None = None, shardable: bool = False) -> Source:
    """A Source with the spec's overrides (kind, license, languages) applied over the reader's defaults;
    shardable: its `rows` reads only the units `Source.owns` when a shard is set."""
    if spec.kind is not None and spec.kind not in KINDS:
        raise DataError(f"source {spec.name!r}: kind {spec.kind!r} is not one of {', '.join(KINDS)}")
    defaults = dict(defaults or {})
    if spec.kind:
        defaults["kind_override"] = spec.kind
    if spec.license:
        defaults["license_override"] = spec.license
    return Source(name=spec.name, kind=spec.kind or kind, license=spec.license or license, rows=rows,
                  defaults=defaults, languages=selected_languages(spec, recipe), sizes=sizes, shardable=shardable)


def skipped_source(spec: SourceSpec, kind: str, license: str, reason: str) -> Source:
    """An optional source whose data is absent: it yields nothing and says why."""
    return Source(name=spec.name, kind=spec.kind or kind, license=spec.license or license, skipped_reason=reason)
