"""What a data build says at its end: bad lines skipped, rows dropped for their language, filters, heavy repetition."""

from __future__ import annotations

from typing import Any

REPEAT_WARNING = 10.0  # a source or dataset seen more often than this is named at the end of the build


def heavily_repeated(plan: dict[str, Any]) -> dict[str, float]:
    """Sources and source/dataset pairs repeated more than REPEAT_WARNING times to fill their share."""
    out: dict[str, float] = {}
    for name, rep in plan["repetition"].items():
        if rep > REPEAT_WARNING:
            out[name] = round(rep, 2)
    for name, per_ds in plan["datasets"].items():
        avail = plan["available"].get(name) or {}
        if len(per_ds) < 2:
            continue  # the source's own line says it
        for ds, n in per_ds.items():
            if avail.get(ds) and n / avail[ds] > REPEAT_WARNING:
                out[f"{name}/{ds}"] = round(n / avail[ds], 2)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def build_summary(stats: dict[str, Any]) -> list[tuple[str, str]]:
    """(level, line) pairs said at the end of every build: what was skipped, dropped, removed or repeated."""
    lines: list[tuple[str, str]] = []
    for name, why in stats.get("skipped_sources", {}).items():
        lines.append(("warning", f"source {name} skipped: {why}"))
    for name, why in stats.get("skipped_rows", {}).items():
        detail = ", ".join(f"{n:,} {reason}" for reason, n in why.items())
        lines.append(("warning", f"source {name}: {sum(why.values()):,} bad lines skipped (data.on_error=skip): "
                                 f"{detail}"))
    dropped = stats.get("filters", {}).get("language", {})
    if dropped.get("removed"):
        langs = sorted(dropped.get("by_language", {}).items(), key=lambda kv: -kv[1])
        shown = ", ".join(f"{k} {v:,}" for k, v in langs[:8]) + (" ..." if len(langs) > 8 else "")
        lines.append(("warning", f"{dropped['removed']:,} rows dropped for their language: {shown}"))
    removed = {k: f["removed"] for k, f in stats.get("filters", {}).items() if k != "language" and f.get("removed")}
    if removed:
        lines.append(("info", "rows removed by filters: " + ", ".join(f"{k} {v:,}" for k, v in removed.items())))
    for name, rep in stats.get("heavily_repeated", {}).items():
        lines.append(("warning", f"{name} is repeated {rep:g}x to fill its share (more than {REPEAT_WARNING:g}x: "
                                 f"add data or lower its weight)"))
    return lines
