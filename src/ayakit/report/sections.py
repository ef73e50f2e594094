"""The report's sections, each built from one stage's artifacts (plots are written into the report folder)."""

from __future__ import annotations

from pathlib import Path
from statistics import median
from typing import Any

from ayakit import languages as L
from ayakit.data.summary import REPEAT_WARN, build_summary
from ayakit.report import plots
from ayakit.report.artifacts import BASELINE, TRAINED, RunArtifacts
from ayakit.report.model import Figure, Section, Table
from ayakit.report.scores import TIER_ORDER, by_tier, digits, metric_name, overall, tasks, tier_of


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table cell; '–' for missing."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "–" if value is None else str(value)


def fmt_ci(ci: Any, digits: int = 3) -> str:
    """'[21.0, 33.4]' for a confidence interval."""
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
        return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return "–"


def pct(part: float, total: float) -> str:
    """A share as a percentage."""
    return f"{100.0 * part / total:.1f}%" if total else "–"


def lang_label(code: str) -> str:
    """'srp-Latn (Serbian (Latin))': the code and a name that tells varieties apart."""
    try:
        return f"{code} ({L.display_name(code)})"
    except ValueError:
        return code


def _shares(d: dict[str, Any] | None) -> dict[str, float]:
    vals = {k: float(v) for k, v in (d or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    total = sum(vals.values())
    return {k: v / total for k, v in vals.items()} if total else {}


def _counts(stats: dict[str, Any], key: str) -> dict[str, float]:
    """Example counts by one key, from stats['counts'] or (when those are missing) stats['realised'] × total."""
    counts = (stats.get("counts") or {}).get(key)
    if isinstance(counts, dict) and counts:
        return {k: float(v) for k, v in counts.items() if isinstance(v, (int, float))}
    realised = (stats.get("realised") or {}).get(key) or {}
    vals = {k: float(v) for k, v in realised.items() if isinstance(v, (int, float))}
    if vals and sum(vals.values()) <= 1.0001 and stats.get("total"):
        return {k: v * float(stats["total"]) for k, v in vals.items()}
    return vals


# --------------------------------------------------------------------------------------------------- recipe


def recipe_section(art: RunArtifacts, out: Path) -> Section | None:
    """The resolved recipe, verbatim."""
    if not art.recipe_text:
        return None
    return Section("recipe", "Resolved recipe", paragraphs=[
        "Every default filled in; rerunning `ayakit run` on this file reproduces the run."], code=art.recipe_text)


# --------------------------------------------------------------------------------------------------- mixture


def mixture_section(art: RunArtifacts, out: Path) -> Section | None:
    """Shares by source (requested vs realised), kind, tier and language; filters; what was skipped."""
    stats = art.stats
    if not stats:
        return None
    sec = Section("mixture", "Training mixture")
    total = stats.get("total") or sum(_counts(stats, "source").values())
    sec.paragraphs.append(f"{fmt(total)} examples sampled for a budget of {fmt(stats.get('budget'))} "
                          f"(seed {fmt(stats.get('seed'))}).")
    requested = _shares(stats.get("requested", {}).get("source"))
    realised_counts = _counts(stats, "source")
    realised = _shares(realised_counts)
    repetition = stats.get("repetition") or {}
    if isinstance(repetition.get("source"), dict):
        repetition = repetition["source"]
    names = list(dict.fromkeys([*requested, *realised]))
    by_source = stats.get("by_source") or {}
    sec.tables.append(Table("By source: requested vs realised", ["source", "licence", "requested", "realised",
                                                                "examples", "repetition"],
                            [[n, _licences(by_source.get(n, {}).get("license")), pct(requested.get(n, 0), 1),
                              pct(realised.get(n, 0), 1),
                              fmt(int(realised_counts.get(n, 0))), fmt(repetition.get(n), 2) + "×"
                              if repetition.get(n) is not None else "–"] for n in names],
                            note="Repetition above 1× means the source was smaller than its share and was repeated."))
    sec.tables += _source_language_tables(by_source)
    if names:
        sec.figures.append(Figure(plots.grouped_bars(
            out / "mixture_sources.png", names,
            {"requested": [100 * requested.get(n, 0) for n in names],
             "realised": [100 * realised.get(n, 0) for n in names]},
            ylabel="share of the mixture (%)", title="Source shares: requested vs realised",
            xlabel="source").name, "Requested and realised share of each source."))
    for key, title in (("kind", "By kind"), ("dataset", "By dataset")):
        counts = _counts(stats, key)
        if counts:
            tot = sum(counts.values())
            rows = [[k, fmt(int(v)), pct(v, tot)] for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
            sec.tables.append(Table(title, [key, "examples", "share"], rows))
    lang_counts = _counts(stats, "language")
    if lang_counts:
        tot = sum(lang_counts.values())
        tier_n: dict[str, list[float]] = {}
        for code, v in lang_counts.items():
            tier_n.setdefault(tier_of(code), []).append(v)
        tiers_sorted = sorted(tier_n, key=lambda t: TIER_ORDER.index(t) if t in TIER_ORDER else 9)
        sec.tables.append(Table("By resource tier", ["tier", "languages", "examples", "share"],
                                [[t, fmt(len(tier_n[t])), fmt(int(sum(tier_n[t]))), pct(sum(tier_n[t]), tot)]
                                 for t in tiers_sorted]))
        ordered = sorted(lang_counts.items(), key=lambda kv: -kv[1])
        sec.figures.append(Figure(plots.language_bars(
            out / "mixture_languages.png", [c for c, _ in ordered], [100 * v / tot for _, v in ordered],
            [tier_of(c) for c, _ in ordered], ylabel="share of the mixture (%)",
            title=f"Share of each language in the mixture ({len(ordered)} languages)").name,
            "Per-language share of the sampled mixture, coloured by resource tier (as the paper's Figure 18)."))
        k = 10
        head, tail = ordered[:k], ordered[-k:] if len(ordered) > k else []
        rows = [[lang_label(c), tier_of(c), fmt(int(v)), pct(v, tot)] for c, v in head]
        if tail:
            rows += [["…", "", "", ""]] + [[lang_label(c), tier_of(c), fmt(int(v)), pct(v, tot)]
                                           for c, v in tail if (c, v) not in head]
        sec.tables.append(Table("Largest and smallest languages", ["language", "tier", "examples", "share"], rows))
        rolled = bool(stats.get("rolled_up"))
        sec.tables.append(Table(
            f"Per language, rolled up to the paper's rows ({len(ordered)})" if rolled
            else f"Per language variety ({len(ordered)})", ["language", "tier", "paper's row", "examples", "share"],
            [[lang_label(c), tier_of(c), _rollup_row(c), fmt(int(v)), pct(v, tot)] for c, v in ordered],
            note="Varieties stay distinct (script and region are part of the tag); `unlisted`: outside the Aya 101, "
                 "no tier is invented. `ayakit report --rollup` merges them into the paper's rows."))
    filters = stats.get("filters") or {}
    if filters:
        rows = []
        for name, row in filters.items():
            row = row if isinstance(row, dict) else {"removed": row}
            by_lang = row.get("by_language") or {}
            top = sorted(by_lang.items(), key=lambda kv: -kv[1])[:5]
            rows.append([name, fmt(row.get("removed")), ", ".join(f"{c} {fmt(n)}" for c, n in top) or "–"])
        sec.tables.append(Table("Filters", ["filter", "removed", "most affected languages"], rows))
    available = stats.get("available") or {}
    rows = [[src, ds, fmt(n)] for src, d in available.items() if isinstance(d, dict) for ds, n in d.items()]
    if rows:
        sec.tables.append(Table("Available before sampling", ["source", "dataset", "examples"], rows))
    # stats.json of a build before the summary existed: the same summary from its counts
    summary_tables(sec, stats.get("summary") or build_summary(stats, None))
    for key, label in (("skipped_sources", "Skipped sources"), ("errors", "Errors")):
        val = stats.get(key)
        if isinstance(val, dict):
            val = {k: v for k, v in val.items() if v}
        if val:
            sec.paragraphs.append(f"{label}: " + (", ".join(map(str, val)) if isinstance(val, list) else str(val)))
    return sec


def _rollup_row(code: str) -> str:
    try:
        return L.rollup(code)
    except ValueError:
        return "–"


def summary_tables(sec: Section, summary: dict[str, Any] | None) -> None:
    """The build's "nothing silent" summary: rows dropped per reason and language, skipped varieties, repeats."""
    if not isinstance(summary, dict):
        return
    rows = [[reason, fmt(sum(by.values())), lang, fmt(n)]
            for reason, by in (summary.get("dropped") or {}).items()
            for lang, n in sorted(by.items(), key=lambda kv: (-kv[1], kv[0]))]
    if rows:
        sec.tables.append(Table("Rows dropped, per reason and language", ["reason", "rows (reason)", "language",
                                                                         "rows"], rows))
    bad = [[source, reason, fmt(n)] for source, why in (summary.get("skipped_rows") or {}).items()
           for reason, n in sorted(why.items(), key=lambda kv: (-kv[1], kv[0]))]
    if bad:
        sec.tables.append(Table("Bad lines skipped (data.on_error=skip), per source and reason",
                                ["source", "reason", "lines"], bad))
    skipped = summary.get("skipped") or {}
    if skipped:
        sec.tables.append(Table("Skipped", ["what", "why"], [[k, str(v)] for k, v in skipped.items()]))
    repeated = summary.get("repeated") or {}
    if repeated:
        sec.tables.append(Table(f"Sources repeated more than {REPEAT_WARN:g}x", ["source", "repetition"],
                                [[k, fmt(v, 1) + "×"] for k, v in repeated.items()]))
    warnings = summary.get("warnings") or []
    sec.paragraphs.append(f"Build warnings ({len(warnings)}): " + "; ".join(warnings) if warnings
                          else "Build warnings: none.")


SOURCE_LANGUAGE_MATRIX = 12  # up to this many languages the source x language table shows every cell
ONE_LANGUAGE = 0.9  # a source with this share or more in one language is flagged


def _licences(counts: dict[str, int] | None) -> str:
    """'cc-by-4.0' or 'apache-2.0 60%, cc-by-4.0 40%' from a source's licence counts."""
    if not counts:
        return "–"
    tot = sum(counts.values())
    if len(counts) == 1:
        return next(iter(counts)) or "unknown"
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k or 'unknown'} {pct(v, tot)}" for k, v in top[:3]) + (" …" if len(top) > 3 else "")


def _source_language_tables(by_source: dict[str, Any]) -> list[Table]:
    """Source x language: the whole matrix when there are few languages, else each source's language spread."""
    per = {name: d.get("language") or {} for name, d in by_source.items() if d.get("language")}
    if not per:
        return []
    langs = sorted({c for d in per.values() for c in d}, key=lambda c: -sum(d.get(c, 0) for d in per.values()))
    tables = []
    if len(langs) <= SOURCE_LANGUAGE_MATRIX:
        rows = [[name, *[pct(d.get(c, 0), sum(d.values())) if d.get(c) else "–" for c in langs]]
                for name, d in per.items()]
        tables.append(Table("Source × language (share of each source's examples)", ["source", *langs], rows))
    rows, flagged = [], []
    for name, d in per.items():
        tot = sum(d.values())
        top_code, top_n = max(d.items(), key=lambda kv: kv[1])
        one = top_n / tot >= ONE_LANGUAGE
        if one:
            flagged.append(name)
        top = sorted(d.items(), key=lambda kv: -kv[1])[:5]
        rows.append([name, fmt(len(d)), f"{top_code} {pct(top_n, tot)}" + (" ⚠" if one else ""),
                     ", ".join(f"{c} {pct(n, tot)}" for c, n in top)])
    note = (f"⚠: {', '.join(flagged)} {'is' if len(flagged) == 1 else 'are'} at least {ONE_LANGUAGE:.0%} one "
            "language." if flagged else "")
    tables.append(Table("Languages of each source", ["source", "languages", "largest language", "top languages"],
                        rows, note=note))
    return tables


# --------------------------------------------------------------------------------------------------- tokenizer


def tokenizer_section(art: RunArtifacts, out: Path) -> Section | None:
    """Fertility (tokens per character and per word) per language and tier."""
    fert = art.fertility
    if not fert or not fert.get("languages"):
        return None
    langs = fert["languages"]
    sec = Section("tokenizer", "Tokenizer fertility", paragraphs=[
        "Tokens per character and per word on the mixture's text: higher means the vocabulary fits the language "
        "worse (longer sequences, less context per token)."])
    ordered = sorted(langs.items(), key=lambda kv: -(kv[1].get("tokens_per_char") or 0))
    tiers = [tier_of(c, v.get("tier")) for c, v in ordered]
    sec.figures.append(Figure(plots.language_bars(
        out / "fertility.png", [c for c, _ in ordered], [v.get("tokens_per_char") or 0 for _, v in ordered], tiers,
        ylabel="tokens per character", title="Tokenizer fertility per language").name,
        "Tokens per character per language, coloured by resource tier."))
    tier_rows = []
    for tier, row in sorted((fert.get("tiers") or {}).items(),
                            key=lambda kv: TIER_ORDER.index(kv[0]) if kv[0] in TIER_ORDER else 9):
        tier_rows.append([tier, fmt(row.get("tokens_per_char")), fmt(row.get("tokens_per_word")),
                          fmt(row.get("n") or row.get("n_languages"))])
    if tier_rows:
        sec.tables.append(Table("By tier", ["tier", "tokens/char", "tokens/word", "n"], tier_rows))
    sec.tables.append(Table("Per language (highest fertility first)",
                            ["language", "tier", "tokens/char", "tokens/word", "texts"],
                            [[lang_label(c), t, fmt(v.get("tokens_per_char")), fmt(v.get("tokens_per_word")),
                              fmt(v.get("n"))] for (c, v), t in zip(ordered, tiers)]))
    return sec


# --------------------------------------------------------------------------------------------------- training


def training_section(art: RunArtifacts, out: Path) -> Section | None:
    """Loss curves and the run's training numbers."""
    if not art.metrics and not art.model_manifest:
        return None
    sec = Section("training", "Training")
    train = [(int(m["step"]), float(m["loss"])) for m in art.metrics
             if m.get("split", "train") == "train" and isinstance(m.get("loss"), (int, float))]
    val = [(int(m["step"]), float(m["val_loss"])) for m in art.metrics if isinstance(m.get("val_loss"), (int, float))]
    if train or val:
        sec.figures.append(Figure(plots.loss_curves(out / "loss.png", train, val).name,
                                  "Training loss (per logged step) and validation loss."))
    rows = []
    if train:
        rows += [["steps", fmt(train[-1][0])], ["first train loss", fmt(train[0][1])],
                 ["last train loss", fmt(train[-1][1])]]
    if val:
        rows += [["best validation loss", fmt(min(v for _, v in val))], ["last validation loss", fmt(val[-1][1])]]
    speeds = [float(m["tokens_per_s"]) for m in art.metrics if isinstance(m.get("tokens_per_s"), (int, float))]
    if speeds:
        rows.append(["median tokens/s", fmt(median(speeds), 0)])
    seen = [m["examples_seen"] for m in art.metrics if isinstance(m.get("examples_seen"), (int, float))]
    if seen:
        rows.append(["examples seen", fmt(int(max(seen)))])
    for key, value in _scalars(art.model_manifest or {}, skip={"stage", "inputs_fingerprint", "finished_at"}):
        rows.append([key, fmt(value)])
    if rows:
        sec.tables.append(Table("Numbers", ["quantity", "value"], rows))
    return sec


def _scalars(obj: dict[str, Any], prefix: str = "", skip: set[str] = frozenset(), depth: int = 0):
    """(dotted key, value) for the scalar leaves of a manifest, skipping inputs and versions."""
    for k, v in obj.items():
        if k in skip or k in ("inputs", "versions", "recipe"):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, dict) and depth < 2:
            yield from _scalars(v, key + ".", skip, depth + 1)
        elif isinstance(v, (int, float, str, bool)) and not (isinstance(v, str) and len(v) > 80):
            yield key, v


# --------------------------------------------------------------------------------------------------- evaluation


def _model_order(evals: dict[str, Any]) -> list[str]:
    first = [m for m in (TRAINED, BASELINE) if m in evals]
    return first + [m for m in evals if m not in first]


def task_table(model_id: str, summary: dict[str, Any]) -> Table:
    """One row per task: metric, score with CI, chance, per-tier scores."""
    all_tasks = tasks(summary)
    nd = digits(summary)
    tiers = sorted({t for v in all_tasks.values() for t in (v.get("by_tier") or {})},
                   key=lambda t: TIER_ORDER.index(t) if t in TIER_ORDER else 9)
    rows = []
    for name, t in all_tasks.items():
        tb = t.get("by_tier") or {}
        rows.append([name, str(t.get("metric", "")), str(t.get("kind", "")), fmt(bool(t.get("unseen_task"))),
                     fmt(t.get("score"), nd), fmt_ci(t.get("ci"), nd), fmt(t.get("chance"), nd),
                     *[f"{fmt((tb.get(tier) or {}).get('score'), nd)} {fmt_ci((tb.get(tier) or {}).get('ci'), nd)}"
                       for tier in tiers]])
    return Table(f"Tasks: {model_id}", ["task", "metric", "kind", "held-out", "score", "95% CI", "chance",
                                        *[f"{t}-resource" for t in tiers]], rows,
                 note="Score: median over prompts, averaged over languages; CIs by bootstrap over items.")


def evaluation_section(art: RunArtifacts, out: Path) -> Section | None:
    """Per-task tables with tiers and CIs, per-language bar charts, best and worst languages."""
    if not art.evals:
        return None
    sec = Section("evaluation", "Evaluation")
    order = _model_order(art.evals)
    main_id = order[0]
    main = art.evals[main_id]
    base = art.evals.get(BASELINE) if main_id != BASELINE else None
    for model_id in order:
        sec.tables.append(task_table(model_id, art.evals[model_id]))
    best_rows = []
    for name, t in tasks(main).items():
        by_lang = {c: v for c, v in (t.get("by_language") or {}).items()
                   if isinstance(v, dict) and isinstance(v.get("score"), (int, float))}
        if not by_lang:
            continue
        ordered = sorted(by_lang.items(), key=lambda kv: -kv[1]["score"])
        base_lang = ((base or {}).get("tasks", {}).get(name) or {}).get("by_language") or {}
        fig = plots.language_bars(
            out / f"eval_{_slug(name)}.png", [c for c, _ in ordered], [v["score"] for _, v in ordered],
            [tier_of(c, v.get("tier")) for c, v in ordered], ylabel=_axis(t.get("metric", "score"), main),
            title=f"{name}: {t.get('metric', 'score')} per language ({main_id} model)",
            markers=[(base_lang.get(c) or {}).get("score") for c, _ in ordered] if base_lang else None,
            marker_label=f"{art.baseline_label} baseline", hline=t.get("chance"), hline_label="chance")
        sec.figures.append(Figure(fig.name, f"{name}: per-language {t.get('metric', 'score')} of the {main_id} "
                                            "model, coloured by tier" + (f"; black ticks: the {art.baseline_label} baseline"
                                                                         if base_lang else "") + "."))
        k = min(art.recipe.get("report", {}).get("top_languages", 5), max(1, len(ordered) // 2))
        nd = digits(main)
        fmt_l = lambda kv: f"{kv[0]} {kv[1]['score']:.{nd}f}"  # noqa: E731
        best_rows.append([name, ", ".join(map(fmt_l, ordered[:k])), ", ".join(map(fmt_l, ordered[::-1][:k]))])
    if best_rows:
        sec.tables.append(Table(f"Best and worst languages ({main_id} model)", ["task", "best", "worst"], best_rows))
    notes = main.get("notes")
    if notes:
        sec.paragraphs.append("Notes: " + ("; ".join(map(str, notes)) if isinstance(notes, list) else str(notes)))
    return sec


def comparison_section(art: RunArtifacts, out: Path) -> Section | None:
    """The untrained (or pretrained) baseline against the trained model, per task and per tier, with the delta."""
    base, trained = art.evals.get(BASELINE), art.evals.get(TRAINED)
    if not base or not trained:
        return None
    sec = Section("comparison", "Baseline vs trained")
    metric = metric_name(trained)
    nd = digits(trained)
    rows, bold = [], set()
    for i, (name, t) in enumerate(tasks(trained).items()):
        b = (base.get("tasks", {}).get(name) or {}).get("score")
        a = t.get("score")
        delta = a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
        rows.append([name, t.get("metric", "–"), fmt(t.get("chance"), nd), "yes" if t.get("unseen_task") else "no",
                     fmt(b, nd), fmt(a, nd), f"{delta:+.{nd}f}" if delta is not None else "–"])
        if delta is not None and delta > 0:
            bold.add((i, 6))
    sec.tables.append(Table("Per task", ["task", "metric", "chance", "held-out", art.baseline_label, "trained", "delta"],
                            rows, bold=bold))
    b_t, a_t = by_tier(base), by_tier(trained)
    tiers = [t for t in TIER_ORDER if t in a_t or t in b_t] + [t for t in a_t if t not in TIER_ORDER]
    b_all, a_all = overall(base), overall(trained)
    rows = [[f"{t}-resource", fmt(b_t.get(t), nd), fmt(a_t.get(t), nd),
             f"{a_t[t] - b_t[t]:+.{nd}f}" if t in a_t and t in b_t else "–"] for t in tiers]
    rows.append(["all", fmt(b_all, nd), fmt(a_all, nd),
                 f"{a_all - b_all:+.{nd}f}" if a_all is not None and b_all is not None else "–"])
    sec.tables.append(Table(f"Held-out {metric} by tier", ["tier", art.baseline_label, "trained", "delta"], rows,
                            note="Mean over held-out tasks of each task's per-tier score."))
    if tiers:
        sec.figures.append(Figure(plots.grouped_bars(
            out / "baseline_vs_trained.png", [*tiers, "all"],
            {"baseline": [b_t.get(t, 0.0) for t in tiers] + [b_all or 0.0],
             "trained": [a_t.get(t, 0.0) for t in tiers] + [a_all or 0.0]},
            ylabel=_axis(f"held-out {metric}", trained), title=f"{art.baseline_label.capitalize()} baseline vs trained model, by resource tier",
            xlabel="resource tier").name, "Held-out score by tier before and after training."))
    return sec


def _axis(metric: str, summary: dict[str, Any]) -> str:
    return f"{metric} (%)" if summary.get("scale") == "0-100" else metric


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


# The order of the report: what a reader asks first comes first; the long recipe comes last.
BUILDERS = (comparison_section, evaluation_section, mixture_section, tokenizer_section, training_section)
