"""Read what the stages left in a run directory; every part is optional (a report of a partial run is still a report)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ayakit.errors import DataError
from ayakit.io import iter_jsonl

BASELINE, TRAINED = "baseline", "trained"


@dataclass
class RunArtifacts:
    """The files of one run, parsed."""

    run_dir: Path
    recipe_text: str | None = None
    recipe: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] | None = None
    fertility: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    model_manifest: dict[str, Any] | None = None
    evals: dict[str, dict[str, Any]] = field(default_factory=dict)  # model id -> summary.json
    safety: dict[str, Any] | None = None

    @property
    def baseline_label(self) -> str:
        """What the baseline model is: "pretrained" when the recipe starts from model.name_or_path, else "untrained"."""
        return "pretrained" if (self.recipe.get("model") or {}).get("name_or_path") else "untrained"

    @property
    def name(self) -> str:
        """The run's name: the recipe's, else the folder's."""
        return str(self.recipe.get("name") or self.run_dir.name)


def _json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Lines of a JSONL file; a bad line is an error naming the file and line."""
    if not path.is_file():
        return []
    return [row for _, row in iter_jsonl(path)]


def load_run(run_dir: str | Path) -> RunArtifacts:
    """Everything a report shows, from the run directory's standard layout."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    art = RunArtifacts(run_dir=run_dir)
    recipe_path = run_dir / "recipe.yaml"
    if recipe_path.is_file():
        art.recipe_text = recipe_path.read_text(encoding="utf-8")
        try:
            art.recipe = yaml.safe_load(art.recipe_text) or {}
        except yaml.YAMLError as exc:
            raise DataError(f"{recipe_path}: not valid YAML: {exc}") from None
    art.stats = _json(run_dir / "data" / "stats.json")
    art.fertility = _json(run_dir / "tokenizer" / "fertility.json")
    art.metrics = read_jsonl(run_dir / "model" / "metrics.jsonl")
    art.model_manifest = _json(run_dir / "model" / "manifest.json")
    eval_root = run_dir / "eval"
    if eval_root.is_dir():
        for sub in sorted(eval_root.iterdir()):
            summary = _json(sub / "summary.json")
            if isinstance(summary, dict):
                art.evals[sub.name] = summary
    art.safety = _json(run_dir / "safety" / "summary.json")
    return art
