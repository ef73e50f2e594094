"""Crash-safe checkpoints: accelerate's full state (model, optimiser, scheduler, RNG) plus the data position; a
model ayakit shards itself (sharding.py) passes its own save / load of DCP shards instead.

A checkpoint is written into a hidden temporary directory, its files are hashed into checkpoint.json (written
last), and only then is the directory renamed to step-N: a run killed at any moment leaves either a complete
checkpoint or none. On resume each candidate is verified against its hashes, newest first; a corrupt one is
renamed to step-N.corrupt (kept, never overwritten) and the next older good one is used.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ayakit.errors import DataError
from ayakit.io import file_sha256, read_json, write_json_atomic

STATE = "checkpoint.json"
ACCELERATE = "accelerate"
LAYOUTS = {ACCELERATE: "accelerate's save_state", "dcp": "torch.distributed.checkpoint shards (ayakit's FSDP2)"}
STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass
class Checkpoint:
    """A verified checkpoint directory and its training state (step, rows consumed, metrics so far)."""

    path: Path
    step: int
    state: dict[str, Any]


def checkpoint_dirs(root: Path) -> list[tuple[int, Path]]:
    """(step, dir) of every finished-looking checkpoint under root, oldest first."""
    if not Path(root).is_dir():
        return []
    found = []
    for entry in Path(root).iterdir():
        m = STEP_DIR.match(entry.name)
        if m and entry.is_dir():
            found.append((int(m.group(1)), entry))
    return sorted(found)


def save_checkpoint(accelerator: Any, root: Path, step: int, state: dict[str, Any], keep: int,
                    save: Callable[[Path], None] | None = None, layout: str = ACCELERATE) -> Path:
    """Write step-N atomically on every process (sharded states need all of them); prune to `keep` newest.

    `save(dir)` writes the model, optimiser, scheduler and RNG states on every process (default: accelerate's
    save_state); `layout` (a LAYOUTS key) names what it writes, so a resume with another one is refused.
    """
    root = Path(root)
    final = root / f"step-{step}"
    tmp = root / f".step-{step}.tmp"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    if save is None:
        accelerator.save_state(str(tmp), safe_serialization=True)
    else:
        save(tmp)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        hashes = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        write_json_atomic(tmp / STATE, {"step": step, **state, "layout": layout, "files": hashes,
                                        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        _fsync_dir(tmp)
        if final.exists():  # a stale checkpoint of the same step (e.g. after falling back): keep it aside
            final.rename(set_aside(final, "replaced"))
        os.replace(tmp, final)
        _fsync_dir(root)
        for _, old in checkpoint_dirs(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def set_aside(path: Path, tag: str) -> Path:
    """A free name beside `path` for keeping it (step-N.corrupt, step-N.corrupt-2, ...); never overwrites."""
    candidate = path.with_name(f"{path.name}.{tag}")
    n = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{tag}-{n}")
        n += 1
    return candidate


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def verify(path: Path) -> dict[str, Any]:
    """The checkpoint's state when every file matches its recorded hash; a DataError saying what is wrong."""
    meta_path = Path(path) / STATE
    if not meta_path.is_file():
        raise DataError(f"{path}: no {STATE} (the checkpoint was not finished)")
    try:
        meta = read_json(meta_path)
        files = meta["files"]
    except (ValueError, KeyError, OSError) as exc:
        raise DataError(f"{meta_path}: unreadable ({exc})") from None
    for name, digest in files.items():
        f = Path(path) / name
        if not f.is_file():
            raise DataError(f"{path}: file {name} is missing")
        if file_sha256(f) != digest:
            raise DataError(f"{path}: file {name} is corrupt (its hash does not match {STATE})")
    return meta


def load_latest(accelerator: Any, root: Path, warn: Any = print, load: Callable[[Path], None] | None = None,
                layout: str = ACCELERATE) -> Checkpoint | None:
    """Restore the newest good checkpoint (with `load(dir)`, default accelerate's load_state); None when there is none.

    A corrupt checkpoint is renamed to step-N.corrupt and the next older one is tried; when checkpoints exist but
    none is good, a DataError. A checkpoint of another layout (sharded by FSDP2 vs accelerate's) is not corrupt:
    a DataError saying how it was written, and nothing is renamed.
    """
    candidates = checkpoint_dirs(root)
    if not candidates:
        return None
    problems: list[str] = []
    for step, path in reversed(candidates):
        try:
            state = verify(path)
        except (DataError, OSError, ValueError, KeyError) as exc:
            _set_aside_corrupt(accelerator, path, exc, problems, warn)
            continue
        written = state.get("layout", ACCELERATE)  # checkpoints from before layouts were recorded: accelerate's
        if written != layout:
            raise DataError(f"{path} holds {LAYOUTS.get(written, written)}, but this run saves "
                            f"{LAYOUTS.get(layout, layout)}: resume it as it was launched (train.fsdp, the "
                            "accelerate config, several processes), or train without --resume")
        try:
            if load is None:
                accelerator.load_state(str(path))
            else:
                load(path)
        except (DataError, OSError, RuntimeError, ValueError, KeyError) as exc:
            _set_aside_corrupt(accelerator, path, exc, problems, warn)
            continue
        if problems:
            warn(f"resuming from the older good checkpoint {path}")
        return Checkpoint(path=path, step=step, state=state)
    raise DataError(f"no usable checkpoint in {root}: " + "; ".join(problems))


def _set_aside_corrupt(accelerator: Any, path: Path, exc: BaseException, problems: list[str], warn: Any) -> None:
    problems.append(f"{path.name}: {exc}")
    warn(f"checkpoint {path} is corrupt ({exc}); kept aside as {path.name}.corrupt, trying an older one")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        path.rename(set_aside(path, "corrupt"))
    accelerator.wait_for_everyone()
