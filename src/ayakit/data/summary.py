"""What a data build dropped, skipped and repeated, for the end of the command, stats.json, the manifest and the report.

Nothing is dropped in silence: every row a filter or the language check removed is counted per reason and
language; a requested variety that ended with no rows says why; a source drawn more than REPEAT_WARN times over
is named. `warnings` are the lines `--strict` turns into a non-zero exit: rows dropped as not a language code (a
reader without located errors, e.g. an xP3x folder), bad lines skipped under data.on_error=skip (per source and
reason: `skipped_rows`), requested varieties or sources that yield nothing, and heavy repetition. Filtering by
design (langid, length, dedup, caps, rows outside data.languages) is reported but is not a warning.
"""

from __future__ import annotations

from typing import Any

from ayakit import languages as L
from ayakit.data.sources.base import NOT_A_LANGUAGE

REPEAT_WARN = 10.0  # a source (or a source's dataset) drawn more often than this is named

# filter name in stats.json -> the reason printed
REASONS = {
    "language": NOT_A_LANGUAGE,
    "language_selection": "outside data.languages",
    "length": "too short or too long",
    "langid": "text in another language",
    "license": "licence not allowed",
    "heldout": "held out for evaluation",
    "templates": "template not kept",
    "exact_dedup": "exact duplicate",
    "minhash_dedup": "near duplicate",
    "caps": "over a dataset cap",
}
WARN_REASONS = ("language",)


def heavily_repeated(plan: dict[str, Any]) -> dict[str, float]:
    """Sources and source/dataset pairs repeated more than REPEAT_WARN times to fill their share."""
    out: dict[str, float] = {}
    for name, rep in plan["repetition"].items():
        if rep > REPEAT_WARN:
            out[name] = round(rep, 2)
    for name, per_ds in plan["datasets"].items():
        avail = plan["available"].get(name) or {}
        if len(per_ds) < 2:
            continue  # the source's own line says it
        for ds, n in per_ds.items():
            if avail.get(ds) and n / avail[ds] > REPEAT_WARN:
                out[f"{name}/{ds}"] = round(n / avail[ds], 2)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _top(counts: dict[str, int], n: int = 6) -> str:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{k} {v:,}" for k, v in items[:n])
    return text + (f", ... {len(items) - n} more" if len(items) > n else "")


def build_summary(stats: dict[str, Any], requested: list[str] | None) -> dict[str, Any]:
    """The summary of a finished build from its stats (requested: the recipe's data.languages)."""
    dropped = {name: dict(f.get("by_language", {})) for name, f in _dict(stats.get("filters")).items()
               if isinstance(f, dict) and f.get("removed")}
    skipped_rows = _dict(stats.get("skipped_rows"))
    # bad lines per source: the counts, else (stats of an older build) the sum of their reasons
    errors = {k: v for k, v in {**{s: sum(why.values()) for s, why in skipped_rows.items()},
                                **_dict(stats.get("errors"))}.items() if v}
    present = stats.get("counts", {}).get("language", {})
    skipped: dict[str, str] = {}
    for sel in requested or []:
        if sel in L.SETS or any(L.matches(sel, t) for t in present):
            continue
        removed = {REASONS.get(name, name): sum(n for lang, n in by.items() if _matches(sel, lang))
                   for name, by in dropped.items() if name != "language_selection"}
        removed = {k: v for k, v in removed.items() if v}
        skipped[sel] = (f"every row was removed ({_top(removed)})" if removed
                        else "no source has rows in it")
    for name, why in _dict(stats.get("skipped_sources")).items():
        skipped[f"source {name}"] = why
    repeated = stats.get("heavily_repeated") or {name: x for name, x in _dict(stats.get("repetition")).items()
                                                 if isinstance(x, (int, float)) and x > REPEAT_WARN}
    warnings: list[str] = []
    for name in WARN_REASONS:
        if name in dropped:
            by_source = stats.get("dropped_by_source", {}).get(REASONS[name], {})
            where = "; ".join(f"source {s}: {_top(c)}" for s, c in sorted(by_source.items())) or _top(dropped[name])
            warnings.append(f"{sum(dropped[name].values()):,} rows dropped, {REASONS[name]}: {where}")
    for source, n in sorted(errors.items()):
        detail = _top(skipped_rows.get(source) or {})
        warnings.append(f"{n:,} bad lines skipped in source {source} (data.on_error=skip)"
                        + (f": {detail}" if detail else ""))
    for what, why in skipped.items():
        warnings.append(f"{what} skipped: {why}")
    for name, x in sorted(repeated.items()):
        warnings.append(f"{'' if '/' in name else 'source '}{name} repeated {x:.1f}x (more than {REPEAT_WARN:g}x) "
                        "to fill its share: add data or lower its weight")
    return {"dropped": {REASONS.get(k, k): v for k, v in dropped.items()}, "errors": errors,
            "skipped_rows": {k: dict(v) for k, v in sorted(skipped_rows.items()) if v}, "skipped": skipped,
            "repeated": repeated, "warnings": warnings}


def _dict(value: Any) -> dict:
    """A stats.json entry that should be a mapping ({} when absent, or a list in an older build's stats)."""
    return value if isinstance(value, dict) else {}


def _matches(selector: str, lang: str) -> bool:
    try:
        return L.matches(selector, lang)
    except L.UnknownLanguageError:
        return False


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as short terminal lines: drops per reason and language, then the warnings."""
    warned = {REASONS[name] for name in WARN_REASONS}  # these drops are among the warnings, by source
    lines = [f"dropped {sum(by.values()):,} rows ({reason}): {_top(by)}"
             for reason, by in summary.get("dropped", {}).items() if reason not in warned]
    return lines + [f"warning: {line}" for line in summary.get("warnings", [])]
