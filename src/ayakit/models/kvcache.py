"""Per-row KV caches that rows join and leave (serve's continuous batching): what every architecture shares.

Self-attention caches are left-padded to a common length (the attention mask hides the padding, so a row's next
token always sits after the last column); a row's cache is computed alone and concatenated with the running
rows'. Only transformers' plain dynamic layers are merged: sliding-window or quantised layers keep state that
concatenation would break.
"""

from __future__ import annotations

from typing import Any


def pad(t: Any, size: int, dim: int, left: bool = False) -> Any:
    """`t` zero-padded along `dim` to `size` (on the left or the right)."""
    import torch

    missing = size - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    filler = torch.zeros(shape, dtype=t.dtype, device=t.device)
    return torch.cat([filler, t] if left else [t, filler], dim=dim)


def plain(layers: list[Any]) -> bool:
    """Whether every cache layer is a plain DynamicLayer (whose rows can be concatenated and selected)."""
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in layers)


def concat_layers(mine: list[Any], theirs: list[Any], width: int, left: bool) -> None:
    """Append `theirs` rows to `mine` (in place), both padded to `width` positions on the left or the right."""
    import torch

    for a, b in zip(mine, theirs):
        a.keys = torch.cat([pad(a.keys, width, -2, left), pad(b.keys, width, -2, left)])
        a.values = torch.cat([pad(a.values, width, -2, left), pad(b.values, width, -2, left)])


def select_layers(layers: list[Any], idx: Any, columns: slice) -> None:
    """Keep rows `idx` and positions `columns` of every layer (in place)."""
    for layer in layers:
        layer.keys, layer.values = layer.keys[idx, :, columns], layer.values[idx, :, columns]


def merge_self(mine: list[Any], mask: Any, theirs: list[Any], their_mask: Any) -> Any:
    """Append left-padded self-attention rows (layers in place); the merged (B, L) mask."""
    import torch

    width = max(mask.shape[1], their_mask.shape[1])
    concat_layers(mine, theirs, width, left=True)
    return torch.cat([pad(mask, width, 1, left=True), pad(their_mask, width, 1, left=True)])


def select_self(layers: list[Any], mask: Any, idx: Any) -> Any:
    """Keep rows `idx` of left-padded self-attention layers (in place), dropping the leading columns that are padding
    in every kept row; the kept rows' mask."""
    first = int(mask[idx].any(0).nonzero()[0])
    select_layers(layers, idx, slice(first, None))
    return mask[idx, first:]


def extend(mask: Any) -> Any:
    """The (B, L) self-attention mask with one more real column (the token each row feeds at this step)."""
    import torch

    return torch.cat([mask, torch.ones((mask.shape[0], 1), dtype=mask.dtype, device=mask.device)], dim=1)


def new_cache(out: Any, fallback: Any) -> Any:
    """The cache a forward returned (transformers returns it as `cache`), else the one passed in (updated in place)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else fallback
