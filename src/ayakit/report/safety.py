"""The report's safety section: harm before / after safety distillation per language with intervals, the general
task cost beside it, the realised safety share of the mixture, which harm classifier was used, and every table of
run_dir/safety/summary.json (toxicity, identity groups, the distillation counts)."""

from __future__ import annotations

from pathlib import Path
from statistics import mean
from typing import Any

from ayakit.io import read_json
from ayakit.report.artifacts import TRAINED, RunArtifacts
from ayakit.report.model import Section, Table
from ayakit.report.scores import by_tier, digits, metric_name, overall, tasks
from ayakit.report.sections import _counts, fmt, fmt_ci, lang_label, pct
from ayakit.safety.summary import tables

BEFORE, AFTER = "trained", "safe"  # the model labels the run's safety stages record
SAFE_DIR = "safe"
DEMO_SCALE = ("On demo-scale models (a few million parameters trained for minutes) the harmful rate stays near 100% "
              "before and after distillation: such a model neither refuses nor learns to from a few hundred "
              "examples, and its teacher (itself, with the preamble) writes no real refusals. What a run at this "
              "scale delivers is the pipeline, the split discipline (the held-out prompts never train) and the "
              "bookkeeping; the numbers mean something with a capable teacher and model "
              "(safety.distill.teacher, model.name_or_path).")


def distilled(recipe: dict) -> bool:
    """Whether the run's (resolved) recipe trains the second model: its files are stale when it does not."""
    return bool((((recipe or {}).get("safety") or {}).get("distill") or {}).get("enabled"))


def _current(summary: dict, recipe: dict) -> dict:
    """The summary without the second model's results when the recipe no longer distills."""
    if distilled(recipe):
        return summary
    return {**summary, "models": {k: v for k, v in (summary.get("models") or {}).items() if k != AFTER},
            **({"distill": None} if "distill" in summary else {})}


def _harm(summary: dict, label: str) -> dict | None:
    return ((summary.get("models") or {}).get(label) or {}).get("harm")


def _rate(r: dict | None) -> str:
    if not r or r.get("rate") is None:
        return "–" if not r or r.get("covered", True) else "not covered"
    return f"{100 * r['rate']:.1f}% {fmt_ci([100 * x for x in r['ci']], 1) if r.get('ci') else ''}".strip()


def _mean_rate(harm: dict | None) -> float | None:
    vals = [r["rate"] for r in ((harm or {}).get("languages") or {}).values() if r.get("rate") is not None]
    return mean(vals) if vals else None


def harm_table(summary: dict) -> Table | None:
    """Harmful rate and over-refusal per language, before and after safety distillation (95% bootstrap CIs)."""
    before, after = _harm(summary, BEFORE), _harm(summary, AFTER)
    if before is None and after is None:
        return None
    langs = sorted(set((before or {}).get("languages", {})) | set((after or {}).get("languages", {})))
    over_b = ((before or {}).get("over_refusal") or {}).get("languages", {})
    over_a = ((after or {}).get("over_refusal") or {}).get("languages", {})
    rows = []
    for code in langs:
        b = (before or {}).get("languages", {}).get(code)
        a = (after or {}).get("languages", {}).get(code)
        change = "–"
        if b and a and b.get("rate") is not None and a.get("rate") is not None:
            change = f"{100 * (a['rate'] - b['rate']):+.1f}"
        rows.append([lang_label(code), _rate(b), _rate(a), change, _rate(over_b.get(code)), _rate(over_a.get(code))])
    cols = ["language", "harmful: trained", "harmful: with safety data", "change (points)",
            "over-refusal: trained", "over-refusal: with safety data"]
    if after is None:
        cols, rows = [cols[0], cols[1], cols[4]], [[r[0], r[1], r[4]] for r in rows]
    return Table("Harmful rate per language on the held-out XSafety prompts (95% CI)", cols, rows,
                 note="Harmful: share of held-out harmful prompts answered harmfully; over-refusal: share of benign "
                      "prompts (XSafety commonsense, test split) refused. The paper (Table 24) reports 78-89% lower "
                      "harm for Aya Safe.")


def cost_table(art: RunArtifacts) -> Table | None:
    """The general-task cost: held-out scores of the model trained without and with the safety source."""
    safe_path = art.run_dir / SAFE_DIR / "eval" / TRAINED / "summary.json"
    before = art.evals.get(TRAINED)
    if before is None or not safe_path.is_file() or not distilled(art.recipe):
        return None
    after = read_json(safe_path)
    nd = digits(before)
    rows = []
    for name in tasks(before):
        b = (tasks(before).get(name) or {}).get("score")
        a = (tasks(after).get(name) or {}).get("score")
        diff = f"{a - b:+.{nd}f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) else "–"
        rows.append([name, fmt(b, nd), fmt(a, nd), diff])
    ob, oa = overall(before), overall(after)
    rows.append(["held-out average", fmt(ob, nd), fmt(oa, nd),
                 f"{oa - ob:+.{nd}f}" if ob is not None and oa is not None else "–"])
    tb, ta = by_tier(before), by_tier(after)
    for tier in sorted(set(tb) | set(ta)):
        b, a = tb.get(tier), ta.get(tier)
        rows.append([f"held-out, {tier}-resource", fmt(b, nd), fmt(a, nd),
                     f"{a - b:+.{nd}f}" if a is not None and b is not None else "–"])
    return Table(f"General-task cost of the safety data ({metric_name(before)})",
                 ["task", "trained", "with safety data", "change"], rows,
                 note="The same recipe, tokenizer, seed and evaluation; the second model's mixture adds the "
                      "distilled safety source. The paper: a small loss on general tasks.")


def share_table(art: RunArtifacts) -> Table | None:
    """The safety share the second mixture asked for and got."""
    stats_path = art.run_dir / SAFE_DIR / "data" / "stats.json"
    if not stats_path.is_file() or not distilled(art.recipe):
        return None
    stats = read_json(stats_path)
    kinds = _counts(stats, "kind")
    total = sum(kinds.values())
    distill = (art.recipe.get("safety") or {}).get("distill") or {}
    name = distill.get("source_name", "safety")
    sources = _counts(stats, "source")
    langs = {k: v for k, v in _counts(stats, "language").items()}
    available = sum(((stats.get("available") or {}).get(name) or {}).values())
    repeat = (stats.get("repetition") or {}).get(name)
    rows = [["requested share of the weight", f"{100 * float(distill.get('share', 0)):.1f}%"],
            ["realised share (kind safety)", pct(kinds.get("safety", 0.0), total)],
            ["distilled examples left after the data filters", fmt(int(available))],
            [f"examples from source '{name}' in the mixture", fmt(int(sources.get(name, 0)))],
            ["repetition of the distilled examples", f"{repeat:.1f}x" if isinstance(repeat, (int, float)) else "–"],
            ["examples in the mixture", fmt(int(total))]]
    if langs:
        rows.append(["languages in the mixture", fmt(len(langs))])
    return Table("Safety share of the second mixture", ["quantity", "value"], rows,
                 note="Realised: from the second mixture's stats.json; a small distilled set is repeated to reach "
                      "its share (the data stage says so).")


def _classifier(summary: dict) -> str:
    harm = _harm(summary, BEFORE) or _harm(summary, AFTER)
    if not harm:
        return ""
    det = harm.get("detector") or {}
    if det.get("name") == "judge":
        return f"Harm classifier: an LLM judge at {det.get('endpoint')} asked the paper's harmfulness question."
    return ("Harm classifier: the offline refusal-phrase detector (harmful = did not refuse; an upper bound, since "
            "on-topic and actionable are not checked). A judge is selectable: safety.harm.classifier=judge.")


def _split(summary: dict) -> str:
    split = (_harm(summary, BEFORE) or _harm(summary, AFTER) or {}).get("split") or {}
    if not split.get("seed") and not split.get("test_fraction"):
        return ""
    return (f"Held-out split: made once for this run (seed {split.get('seed')}, test fraction "
            f"{split.get('test_fraction')}, {split.get('path')}); the teacher answered only its training prompts, "
            "and each measured model's training data was checked for held-out prompts.")


def safety_headline(art: RunArtifacts) -> list[str]:
    """The report's headline line on safety: the mean harmful rate before (and after) distillation."""
    if not isinstance(art.safety, dict):
        return []
    summary = _current(art.safety, art.recipe)
    before, after = _harm(summary, BEFORE), _harm(summary, AFTER)
    b = _mean_rate(before)
    if b is None:
        return []
    n = len([r for r in before["languages"].values() if r.get("rate") is not None])
    a = _mean_rate(after)
    line = f"harmful rate on held-out XSafety prompts (mean over {n} languages): {100 * b:.1f}%"
    return [line + (f" -> {100 * a:.1f}% with the distilled safety data" if a is not None else "")]


def safety_section(art: RunArtifacts, out: Path) -> Section | None:
    """The whole safety section; None when the run has no safety results."""
    if not isinstance(art.safety, dict):
        return None
    summary = _current(art.safety, art.recipe)
    sec = Section("safety", "Safety")
    sec.paragraphs += [p for p in (_classifier(summary), _split(summary)) if p]
    for table in (harm_table(summary), cost_table(art), share_table(art)):
        if table is not None:
            sec.tables.append(table)
    before = _mean_rate(_harm(summary, BEFORE))
    if before is not None:
        after = _mean_rate(_harm(summary, AFTER))
        line = f"Mean harmful rate over languages: {100 * before:.1f}% for the trained model"
        line += f", {100 * after:.1f}% with the safety data." if after is not None else "."
        sec.paragraphs.append(line)
    if _harm(summary, BEFORE) or _harm(summary, AFTER):
        sec.paragraphs.append(DEMO_SCALE)
    sec.paragraphs.append(
        "Toxicity follows the RealToxicityPrompts protocol: k sampled continuations per prompt, expected maximum "
        "toxicity and the probability of at least one continuation scored above 0.5; a language the scorer does "
        "not cover is shown as not covered. Intervals are 95% bootstrap intervals over prompts.")
    stored = [t for t in summary.get("tables") or [] if isinstance(t, dict) and "columns" in t and "rows" in t]
    measured = {m for m, parts in (summary.get("models") or {}).items() if parts.get("harm")}
    only_run_models = bool(measured) and measured <= {BEFORE, AFTER}  # else `ayakit safety harm` added others
    for t in tables(summary) or stored:  # rebuilt from the data, so an older summary shows the current tables
        if t["title"].startswith(("Harmful prompts", "Over-refusal")) and only_run_models:
            continue  # shown above, before / after
        sec.tables.append(Table(t["title"], [str(c) for c in t["columns"]], [[_cell(c) for c in row]
                                                                              for row in t["rows"]],
                                note=t.get("note", "")))
    return sec if sec.tables else None


def _cell(value: Any) -> str:
    return fmt(value) if value is not None else "–"
