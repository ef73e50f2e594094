"""k samples per prompt from any eval backend, in chunks, with a progress bar; deterministic for a seed."""

from __future__ import annotations

from collections.abc import Sequence

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ayakit.models import Backend, GenerationParams


def progress() -> Progress:
    """The rich progress bar the safety commands share."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    transient=True)


def sample(backend: Backend, prompts: Sequence[str], k: int, params: GenerationParams, chunk: int = 64,
           description: str = "generating") -> list[list[str]]:
    """k completions for every prompt (row i holds prompt i's samples); chunk j is sampled with seed + j."""
    if k < 1:
        raise ValueError("k (samples per prompt) must be at least 1")
    flat = [(i, p) for i, p in enumerate(prompts) for _ in range(k)]
    out: list[list[str]] = [[] for _ in prompts]
    with progress() as bar:
        task = bar.add_task(description, total=len(flat))
        for j, start in enumerate(range(0, len(flat), chunk)):
            part = flat[start:start + chunk]
            p = GenerationParams(max_new_tokens=params.max_new_tokens, temperature=params.temperature,
                                 top_p=params.top_p, seed=params.seed + j, stop=list(params.stop))
            texts = backend.generate([q for _, q in part], p)
            for (i, _), text in zip(part, texts, strict=True):
                out[i].append(text)
            bar.advance(task, len(part))
    return out
