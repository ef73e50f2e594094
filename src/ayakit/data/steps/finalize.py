"""Stage 6, finalize: the tasks' reports merged into stats.json, the manifest written, the work files removed."""

from __future__ import annotations

import shutil
from collections import Counter
from typing import Any

from ayakit import languages as L
from ayakit.data import filters as F
from ayakit.data.steps.base import Context, Step
from ayakit.data.summary import REASONS, build_summary, heavily_repeated
from ayakit.io import read_json, write_json_atomic, write_manifest


class FinalizeStep(Step):
    """Merge the tasks' reports into stats.json, write the manifest, remove the work files."""

    stage = name = "finalize"

    def work(self, rank: int) -> None:
        ctx = self.ctx
        stats = merge_stats(ctx)
        stats["summary"] = build_summary(stats, ctx.get_recipe().data.languages)
        write_json_atomic(ctx.data_dir / "stats.json", stats)
        keep = {ctx.shard_name(s) for s in range(ctx.shards)}
        for old in ctx.data_dir.glob("shards-*.parquet"):
            if old.name not in keep:
                old.unlink()
        outputs = {"shards": sorted(keep), "stats": "stats.json"}
        write_manifest(ctx.data_dir, "data", ctx.inputs, outputs, counts={"total": stats["total"]},
                       recipe=ctx.get_recipe().name, warnings=stats["summary"]["warnings"])
        for sub in ("filtered", "dedup", "scatter", "minhash"):
            shutil.rmtree(ctx.work / sub, ignore_errors=True)


def merge_stats(ctx: Context) -> dict[str, Any]:
    """stats.json from the task reports: requested vs realised shares, counts, repetition, filters."""
    plan_doc = read_json(ctx.work / "plan.json")
    plan = plan_doc["plan"]
    filters: dict[str, F.FilterCounts] = {}
    reports = [read_json(p) for p in sorted((ctx.work / "reports").glob("filter-*.json"))]
    errors: dict[str, int] = {}
    skipped_rows: dict[str, Counter] = {}
    dropped: Counter = Counter()
    unselected: Counter = Counter()
    dropped_by_source: dict[str, dict[str, dict[str, int]]] = {REASONS["language"]: {},
                                                                REASONS["language_selection"]: {}}
    for r in reports:
        for name, why in r.get("skipped_rows", {}).items():
            skipped_rows.setdefault(name, Counter()).update(why)
        for name, d in r["filters"].items():
            filters.setdefault(name, F.FilterCounts()).merge(F.FilterCounts.from_dict(d))
        for k, v in r["errors"].items():  # each file (or shared stream) is reported by one task only
            errors[k] = errors.get(k, 0) + v
        for reason, key, total in ((REASONS["language"], "dropped_languages", dropped),
                                   (REASONS["language_selection"], "unselected", unselected)):
            for name, langs in r.get(key, {}).items():
                total.update(langs)
                per = dropped_by_source[reason].setdefault(name, {})
                for lang, n in langs.items():
                    per[lang] = per.get(lang, 0) + n
    language_filter = F.FilterCounts(sum(dropped.values()), dropped)
    selection_filter = F.FilterCounts(sum(unselected.values()), unselected)
    for p in sorted((ctx.work / "reports").glob("dedup-*.json")):
        for name, d in read_json(p).items():
            filters.setdefault(name, F.FilterCounts()).merge(F.FilterCounts.from_dict(d))
    if ctx.get_recipe().data.filters.dedup == "minhash":
        filters["minhash_dedup"] = F.FilterCounts.from_dict(plan_doc["minhash_removed"])
    filters["caps"] = F.FilterCounts.from_dict(plan_doc["caps_removed"])
    counts: dict[str, Counter] = {k: Counter() for k in ("source", "dataset", "kind", "language")}
    total = 0
    by_source: dict[str, dict[str, Counter]] = {}
    for p in sorted((ctx.work / "gathered").glob("shard-*.json")):
        g = read_json(p)
        total += g["rows"]
        for key, c in g["counts"].items():
            counts[key].update(c)
        for name, per in g.get("by_source", {}).items():
            for key, c in per.items():
                by_source.setdefault(name, {}).setdefault(key, Counter()).update(c)
    tiers: Counter = Counter()
    for lang, n in counts["language"].items():
        tiers[L.tier(lang)] += n
    counts["tier"] = tiers
    ordered = {k: dict(sorted(v.items(), key=lambda kv: (-kv[1], kv[0]))) for k, v in counts.items()}
    realised = {k: {name: n / total if total else 0.0 for name, n in v.items()} for k, v in ordered.items()}
    return {
        "budget": plan["budget"],
        "total": total,
        "seed": plan["seed"],
        "requested": {"source": plan["requested"],
                      "dataset": {ds: n / plan["budget"] for per in plan["datasets"].values() for ds, n in per.items()}},
        "realised": realised,
        "counts": ordered,
        "by_source": {name: {key: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for key, c in per.items()}
                      for name, per in sorted(by_source.items())},
        "repetition": plan["repetition"],
        "filters": {"language": language_filter.to_dict(), "language_selection": selection_filter.to_dict(),
                    **{k: v.to_dict() for k, v in filters.items()}},
        "dropped_by_source": dropped_by_source,
        "available": plan["available"],
        "skipped_sources": plan["skipped"],
        "errors": errors,
        "skipped_rows": {k: dict(sorted(v.items())) for k, v in sorted(skipped_rows.items()) if v},
        "heavily_repeated": heavily_repeated(plan),
        "allocated": {"source": plan["sources"], "dataset": plan["datasets"]},
        "shards": ctx.shards,
    }
