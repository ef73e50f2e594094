"""Models: a T5/mT5 or Llama-style size preset built from scratch, or any HF model id or local path."""

from __future__ import annotations

import shutil
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ayakit.io import write_manifest
from ayakit.models import META_FILE, arch_impl, detect_arch, read_meta, save_meta
from ayakit.recipe import Recipe, RecipeError
from ayakit.train.tokenizer import load_tokenizer


@lru_cache(maxsize=1)
def presets() -> dict[str, dict[str, dict[str, Any]]]:
    """Size presets per architecture, from the packaged presets.yaml."""
    text = (resources.files("ayakit.train") / "presets.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def preset_config(arch: str, name: str) -> dict[str, Any]:
    """One preset's config fields; a RecipeError listing the known presets when `name` is unknown."""
    table = presets().get(arch)
    if table is None:
        raise RecipeError(f"model.arch={arch!r}: expected one of {sorted(presets())}")
    if name not in table:
        raise RecipeError(f"model.preset={name!r} is unknown for arch {arch!r}; known presets: {sorted(table)}")
    return dict(table[name])


def check_recipe(recipe: Recipe) -> None:
    """Impossible model and length settings as one-line RecipeErrors, before anything is built."""
    m, t = recipe.model, recipe.train
    if not m.name_or_path:
        if not m.preset:
            raise RecipeError("model: set model.preset (one of "
                              f"{sorted(presets().get(m.arch, {}))}) or model.name_or_path")
        preset_config(m.arch, m.preset)
    elif _looks_local(m.name_or_path) and not Path(m.name_or_path).expanduser().exists():
        raise RecipeError(f"model.name_or_path={m.name_or_path!r}: no such directory")
    if t.max_source_length < 2 or t.max_target_length < 2:
        raise RecipeError("train.max_source_length and train.max_target_length must be at least 2 "
                          "(one token and end-of-sequence)")
    joint = arch_impl(m.arch).JOINT  # prompt and target in one sequence
    if t.pack_source_length is not None and t.pack_source_length < t.max_source_length + (
            t.max_target_length if joint else 0):
        need = "max_source_length + max_target_length" if joint else "max_source_length"
        raise RecipeError(f"train.pack_source_length={t.pack_source_length} is shorter than {need}")
    if t.pack_target_length is not None and t.pack_target_length < t.max_target_length:
        raise RecipeError(f"train.pack_target_length={t.pack_target_length} is shorter than "
                          f"train.max_target_length={t.max_target_length}")


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") != 1 or Path(name).expanduser().exists()


def build_model(recipe: Recipe, tokenizer: Any) -> tuple[Any, dict[str, Any]]:
    """The model (in memory) and its ayakit.json metadata; seeded by recipe.seed, so every call gives the same weights."""
    import torch

    check_recipe(recipe)
    m = recipe.model
    torch.manual_seed(recipe.seed)
    if m.name_or_path:
        model, arch = _load_pretrained(m.name_or_path, m.overrides)
        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))
        preset = None
    else:
        arch, preset = m.arch, m.preset
        fields = preset_config(arch, preset) | dict(m.overrides)
        model = _from_preset(arch, fields, tokenizer, recipe)
    meta = {
        "arch": arch,
        "preset": preset,
        "name_or_path": m.name_or_path,
        "max_source_length": recipe.train.max_source_length,
        "max_target_length": recipe.train.max_target_length,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "seed": recipe.seed,
    }
    return model, meta


def _from_preset(arch: str, fields: dict[str, Any], tokenizer: Any, recipe: Recipe) -> Any:
    positions = recipe.train.pack_source_length or (recipe.train.max_source_length
                                                    + recipe.train.max_target_length)
    try:
        return arch_impl(arch).build(fields, tokenizer, positions)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"model.overrides / preset gave an impossible config: {exc}") from None


def _load_pretrained(name_or_path: str, overrides: dict[str, Any]) -> tuple[Any, str]:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(name_or_path, **overrides)
        arch = detect_arch(name_or_path, config)
        return arch_impl(arch).auto_class().from_pretrained(name_or_path, config=config), arch
    except (OSError, ValueError) as exc:
        raise RecipeError(f"model.name_or_path={name_or_path!r} cannot be loaded: {str(exc).splitlines()[0]}") \
            from None


def save_model(model: Any, tokenizer: Any, meta: dict[str, Any], out_dir: Path, recipe: Recipe,
               state_dict: dict | None = None) -> Path:
    """save_pretrained (config, weights, generation_config) + tokenizer + ayakit.json into out_dir.

    `state_dict` is the gathered full state when the model is sharded (FSDP / ZeRO-3).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gen = model.generation_config
    gen.eos_token_id = tokenizer.eos_token_id
    gen.pad_token_id = tokenizer.pad_token_id
    arch_impl(meta["arch"]).finish_generation_config(gen, model, tokenizer)
    gen.max_new_tokens = recipe.train.max_target_length
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # one tiny shard: the caller's progress display is enough
    try:
        model.save_pretrained(out_dir, state_dict=state_dict)
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(out_dir)
    save_meta(out_dir, meta)
    return out_dir


def init_model(recipe: Recipe, tokenizer_path: Path, out_dir: Path) -> Path:
    """Build the untrained model (preset or name_or_path) and save it as an HF directory with ayakit.json."""
    tokenizer = load_tokenizer(Path(tokenizer_path))
    model, meta = build_model(recipe, tokenizer)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.") as tmp:
        staging = Path(tmp) / "model"
        save_model(model, tokenizer, meta, staging, recipe)
        write_manifest(staging, "init_model", {"model": recipe.model.model_dump(mode="json"), "seed": recipe.seed,
                                               "tokenizer": str(tokenizer_path)},
                       {"parameters": meta["parameters"]})
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    return out_dir


def model_info(model_dir: Path) -> dict[str, Any]:
    """The ayakit.json of a saved model (arch, lengths, preset)."""
    meta = read_meta(model_dir)
    if not meta:
        raise FileNotFoundError(f"{model_dir} has no {META_FILE}: not a model ayakit saved")
    return meta
