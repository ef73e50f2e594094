"""k samples per prompt from any eval backend, in chunks, with a progress bar; deterministic for a seed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bars

from ayakit.models import Backend, GenerationParams
from ayakit.recipe import Sampling


Progress = Callable[[str, int, int], None]  # (what, done, total): draws into a caller's display (ayakit run)


def params(sampling: Sampling, max_new_tokens: int) -> GenerationParams:
    """Generation settings from the recipe's safety sampling (one sample per call; seeds vary per chunk)."""
    return GenerationParams(max_new_tokens=max_new_tokens, temperature=sampling.temperature, top_p=sampling.top_p,
                            seed=sampling.seed)


def progress_bar() -> Bars:
    """The rich progress bar the safety commands share."""
    return Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    transient=True)


def sample(backend: Backend, prompts: Sequence[str], k: int, params: GenerationParams, chunk: int = 64,
           description: str = "generating", progress: Progress | None = None) -> list[list[str]]:
    """k completions for every prompt (row i holds prompt i's samples); chunk j is sampled with seed + j.
    progress: report into the caller's display instead of a bar of its own."""
    if k < 1:
        raise ValueError("k (samples per prompt) must be at least 1")
    flat = [(i, p) for i, p in enumerate(prompts) for _ in range(k)]
    out: list[list[str]] = [[] for _ in prompts]
    own = progress_bar() if progress is None else None
    with own if own is not None else contextlib.nullcontext():
        task = own.add_task(description, total=len(flat)) if own is not None else None
        for j, start in enumerate(range(0, len(flat), chunk)):
            part = flat[start:start + chunk]
            p = GenerationParams(max_new_tokens=params.max_new_tokens, temperature=params.temperature,
                                 top_p=params.top_p, seed=params.seed + j, stop=list(params.stop))
            texts = backend.generate([q for _, q in part], p)
            for (i, _), text in zip(part, texts, strict=True):
                out[i].append(text)
            if own is not None:
                own.advance(task, len(part))
            else:
                progress(description, min(start + chunk, len(flat)), len(flat))
    return out
