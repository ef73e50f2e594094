"""The Source record every reader returns, and the batch builder that turns raw rows into EXAMPLE_SCHEMA."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.languages import UnknownLanguageError
from ayakit.recipe import Recipe, SourceSpec
from ayakit.records import EXAMPLE_FIELDS, EXAMPLE_SCHEMA, KINDS, example_id

# A reader: (spec, recipe) -> Source.
Reader = Callable[[SourceSpec, Recipe], "Source"]

# Why a row's language cannot be used: the same words in the reader's errors, its skip counts, stats and the report.
NO_LANGUAGE = "no language"
NOT_A_LANGUAGE = "not a language code"
EMPTY_CODES_SHOWN = 8  # a source emptied by bad codes names this many of them, each with its closest codes


def not_a_language_message(code: str) -> str:
    """The error for a value that is no ISO 639-3 language or tag, naming the closest codes."""
    return (f"unknown language code {code!r} (not an ISO 639-3 language or tag); "
            f"closest known: {', '.join(L.closest_codes(code))}")


@dataclass
class Block:
    """Rows given column-wise (field -> list of n values, or one value for every row): the fast path of readers
    that read columnar batches (Parquet, CSV)."""

    columns: dict[str, Any]
    n: int


@dataclass(frozen=True)
class Selection:
    """The varieties a source keeps (data.languages within the source's own `languages`): `code in selection`
    asks about a whole language (a reader deciding what to generate), `selection.keeps(tag)` about one variety."""

    levels: tuple[tuple[str, ...], ...]  # every level must select the variety

    def keeps(self, tag: str) -> bool:
        """Does every level select this variety (`zho` keeps zho-Hant, never yue-Hant)?"""
        return all(any(L.matches(sel, tag) for sel in level) for level in self.levels)

    def __contains__(self, code: object) -> bool:
        lang = L.parse(str(code)).language
        return all(any(L.in_set(lang, sel) if sel in L.SETS else L.parse(sel).language == lang for sel in level)
                   for level in self.levels)

    def __iter__(self):
        return iter(self.levels[-1])

    def __repr__(self) -> str:
        return " and ".join("[" + ", ".join(level) + "]" for level in self.levels)


@dataclass
class Source:
    """A named, licensed stream of examples; counters fill in while it is read."""

    name: str
    kind: str
    license: str
    rows: Callable[["Source"], Iterable[dict[str, Any] | Block]] = field(repr=False, default=lambda s: ())
    defaults: dict[str, str] = field(default_factory=dict)  # field values for rows that lack them
    languages: Selection | None = None  # keep only these varieties (None: every language)
    sizes: Callable[[], dict[str, int] | None] | None = field(repr=False, default=None)
    errors: int = 0  # malformed lines skipped under data.on_error: skip
    dropped_languages: dict[str, int] = field(default_factory=dict)  # codes that name no language -> rows dropped
    unselected: dict[str, int] = field(default_factory=dict)  # varieties outside the selection -> rows dropped
    skipped_reason: str | None = None  # why an optional source yields nothing
    rows_read: int = 0  # rows yielded so far
    skipped: dict[str, int] = field(default_factory=dict)  # why -> lines skipped under data.on_error: skip
    skipped_codes: dict[str, int] = field(default_factory=dict)  # language values skipped as not a language code
    paths: tuple[str, ...] = ()  # the files a file-backed source reads (named when it yields nothing)
    shardable: bool = False  # the reader honours `shard`: each task then reads only its own units
    shard: tuple[int, int] | None = None  # (index, count): this reader reads only units k with k % count == index
    units_read: int = 0  # units (files, (family, language) pairs, language pairs) this read opened

    def skip(self, reason: str, code: str | None = None) -> None:
        """Count one bad line skipped under data.on_error: skip, by reason (and the language value it had)."""
        self.errors += 1
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if code is not None:
            self.skipped_codes[code] = self.skipped_codes.get(code, 0) + 1

    def owns(self, unit: int) -> bool:
        """Whether work unit `unit` (a file, a (family, language) pair, ...) belongs to this shard; counts it."""
        mine = self.shard is None or unit % self.shard[1] == self.shard[0]
        self.units_read += mine
        return mine

    def iter_batches(self, batch_size: int = 4096) -> Iterator[pa.RecordBatch]:
        """Stream the source as EXAMPLE_SCHEMA record batches of at most batch_size rows."""
        if self.skipped_reason:
            return
        self.errors, self.rows_read, self.dropped_languages, self.unselected = 0, 0, {}, {}  # counts are per read
        self.skipped, self.skipped_codes, self.units_read = {}, {}, 0
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
    bad = {**source.dropped_languages}
    for code, n in source.skipped_codes.items():
        bad[code] = bad.get(code, 0) + n
    if bad:
        named = []
        shown = sorted(bad.items(), key=lambda kv: (-kv[1], kv[0]))[:EMPTY_CODES_SHOWN]
        for code, n in sorted(shown):
            near = L.closest_codes(code) if code != "<empty>" else []
            named.append(f"{code!r} x{n}" + (f" (closest known: {', '.join(near)})" if near else ""))
        more = len(bad) - len(shown)
        parts.append(f"rows whose language is {NOT_A_LANGUAGE}: " + "; ".join(named)
                     + (f"; and {more} other codes" if more else ""))
    if source.languages is not None:
        parts.append(f"after keeping only languages {source.languages!r}")
    if source.unselected:
        parts.append(f"rows in other languages: {dict(sorted(source.unselected.items()))}")
    if source.errors:
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(source.skipped.items()))
        parts.append(f"{source.errors} malformed rows skipped" + (f": {why}" if why else ""))
    if source.paths:
        shown = ", ".join(source.paths[:5]) + (f" and {len(source.paths) - 5} more" if len(source.paths) > 5 else "")
        parts.append(f"read {shown}")
    return (" (" + "; ".join(parts) + ")") if parts else ""


class BatchBuilder:
    """Collects raw rows, tags their language variety, fills provenance and ids, and emits EXAMPLE_SCHEMA batches.

    A row's variety: the script its language code names (`srp_Latn`), else its `script` column, else the script its
    text is written in when the language has more than one, else the language's default script."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.cols: dict[str, list[str]] = {f: [] for f in EXAMPLE_FIELDS}
        self._lang_cache: dict[tuple[str, str], str | None] = {}

    def __len__(self) -> int:
        return len(self.cols["inputs"])

    def _tag(self, raw: str, script: str, text: Any) -> str | None:
        """The row's language tag, or None (counted) when its code names no language or its variety is not kept."""
        src = self.source
        key = (raw, script)
        if key in self._lang_cache:
            found = self._lang_cache[key]
        else:
            try:
                parts = L.parse(raw)
                found = "" if not parts.script and not script and L.multi_script(parts.language) else \
                    L.tag(raw, script=script or None)
            except UnknownLanguageError:
                found = None
            self._lang_cache[key] = found
        if found == "":  # the text says which script
            found = L.tag(raw, text=text() if callable(text) else text)
        if found is None:
            label = raw if not script else f"{raw} (script {script})"
            label = label or "<empty>"
            src.dropped_languages[label] = src.dropped_languages.get(label, 0) + 1
            return None
        if src.languages is not None and not src.languages.keeps(found):
            src.unselected[found] = src.unselected.get(found, 0) + 1
            return None
        return found

    def add(self, row: dict[str, Any]) -> bool:
        """Add one raw row; False when it was dropped (its code names no language, or its variety is not kept)."""
        src = self.source
        raw_lang = _text(row.get("language")) or src.defaults.get("language", "")
        script = _text(row.get("script")) or src.defaults.get("script", "")
        found = self._tag(raw_lang, script, lambda: _text(row.get("inputs")) + " " + _text(row.get("targets")))
        if found is None:
            return False
        values = {f: _text(row.get(f)) or src.defaults.get(f, "") for f in EXAMPLE_FIELDS}
        values["language"] = found
        values["script"] = found.split("-")[1]
        values["source"] = src.name
        values["kind"] = src.defaults.get("kind_override") or values["kind"] or src.kind
        values["license"] = src.defaults.get("license_override") or values["license"] or src.license
        values["split"] = values["split"] or "train"
        if not values["id"]:
            values["id"] = example_id(src.name, values["dataset"], found, values["inputs"], values["targets"])
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
        raw_scripts = column("script") or [""] * n
        inputs, targets = column("inputs") or [""] * n, column("targets") or [""] * n
        default_lang, default_script = defaults.get("language", ""), defaults.get("script", "")
        keep: list[int] = []
        codes: list[str] = []
        for i, raw in enumerate(raw_langs):
            found = self._tag(_text(raw) or default_lang, _text(raw_scripts[i]) or default_script,
                              lambda i=i: _text(inputs[i]) + " " + _text(targets[i]))
            if found is None:
                continue
            keep.append(i)
            codes.append(found)
        if not keep:
            return 0
        values: dict[str, list[str]] = {}
        for fld in EXAMPLE_FIELDS:
            col, default = column(fld), defaults.get(fld, "")
            values[fld] = [default] * len(keep) if col is None else [_text(col[i]) or default for i in keep]
        values["language"] = codes
        values["script"] = [c.split("-")[1] for c in codes]  # a tag always has its script second
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


def selected_languages(spec: SourceSpec, recipe: Recipe) -> Selection | None:
    """The varieties a source keeps: spec.languages within recipe.data.languages (unknown codes raise)."""
    levels: list[tuple[str, ...]] = []
    for where, codes in (("data.languages", recipe.data.languages),
                         (f"data.sources[{spec.name}].languages", spec.languages)):
        if codes is None:
            continue
        try:
            for c in codes:
                if c not in L.SETS:
                    L.parse(c)
        except UnknownLanguageError as exc:
            raise UnknownLanguageError(f"recipe {where}: {exc}") from None
        levels.append(tuple(codes))
    return Selection(tuple(levels)) if levels else None


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
