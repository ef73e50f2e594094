"""`ayakit ablate`: recipe variants trained under one budget, N seeds each, one shared tokenizer and initial model,
compared with paired bootstrap intervals (winners only where significant)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console

from ayakit.recipe import Recipe, RecipeError, apply_override, parse_override, read_recipe_data, recipe_from_dict
from ayakit.runner import STAGE_NAMES, make_progress, run_recipe

SHARED_DIR = "_shared"  # runs/<ablation>/_shared: the mixture of the base recipe and the tokenizer every variant uses


@dataclass
class Variant:
    """One arm of an ablation: a name, a description, its overrides on the base recipe."""

    name: str
    description: str
    overrides: list[str]
    recipe: Path | None = None  # a whole recipe of its own instead of the ablation's base


@dataclass
class Ablation:
    """A base recipe, overrides every variant shares, and the variants."""

    name: str
    description: str
    base: Path | None
    overrides: list[str]
    variants: list[Variant]
    compare: list[str] = field(default_factory=list)  # recipe keys shown beside the results (e.g. source weights)


@dataclass
class Plan:
    """What an ablation runs: each variant's recipe per seed and run directory, and the shared tokenizer (if any)."""

    root: Path
    runs: dict[str, list[tuple[Recipe, Path]]]  # variant -> [(recipe, run dir)] one per seed
    seeds: list[int]
    shared: Recipe | None  # the recipe whose mixture trains the shared tokenizer; None: each run trains its own
    notes: list[str] = field(default_factory=list)


def _override_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                for k, v in value.items()]
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return list(value)
    raise RecipeError(f"{where}: overrides are a list of 'key=value' strings or a mapping of key: value")


def load_ablation(path: Path) -> Ablation:
    """Read an ablation file; the base recipe path is relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"ablation file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    unknown = set(data) - {"name", "description", "base", "overrides", "variants", "compare"}
    if unknown:
        raise RecipeError(f"{path}: unknown keys {sorted(unknown)} (expected name, description, base, overrides, "
                          "variants, compare)")
    for key in ("name", "variants"):
        if key not in data:
            raise RecipeError(f"{path}: missing key {key!r}")
    variants = []
    for i, v in enumerate(data["variants"] or []):
        if not isinstance(v, dict) or "name" not in v:
            raise RecipeError(f"{path}: variants[{i}] needs a name")
        unknown = set(v) - {"name", "description", "overrides", "recipe"}
        if unknown:
            raise RecipeError(f"{path}: variants[{i}]: unknown keys {sorted(unknown)}")
        if "recipe" not in v and "base" not in data:
            raise RecipeError(f"{path}: variants[{i}] names no recipe and the file has no base")
        variants.append(Variant(str(v["name"]), str(v.get("description", "")),
                                _override_list(v.get("overrides"), f"{path}: variants[{i}].overrides"),
                                (path.parent / v["recipe"]).resolve() if v.get("recipe") else None))
    if len(variants) < 2:
        raise RecipeError(f"{path}: an ablation needs at least two variants")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise RecipeError(f"{path}: duplicate variant names {names}")
    base = (path.parent / data["base"]).resolve() if data.get("base") else None
    return Ablation(str(data["name"]), str(data.get("description", "")), base,
                    _override_list(data.get("overrides"), f"{path}: overrides"), variants,
                    [str(k) for k in data.get("compare") or []])


def _recipe_data(source: Path | None, overrides: list[str], where: str) -> dict:
    data = read_recipe_data(source) if source and source.is_file() else None  # with its `base:` chain resolved
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: recipe {source} is missing or not a mapping")
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(data, keys, value)
    return data


def _extra(extra: list[str] | None, data_dir: Path | None) -> list[str]:
    return [*(extra or []), *([f"data_dir={Path(data_dir).expanduser().resolve()}"] if data_dir else [])]


def variant_recipes(ab: Ablation, extra: list[str] | None = None, data_dir: Path | None = None) -> dict[str, Recipe]:
    """Each variant's recipe; an error when variants differ in budget, seed or training length."""
    recipes = {}
    for i, v in enumerate(ab.variants):
        where = f"ablation {ab.name}, variant {v.name}"
        data = _recipe_data(v.recipe or ab.base, [*ab.overrides, *v.overrides, *_extra(extra, data_dir)], where)
        data["name"] = f"{ab.name}-{v.name}"
        if i > 0:  # the untrained model is context, not a variant: evaluate it once, with the first variant
            data.setdefault("eval", {})["baseline"] = False
        recipes[v.name] = recipe_from_dict(data, where=where)
    same = ("seed", "data.budget", "train.steps", "train.epochs", "train.max_minutes", "train.batch_size")
    for key in same:
        values = {name: _get(r.model_dump(mode="json"), key) for name, r in recipes.items()}
        if len({repr(x) for x in values.values()}) > 1:
            raise RecipeError(f"ablation {ab.name}: variants differ in {key} ({values}); an ablation compares "
                              "variants under one budget and seed")
    return recipes


def plan_ablation(ab: Ablation, runs_dir: Path, seeds: int = 1, extra: list[str] | None = None,
                  data_dir: Path | None = None, shared_tokenizer: bool = True) -> Plan:
    """Every (variant, seed) run; with one seed the runs are RUNS/<ablation>/<variant>, else .../<variant>/seed-<s>.

    With shared_tokenizer (the default) one tokenizer, trained on the base recipe's mixture, serves every run, so a
    variant's initial model is the same as every other variant's with the same seed (the weights are seeded); it is
    not possible when variants differ in their tokenizer or model sections, and the plan says so.
    """
    recipes = variant_recipes(ab, extra, data_dir)
    root = Path(runs_dir) / ab.name
    first = next(iter(recipes.values()))
    seed_list = [first.seed + k for k in range(seeds)]
    notes: list[str] = []
    shared = None
    if shared_tokenizer:
        dumps = {n: (r.model_dump(mode="json")["tokenizer"], r.model_dump(mode="json")["model"])
                 for n, r in recipes.items()}
        if len({repr(d) for d in dumps.values()}) > 1:
            notes.append("variants differ in their tokenizer or model settings: each trains its own tokenizer "
                         "(the comparison then includes that difference)")
        elif first.tokenizer.pretrained or first.model.name_or_path:
            notes.append("every variant uses the same pretrained tokenizer and model")
        else:
            where = f"ablation {ab.name}, shared tokenizer"
            data = _recipe_data(ab.base or ab.variants[0].recipe, [*ab.overrides, *_extra(extra, data_dir)], where)
            data["name"] = f"{ab.name}-shared"
            shared = recipe_from_dict(data, where=where)
            notes.append(f"one tokenizer, trained on the base recipe's mixture ({root / SHARED_DIR}), serves every "
                         "variant; variants with the same seed start from the same initial model")
    else:
        notes.append("each variant trains its own tokenizer (--separate-tokenizers): a confound in the comparison")
    runs: dict[str, list[tuple[Recipe, Path]]] = {}
    for name, rec in recipes.items():
        runs[name] = []
        for k, s in enumerate(seed_list):
            update: dict[str, Any] = {"seed": s}
            if shared is not None:
                tok = rec.tokenizer.model_copy(update={"pretrained": str((root / SHARED_DIR / "tokenizer").resolve())})
                update["tokenizer"] = tok
            r = rec.model_copy(update=update)
            run_dir = root / name if seeds == 1 else root / name / f"seed-{s}"
            runs[name].append((r, run_dir))
    return Plan(root, runs, seed_list, shared, notes)


def _get(d: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(d, list):
            d = next((x for x in d if isinstance(x, dict) and x.get("name") == part), None)
        elif isinstance(d, dict):
            d = d.get(part)
        else:
            return None
    return d


def _build_shared_tokenizer(recipe: Recipe, shared_dir: Path, progress: Any) -> None:
    from ayakit.data.pipeline import build
    from ayakit.runner import StageBars
    from ayakit.train.tokenizer import build_tokenizer

    build(recipe, shared_dir, progress=StageBars(progress, "shared data", single=True))
    build_tokenizer(recipe, shared_dir, progress=progress)


def run_ablation(ab: Ablation, runs_dir: Path, extra: list[str] | None = None, data_dir: Path | None = None,
                 force: str | None = None, console: Console | None = None, seeds: int = 1,
                 shared_tokenizer: bool = True) -> Path:
    """Run every variant and seed (each a full run) and write the comparison report; returns its index.html."""
    from ayakit.report.ablation import build_ablation_report

    console = console or Console()
    plan = plan_ablation(ab, runs_dir, seeds, extra, data_dir, shared_tokenizer)
    progress = make_progress(console)
    with progress:
        top = progress.add_task(f"[bold]ablation {ab.name}", total=sum(len(r) for r in plan.runs.values()))
        if plan.shared is not None:
            progress.console.print("[bold]shared tokenizer[/]")
            before = set(progress.task_ids)
            _build_shared_tokenizer(plan.shared, plan.root / SHARED_DIR, progress)
            for task_id in set(progress.task_ids) - before:
                progress.remove_task(task_id)
        for k in range(len(plan.seeds)):
            for name, runs in plan.runs.items():
                rec, run_dir = runs[k]
                if k > 0 and name == next(iter(plan.runs)):  # each seed's untrained model: with its first variant
                    rec = rec.model_copy(update={"eval": rec.eval.model_copy(update={"baseline": True})})
                progress.console.print(f"[bold]variant {name}[/]" + (f", seed {rec.seed}" if seeds > 1 else ""))
                before = set(progress.task_ids)
                run_recipe(rec, run_dir, force=force, progress=progress, console=console)
                for task_id in set(progress.task_ids) - before:
                    progress.remove_task(task_id)
                progress.advance(top)
    return build_ablation_report(ab, {name: [d for _, d in runs] for name, runs in plan.runs.items()}, plan.root,
                                 notes=plan.notes)


def ablate_cmd(
    ablation: Path = typer.Argument(..., help="The ablation YAML: a base recipe, shared overrides and variants "
                                    "(e.g. recipes/ablations/demo-weightings.yaml)."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides applied to every variant."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Runs go to RUNS_DIR/<ablation name>/<variant>."),
    seeds: int = typer.Option(1, "--seeds", min=1, help="Train every variant this many times (seeds recipe.seed, "
                              "recipe.seed+1, ...); scores are means over seeds with intervals over seeds and items."),
    separate_tokenizers: bool = typer.Option(False, "--separate-tokenizers",
                                             help="Each variant trains its own tokenizer on its own mixture (by "
                                                  "default one tokenizer, from the base recipe's mixture, serves all, "
                                                  "so every variant starts from the same model)."),
    force: str = typer.Option(None, "--force", help=f"Redo this stage and later ones in every variant "
                              f"({', '.join(STAGE_NAMES)})."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Public data directory (default: recipe data_dir, "
                                  "else $AYAKIT_DATA_DIR)."),
    base: Path = typer.Option(None, "--base", help="Use this base recipe instead of the file's (e.g. "
                              "recipes/demo-smoke.yaml for a quick check of the same variants)."),
    only: list[str] = typer.Option(None, "--only", help="Run only these variants (repeat the option); the "
                                   "comparison shows those."),
) -> None:
    """Train recipe variants under one budget, then compare them paper-style (Tables 5 and 7).

    Every difference between variants is a paired bootstrap over the evaluation items (and over seeds with
    --seeds N); a variant is marked best only where it is significantly better than every other. The report goes
    to RUNS_DIR/<ablation>/report.md and index.html.
    """
    from ayakit.report.ablation import comparison_text

    console = Console()
    ab = load_ablation(ablation)
    if base is not None:
        ab.base = Path(base).resolve()
    if only:
        unknown = set(only) - {v.name for v in ab.variants}
        if unknown:
            raise RecipeError(f"--only {sorted(unknown)}: no such variant in {ablation} "
                              f"(variants: {', '.join(v.name for v in ab.variants)})")
        ab.variants = [v for v in ab.variants if v.name in only]
    t0 = time.perf_counter()
    index = run_ablation(ab, runs_dir, overrides or [], data_dir, force, console, seeds, not separate_tokenizers)
    console.print(f"\n[bold]ablation finished in {time.perf_counter() - t0:.0f} s[/]")
    console.print(comparison_text(index.parent), highlight=False, soft_wrap=True)
    console.print(f"report: {index}")
    console.print(f"markdown: {index.with_name('report.md')}")
