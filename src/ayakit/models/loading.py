"""Loading a model directory (or hub id): `ayakit.json` (read and written only here), architecture, limits, digest.

`ayakit.json` sits beside the weights of a model ayakit saved. Version 1 holds `format`, `arch` and the trainer's
`max_source_length` / `max_target_length` (plus preset, seed, parameters, vocab_size for the record). Files written
before versioning (no `format`; sometimes only `arch`) are read the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ayakit.io import fingerprint, write_json_atomic
from ayakit.models.arch import ARCHS, Arch, arch_impl
from ayakit.models.backend import BackendError, first_line

META_FILE = "ayakit.json"
META_FORMAT = 1
DEFAULT_PROMPT_LIMIT = 1024
# files of a model dir that do not decide its outputs (left out of the weights fingerprint)
NOT_MODEL_FILES = frozenset({"manifest.json", "metrics.jsonl"})


def read_meta(model: str | Path) -> dict[str, Any]:
    """The ayakit.json of a model ayakit saved ({} for any other model), validated, in the current format."""
    path = Path(model) / META_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BackendError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict):
        raise BackendError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    fmt = meta.get("format", 0)
    if not isinstance(fmt, int) or fmt > META_FORMAT:
        raise BackendError(f"{path}: format {fmt!r} is newer than this ayakit reads ({META_FORMAT}); upgrade ayakit")
    arch = meta.get("arch")
    if arch not in ARCHS:
        raise BackendError(f"{path}: arch is {arch!r}; expected one of {sorted(ARCHS)}")
    for key in ("max_source_length", "max_target_length"):
        value = meta.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 2):
            raise BackendError(f"{path}: {key} is {value!r}; expected an integer of at least 2")
    return {**meta, "format": META_FORMAT}


def save_meta(model_dir: str | Path, meta: dict[str, Any]) -> Path:
    """Write ayakit.json (atomically) beside a saved model; `meta` must hold a known `arch`."""
    if meta.get("arch") not in ARCHS:
        raise ValueError(f"meta arch is {meta.get('arch')!r}; expected one of {sorted(ARCHS)}")
    return write_json_atomic(Path(model_dir) / META_FILE, {"format": META_FORMAT, **meta})


def is_ayakit_model(model: str | Path) -> bool:
    """Whether ayakit saved this model (it has an ayakit.json)."""
    return (Path(model) / META_FILE).is_file()


def detect_arch(model: str | Path, config: Any = None) -> str:
    """'seq2seq' or 'causal': ayakit.json's arch where ayakit saved the model, else the HF config."""
    arch = read_meta(model).get("arch")
    if arch:
        return arch
    if config is None:
        config = load_config(model)
    return "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"


def load_config(model: str | Path) -> Any:
    """The HF config of a model dir or hub id; a one-line BackendError when it cannot be read."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(model))
    except Exception as exc:  # noqa: BLE001 - any loading failure is the user's model spec
        raise BackendError(f"cannot load model {model}: {first_line(exc)}") from None


def positions(config: Any) -> int | None:
    """The size of the model's absolute position table (None for relative positions, as in T5)."""
    for attr in ("n_positions", "max_position_embeddings"):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            return value
    return None


def prompt_limit(meta: dict[str, Any], config: Any, tokenizer: Any) -> int:
    """Longest prompt in tokens: the trainer's source length, else the position table, else the tokenizer's."""
    value = meta.get("max_source_length")
    if isinstance(value, int) and value > 1:
        return value
    table = positions(config)
    if table:
        return table
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 1 < limit < 1_000_000 else DEFAULT_PROMPT_LIMIT


def _file_digest(path: Path, full_limit: int = 64 << 20) -> str:
    """sha256 of a file; for files over 64 MiB, of its size, first and last MiB (weights change everywhere)."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        if size <= full_limit:
            while block := fh.read(1 << 20):
                h.update(block)
        else:
            h.update(fh.read(1 << 20))
            fh.seek(-(1 << 20), os.SEEK_END)
            h.update(fh.read())
    return h.hexdigest()[:16]


def model_digest(spec: str | Path) -> dict[str, Any]:
    """Content digest of a local model dir (weights, config, tokenizer, ayakit.json); a hub id's resolved revision."""
    path = Path(spec)
    if path.is_dir():
        return {"files": {f.name: _file_digest(f) for f in sorted(path.iterdir())
                          if f.is_file() and f.name not in NOT_MODEL_FILES and not f.name.startswith(".")}}
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(str(spec), local_files_only=True)
        return {"hub": str(spec), "revision": Path(local).name}
    except Exception:  # noqa: BLE001 - not cached locally: the id is all we know
        return {"hub": str(spec)}


def weights_fingerprint(model: str | Path) -> str:
    """A short hash of everything in a model dir that decides its outputs (eval caches, translate resume, ct2)."""
    return fingerprint(model_digest(model))


@dataclass
class LoadedModel:
    """A model ready to run, with everything ayakit knows about it."""

    model: Any
    tokenizer: Any
    arch: str
    path: str
    meta: dict[str, Any] = field(default_factory=dict)  # ayakit.json ({} when ayakit did not save the model)
    max_source_length: int | None = None  # the trainer's lengths (None when ayakit did not train it)
    max_target_length: int | None = None
    prompt_limit: int = DEFAULT_PROMPT_LIMIT
    positions: int | None = None  # absolute position table size, when the model has one
    fingerprint: str = ""  # weights_fingerprint of the model dir (a hub id: of its resolved revision)

    @property
    def impl(self) -> Arch:
        """The architecture module (encode, collate, masks, scoring, generation layout)."""
        return arch_impl(self.arch)

    @property
    def trained_by_ayakit(self) -> bool:
        """Whether ayakit saved this model (its targets end with eos)."""
        return bool(self.meta)

    @property
    def pad_id(self) -> int:
        """The padding id: the tokenizer's pad, else its eos, else 0."""
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else (self.tokenizer.eos_token_id or 0)

    @property
    def device(self) -> Any:
        """Where the weights are."""
        return next(self.model.parameters()).device


def load(path_or_id: str | Path, *, device: str | None = None, dtype: str | None = None,
         model: Any = None, tokenizer: Any = None) -> LoadedModel:
    """Load a model dir or hub id: tokenizer, weights (on `device`, in `dtype`), arch and limits from ayakit.json.

    `model` / `tokenizer` skip loading those parts (objects already in memory)."""
    import torch

    spec = str(Path(path_or_id).expanduser()) if Path(path_or_id).expanduser().exists() else str(path_or_id)
    if not Path(spec).exists() and spec.startswith((".", "/", "~")):
        raise BackendError(f"cannot load model {path_or_id}: no such directory")
    meta = read_meta(spec)
    config = model.config if model is not None else load_config(spec)
    arch = meta.get("arch") or detect_arch(spec, config)
    try:
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(spec)
        if model is None:
            kwargs = {"dtype": getattr(torch, dtype)} if dtype else {}
            model = arch_impl(arch).auto_class().from_pretrained(spec, **kwargs)
    except BackendError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise BackendError(f"cannot load model {path_or_id}: {first_line(exc)}") from None
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = model.to(dev).eval()
    return LoadedModel(model=model, tokenizer=tokenizer, arch=arch, path=spec, meta=meta,
                       max_source_length=meta.get("max_source_length"),
                       max_target_length=meta.get("max_target_length"),
                       prompt_limit=prompt_limit(meta, config, tokenizer), positions=positions(config),
                       fingerprint=weights_fingerprint(spec))
