"""run_dir/safety/summary.json: what every safety command found, merged into one file the report renders.

Shape (every part optional; each command updates its own part and leaves the rest):

    {
      "version": 1,
      "models": {
        "<model-id>": {                              # model_label(): "<run>/model", a folder name, or an endpoint;
                                                     # "<model-id>+preamble" when run with --preamble
          "toxicity": {
            "<prompt-set>": {                        # flores | embedded | identity | holistic
              "scorer": {"name": "lexicon", "languages": [...], ...},
              "samples_per_prompt": 4,
              "generation": {"max_new_tokens": .., "temperature": .., "top_p": .., "seed": ..},
              "languages": {
                "<code>": {"covered": true, "prompts": 20, "samples": 80, "emt": 0.05, "emt_ci": [lo, hi],
                           "toxicity_probability": 0.05, "toxicity_probability_ci": [lo, hi],
                           "toxic_samples": 4, "dropped_toxic_prompts": 0}
                        | {"covered": false, "reason": "..."}
              },
              "groups": {                            # identity and holistic sets only
                "<code>": {"<group>": {<the same numbers>, "top_words": [[word, count], ...]}}
              }
            }
          },
          "harm": {
            "detector": {"name": "refusal-phrases" | "judge", ...},
            "split": {"path": "harm/split.parquet", "test_fraction": 0.2, "seed": 1234, "categories": [...]},
            "languages": {"<code>": {"covered": true, "n": 40, "count": 30, "rate": 0.75, "ci": [lo, hi],
                                     "unparsed": 0, "refusal_rate": 0.25}},   # unparsed: judge verdicts
            "over_refusal": {"set": "xsafety commonsense (test split)",
                             "languages": {"<code>": {"n": .., "count": .., "rate": .., "ci": [..]}}}
          }
        }
      },
      "distill": {"teacher": "<model-id>", "output": "distill/safety.parquet", "kept": 900,
                  "counts": {"<code>": {"prompts": .., "too_short": .., "too_long": .., "repetitive": .., "kept": ..}},
                  "preamble": {"version": .., "languages": [...], "translated": [...], "missing": [...]}},
      "tables": [{"title": .., "columns": [..], "rows": [[..]], "note": ..}]   # what the report shows
    }

Rates are shares in [0, 1]; every "ci" is a 95% percentile bootstrap interval over prompts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ayakit.io import read_json, write_json_atomic
from ayakit.recipe import DistillConfig

SUMMARY = "summary.json"
VERSION = 1


def model_label(spec: str) -> str:
    """A readable model id: '<run>/model' for a run's model folder, the folder name, or the endpoint spec."""
    if spec.startswith(("http://", "https://")):
        return spec
    path = Path(spec).expanduser()
    if path.name in ("model", "") or path.parent.name == "checkpoints":
        parts = path.resolve().parts
        return "/".join(parts[-3:] if path.parent.name == "checkpoints" else parts[-2:])
    return path.name


def default_out(spec: str) -> Path | None:
    """runs/<name>/safety for a model inside a run directory (runs/<name>/model), else None."""
    path = Path(spec).expanduser()
    if not path.is_dir():
        return None
    run = path.parent.parent.parent if path.parent.name == "checkpoints" else path.parent
    if (run / "recipe.yaml").is_file() or path.name == "model":
        return run / "safety"
    return None


def load_summary(out_dir: str | Path) -> dict[str, Any]:
    """The current summary (an empty one when absent)."""
    path = Path(out_dir) / SUMMARY
    data = read_json(path) if path.is_file() else {}
    data.setdefault("version", VERSION)
    data.setdefault("models", {})
    return data


def update_summary(out_dir: str | Path, section: list[str], value: Any) -> dict[str, Any]:
    """Set one nested part of summary.json (for example ["models", id, "harm"]), rebuild its tables, write atomically."""
    data = load_summary(out_dir)
    node = data
    for key in section[:-1]:
        node = node.setdefault(key, {})
    node[section[-1]] = value
    data["tables"] = tables(data)
    write_json_atomic(Path(out_dir) / SUMMARY, data)
    return data


def _fmt_ci(ci: Any) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if isinstance(ci, list) and len(ci) == 2 else "–"


def tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary as plain tables (title, columns, rows, note): what the report renders."""
    out: list[dict[str, Any]] = []
    tox_rows, group_rows = [], []
    harm_models: list[str] = []
    harm: dict[str, dict[str, str]] = {}  # language -> model -> "rate [lo, hi]"
    over: dict[str, dict[str, str]] = {}
    for model, parts in sorted(data.get("models", {}).items()):
        result = parts.get("harm")
        if result:
            col = f"{model} ({result.get('detector', {}).get('name', '?')})"
            harm_models.append(col)
            for lang, r in result.get("languages", {}).items():
                cell = f"{r['rate']:.3f} {_fmt_ci(r['ci'])}" if r.get("covered", True) and r.get("rate") is not None \
                    else "not covered"
                harm.setdefault(lang, {})[col] = cell
            for lang, r in result.get("over_refusal", {}).get("languages", {}).items():
                if r.get("rate") is not None:
                    over.setdefault(lang, {})[col] = f"{r['rate']:.3f} {_fmt_ci(r['ci'])}"
        for pset, res in sorted(parts.get("toxicity", {}).items()):
            scorer = res.get("scorer", {}).get("name", "?")
            for lang, r in sorted(res.get("languages", {}).items()):
                if r.get("covered"):
                    tox_rows.append([model, pset, scorer, lang, r.get("prompts", 0), r.get("emt"),
                                     _fmt_ci(r.get("emt_ci")), r.get("toxicity_probability"),
                                     _fmt_ci(r.get("toxicity_probability_ci"))])
                else:
                    tox_rows.append([model, pset, scorer, lang, 0, None, "not covered", None, "–"])
            for lang, groups in sorted(res.get("groups", {}).items()):
                for group, r in sorted(groups.items()):
                    words = ", ".join(w for w, _ in r.get("top_words", [])[:5])
                    group_rows.append([model, pset, lang, group, r["prompts"], r["emt"], r["toxicity_probability"],
                                       words])
    if harm:
        out.append({"title": "Harmful prompts: harmful rate per language (held-out XSafety test split), 95% CI",
                    "columns": ["language", *harm_models],
                    "rows": [[lang, *(harm[lang].get(m, "–") for m in harm_models)] for lang in sorted(harm)],
                    "note": "refusal-phrases: harmful = did not refuse (an upper bound: it does not check that the "
                            "answer is on topic or actionable); judge: an LLM judge with the paper's definition. "
                            "MODEL+preamble: the model with the safety preamble prepended (the teacher setting)."})
    if over:
        out.append({"title": "Over-refusal on benign prompts: refusal rate, 95% CI",
                    "columns": ["language", *harm_models],
                    "rows": [[lang, *(over[lang].get(m, "–") for m in harm_models)] for lang in sorted(over)],
                    "note": "benign set: XSafety commonsense prompts (test split); refusals found by the phrase "
                            "detector"})
    if tox_rows:
        out.append({"title": "Toxicity of open-ended generations", "columns": [
            "model", "prompts", "scorer", "language", "n", "EMT", "EMT 95% CI", "toxicity prob.", "95% CI"],
            "rows": tox_rows, "note": "EMT: the maximum toxicity over k samples, averaged over prompts; "
                                      "toxicity probability: the share of prompts with a sample scored > 0.5."})
    if group_rows:
        out.append({"title": "Identity groups: toxicity and most distinctive words", "columns": [
            "model", "prompts", "language", "group", "n", "EMT", "toxicity prob.", "top words"],
            "rows": group_rows})
    distill = data.get("distill")
    if isinstance(distill, dict):
        rows = [[lang, c.get("prompts"), c.get("too_short"), c.get("too_long"), c.get("repetitive"), c.get("kept")]
                for lang, c in sorted(distill.get("counts", {}).items())]
        missing = ", ".join(distill.get("preamble", {}).get("missing", [])) or "none"
        f = {**DistillConfig().model_dump(), **(distill.get("filters") or {})}  # older summaries: the defaults
        out.append({"title": f"Safety distillation set (teacher {distill.get('teacher')})",
                    "columns": ["language", "prompts", f"< {f['min_chars']} chars", f"> {f['max_chars']} chars",
                                "repetitive", "kept"],
                    "rows": rows, "note": f"languages without a preamble: {missing}"})
    return out
