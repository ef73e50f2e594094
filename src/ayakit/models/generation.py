"""Batched generation: the one function eval, translate and judge call (serve keeps its own continuous loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ayakit.models.arch import arch_impl
from ayakit.models.backend import GenerationParams
from ayakit.models.packed import pad_prompts


def generate(model: Any, arch: str, prompts: list[list[int]], params: GenerationParams, *, pad_id: int,
             eos_ids: set[int] | None = None, batch_size: int | None = 32,
             progress: Callable[[int], None] | None = None, **generate_kwargs: Any) -> list[list[int]]:
    """New token ids per prompt (in prompt order), up to the first eos, padding removed.

    Prompts are sorted longest first and run `batch_size` at a time (None: all at once) through HF `generate`,
    greedy at temperature 0, else nucleus sampling seeded by `params.seed` before each batch. `progress` gets the
    number of prompts finished after each batch; `generate_kwargs` go to HF `generate` (e.g. forced_bos_token_id).
    """
    import torch

    if not prompts:
        return []
    impl = arch_impl(arch)
    device = next(model.parameters()).device
    stop_ids = set(eos_ids or ()) | {i for i in _ids(model.generation_config.eos_token_id)}
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    size = batch_size or len(prompts)
    out: list[list[int]] = [[] for _ in prompts]
    sample = params.temperature > 0
    kwargs: dict[str, Any] = {"max_new_tokens": params.max_new_tokens, "do_sample": sample, "num_beams": 1,
                              "pad_token_id": pad_id}
    if sample:
        kwargs.update(temperature=params.temperature, top_p=params.top_p)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    kwargs.update(generate_kwargs)
    for start in range(0, len(order), size):
        group = order[start:start + size]
        ids, mask = pad_prompts([prompts[i] for i in group], pad_id, impl.PAD_SIDE)
        if sample:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
        for row, new in enumerate(impl.generated(gen, ids.shape[1]).tolist()):
            out[group[row]] = _until_eos(new, stop_ids, pad_id)
        if progress:
            progress(len(group))
    return out


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def _until_eos(ids: list[int], eos: set[int], pad_id: int) -> list[int]:
    out = []
    for t in ids:
        if t in eos:
            break
        if t != pad_id:
            out.append(t)
    return out
