"""Choosing an engine for a model spec: a URL goes to the OpenAI-compatible engine, a path or hub id to `engine`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ayakit.models.backend import Backend

OPENAI_OPTIONS = frozenset({"model", "api_key", "chat", "timeout", "max_retries", "backoff", "client"})


def _hf(spec: str, **kwargs: Any) -> Backend:
    from ayakit.models.hf import HFBackend

    return HFBackend(spec, **kwargs)


def _openai(spec: str, **kwargs: Any) -> Backend:
    from ayakit.models.openai import OpenAIBackend

    return OpenAIBackend(spec, **kwargs)


# engine name -> factory(spec, **options) for local models and hub ids
ENGINES: dict[str, Callable[..., Backend]] = {
    "hf": _hf,
}


def load_backend(spec: str, engine: str = "hf", **kwargs: Any) -> Backend:
    """A backend from a spec: 'http(s)://host[:port][/v1][#model]' -> OpenAI-compatible; a path or hub id -> `engine`.

    Options that do not apply to the chosen engine are dropped (one option set serves every engine)."""
    if spec.startswith(("http://", "https://")):
        return _openai(spec, **{k: v for k, v in kwargs.items() if k in OPENAI_OPTIONS})
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {sorted(ENGINES)}")
    path = Path(spec).expanduser()
    return ENGINES[engine](str(path) if path.exists() else spec,
                           **{k: v for k, v in kwargs.items() if k not in OPENAI_OPTIONS})
