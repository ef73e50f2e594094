"""Atomic writes and the manifest written beside every artifact."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; artifacts should read like any other file
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete the hidden `.NAME.*.tmp` files a killed writer left under directory (call only when none is writing)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in directory.rglob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a text file atomically (temp file, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write JSON atomically, UTF-8, indented."""
    return write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def fingerprint(obj: Any) -> str:
    """A short stable hash of any JSON-able object (inputs of a stage, a config)."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def versions() -> dict[str, str]:
    """Versions of the packages that decide an artifact's content."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("ayakit", "torch", "transformers", "datatrove", "pyarrow", "sacrebleu", "babel"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def write_manifest(directory: str | Path, stage: str, inputs: dict[str, Any], outputs: dict[str, Any],
                   **extra: Any) -> Path:
    """Write `manifest.json` in directory: the stage, its inputs' fingerprint, outputs, counts, versions."""
    directory = Path(directory)
    manifest = {
        "stage": stage,
        "inputs": inputs,
        "inputs_fingerprint": fingerprint(inputs),
        "outputs": outputs,
        "versions": versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }
    return write_json_atomic(directory / MANIFEST, manifest)


def manifest_matches(directory: str | Path, inputs: dict[str, Any]) -> bool:
    """True when directory holds a finished manifest for exactly these inputs (the stage can be skipped)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return False
    try:
        return read_json(path).get("inputs_fingerprint") == fingerprint(inputs)
    except (json.JSONDecodeError, OSError):
        return False


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file; a bad line is a DataError naming file and line."""
    from ayakit.errors import DataError

    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{n}: expected a JSON object per line")
            yield n, row


def read_jsonl_log(path: str | Path) -> list[Any]:
    """The lines of an append-only JSONL log (progress, caches); a last line cut short by an interruption is cut
    off the file, unreadable lines are passed over (their work is redone)."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        path.write_bytes(data)
    out: list[Any] = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
