"""Filters: plain functions over pyarrow tables (EXAMPLE_SCHEMA), each returning the kept rows and what it removed
per language. No engine imports: the datatrove steps in ayakit.data.steps call these.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from ayakit import scripts
from ayakit.data import langid
from ayakit.recipe import CapsConfig, FilterConfig

# A filter: table -> (kept rows, removed rows per language)
Removed = dict[str, int]


@dataclass
class FilterCounts:
    """What one filter removed, in total and per language (plus, for langid, rows too short to check)."""

    removed: int = 0
    by_language: Counter = field(default_factory=Counter)
    unchecked: int = 0

    def add(self, removed: Mapping[str, int], unchecked: int = 0) -> None:
        """Add one batch's counts."""
        self.by_language.update({k: v for k, v in removed.items() if v})
        self.removed += sum(removed.values())
        self.unchecked += unchecked

    def merge(self, other: FilterCounts) -> None:
        """Add another task's counts."""
        self.by_language.update(other.by_language)
        self.removed += other.removed
        self.unchecked += other.unchecked

    def to_dict(self) -> dict:
        """The stats.json form."""
        d = {"removed": self.removed, "by_language": dict(sorted(self.by_language.items()))}
        if self.unchecked:
            d["unchecked"] = self.unchecked
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> FilterCounts:
        """Inverse of to_dict."""
        return cls(int(d.get("removed", 0)), Counter(d.get("by_language", {})), int(d.get("unchecked", 0)))


def by_language(table: pa.Table, removed_mask: pa.Array | np.ndarray | None = None) -> Removed:
    """Rows per language (of the rows where removed_mask is true)."""
    col = table.column("language")
    if removed_mask is not None:
        col = pc.filter(col, pa.array(removed_mask, type=pa.bool_()))
    counts = pc.value_counts(col)
    return {str(v["values"]): int(v["counts"]) for v in counts.to_pylist()}


def keep_rows(table: pa.Table, keep: pa.Array | np.ndarray) -> tuple[pa.Table, Removed]:
    """Apply a boolean keep mask; return kept rows and the removed rows per language."""
    keep_arr = pa.array(keep, type=pa.bool_()) if not isinstance(keep, pa.Array | pa.ChunkedArray) else keep
    keep_arr = pc.fill_null(keep_arr, False)
    if pc.all(keep_arr).as_py() is not False:
        return table, {}
    return table.filter(keep_arr), by_language(table, pc.invert(keep_arr))


def length_filter(table: pa.Table, cfg: FilterConfig) -> tuple[pa.Table, Removed]:
    """Keep rows whose inputs and targets lengths (characters) lie within the recipe's bounds."""
    li = pc.utf8_length(table.column("inputs"))
    lt = pc.utf8_length(table.column("targets"))
    keep = pc.and_(
        pc.and_(pc.greater_equal(li, cfg.min_input_chars), pc.less_equal(li, cfg.max_input_chars)),
        pc.and_(pc.greater_equal(lt, cfg.min_target_chars), pc.less_equal(lt, cfg.max_target_chars)),
    )
    return keep_rows(table, keep)


def license_filter(table: pa.Table, allowed: Iterable[str] | None) -> tuple[pa.Table, Removed]:
    """Keep rows whose licence is on the allow-list (case-insensitive); None keeps every licence."""
    if allowed is None:
        return table, {}
    allow = pa.array(sorted({a.strip().lower() for a in allowed}), type=pa.string())
    return keep_rows(table, pc.is_in(pc.utf8_lower(table.column("license")), value_set=allow))


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def dataset_is_heldout(dataset: str, heldout: Iterable[str]) -> bool:
    """True when a dataset name names a held-out dataset: the whole name, a path part, or a part after a
    templated_/translated_/xp3_ prefix (case-insensitive): 'Muennighoff/xwinograd' and 'translated_xnli' match."""
    parts = {p for p in re.split(r"[/\s.:]+", dataset.lower()) if p}
    names = {dataset.lower(), *parts}
    for p in parts:
        for prefix in ("templated_", "translated_", "xp3_", "aya_"):
            if p.startswith(prefix):
                names.add(p[len(prefix):])
    names |= {n.replace("-", "_") for n in names}
    return any(h.lower().replace("-", "_") in names for h in heldout)


def task_is_heldout(task: str, heldout: Iterable[str]) -> bool:
    """True when a task category is held out: equal after normalisation, or a whole word of it
    ('Natural Language Inference (NLI)' matches 'nli'; 'sentence completion' matches 'sentence_completion')."""
    t = f"_{_norm(task)}_"
    return any(f"_{_norm(h)}_" in t for h in heldout if _norm(h))


def _value_filter(table: pa.Table, column: str, drop: Callable[[str], bool]) -> tuple[pa.Table, Removed]:
    values = pc.unique(table.column(column)).to_pylist()
    dropped = [v for v in values if v and drop(v)]
    if not dropped:
        return table, {}
    return keep_rows(table, pc.invert(pc.is_in(table.column(column), value_set=pa.array(dropped, pa.string()))))


def heldout_filter(table: pa.Table, datasets: Iterable[str], tasks: Iterable[str]) -> tuple[pa.Table, Removed]:
    """Drop held-out datasets (matched against `dataset`) and task categories (against `task`)."""
    datasets, tasks = list(datasets), list(tasks)
    table, r1 = _value_filter(table, "dataset", lambda d: dataset_is_heldout(d, datasets))
    table, r2 = _value_filter(table, "task", lambda t: task_is_heldout(t, tasks))
    return table, dict(Counter(r1) + Counter(r2))


def template_filter(table: pa.Table, keep: Iterable[str] | None, drop: Iterable[str]) -> tuple[pa.Table, Removed]:
    """Keep-list and drop-list of template ids (case-insensitive); rows without a template are not affected."""
    keep_set = None if keep is None else {k.lower() for k in keep}
    drop_set = {d.lower() for d in drop}
    if keep_set is None and not drop_set:
        return table, {}

    def dropped(t: str) -> bool:
        low = t.lower()
        return low in drop_set or (keep_set is not None and low not in keep_set)

    return _value_filter(table, "template", dropped)


def langid_keep(inputs: str, targets: str, language: str, min_letters: int) -> tuple[bool, bool]:
    """(keep, checked): a row is dropped when its target is identified as another language and its inputs are
    not in the declared language. An English instruction with a short answer in the declared language (the
    paper's code-mixed prompts) is kept: the target is too short to judge and the instruction says nothing."""
    vt = langid.verdict(targets, language, min_letters)
    if vt == langid.MATCH:
        return True, True
    vi = langid.verdict(inputs, language, min_letters)
    if vi == langid.MATCH:
        return True, True
    if vt == langid.MISMATCH:
        return False, True
    return True, False


def langid_filter(table: pa.Table, min_letters: int = 20) -> tuple[pa.Table, Removed, int]:
    """Drop rows whose text is in another language than declared; also return how many rows could not be
    checked (target too short or unidentifiable, inputs not in the language: kept, reported as `unchecked`)."""
    inputs = table.column("inputs").to_pylist()
    targets = table.column("targets").to_pylist()
    langs = table.column("language").to_pylist()
    keep = np.ones(len(inputs), dtype=bool)
    unchecked = 0
    for i, (x, y, lang) in enumerate(zip(inputs, targets, langs, strict=True)):
        ok, checked = langid_keep(x, y, lang, min_letters)
        keep[i] = ok
        unchecked += not checked
    kept, removed = keep_rows(table, keep)
    return kept, removed, unchecked


def row_filters(table: pa.Table, cfg: FilterConfig, counts: dict[str, FilterCounts]) -> pa.Table:
    """Every per-row filter of the recipe, cheapest first; counts (filter name -> FilterCounts) are updated."""
    def tally(name: str, removed: Removed, unchecked: int = 0) -> None:
        counts.setdefault(name, FilterCounts()).add(removed, unchecked)

    table, r = length_filter(table, cfg)
    tally("length", r)
    table, r = license_filter(table, cfg.licenses)
    tally("license", r)
    table, r = heldout_filter(table, cfg.heldout_datasets, cfg.heldout_tasks)
    tally("heldout", r)
    table, r = template_filter(table, cfg.templates_keep, cfg.templates_drop)
    tally("template", r)
    if cfg.langid and table.num_rows:
        table, r, unchecked = langid_filter(table, cfg.langid_min_chars)
        tally("langid", r, unchecked)
    return table


# ---- words (for MinHash shingles) ---------------------------------------------------------------------------

@functools.cache
def word_pattern() -> re.Pattern:
    """Word tokens: each character of a script written without spaces (ayakit.scripts.unspaced_chars) is one;
    everything else is runs of word characters with their combining marks."""
    chars = scripts.unspaced_chars()
    return re.compile(f"[{chars}]|{scripts.word_run(exclude=chars)}")


def words(text: str) -> list[str]:
    """Word tokens in any script: characters of the unspaced scripts (CJK, kana, Thai, Tibetan, ...) one by one."""
    return word_pattern().findall(text)


# ---- exact dedup ----------------------------------------------------------------------------------------

def normalized_text(table: pa.Table) -> pa.Array:
    """inputs + targets, NFKC, lower-cased, whitespace collapsed: what exact dedup compares."""
    def norm(col: pa.ChunkedArray) -> pa.ChunkedArray:
        col = pc.utf8_lower(pc.utf8_normalize(col, form="NFKC"))
        return pc.utf8_trim_whitespace(pc.replace_substring_regex(col, pattern=r"\s+", replacement=" "))

    return pc.binary_join_element_wise(norm(table.column("inputs")), norm(table.column("targets")), "\x1f")


def dedup_keys(table: pa.Table) -> np.ndarray:
    """A 64-bit hash per row of its normalised inputs and targets."""
    h = xxhash.xxh3_64_intdigest
    return np.fromiter((h(s) for s in normalized_text(table).to_pylist()), dtype=np.uint64, count=table.num_rows)


def first_of_duplicates(keys: np.ndarray, *tiebreak: np.ndarray) -> np.ndarray:
    """Keep mask: for each dedup key, the row that sorts first by the tie-break arrays (deterministic, so
    which copy survives does not depend on the order the rows arrived in)."""
    if len(keys) == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((*reversed(tiebreak), keys))
    sorted_keys = keys[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    keep = np.zeros(len(keys), dtype=bool)
    keep[order[first]] = True
    return keep


# ---- caps -----------------------------------------------------------------------------------------------

def is_exempt(dataset: str, exempt: Iterable[str]) -> bool:
    """A dataset no cap applies to: an exempt name equal to it or contained in it, case-insensitive
    ('dolly' exempts 'translated_dolly')."""
    low = dataset.lower()
    return any(e.lower() in low for e in exempt if e)


def cap_limits(source: str, dataset: str, caps: CapsConfig) -> tuple[int | None, int | None]:
    """(cap per dataset, cap per (dataset, language)) for one source's dataset; None where uncapped."""
    if is_exempt(dataset, caps.exempt_datasets):
        return None, None
    return caps.per_dataset.get(source), caps.per_dataset_language.get(source)
