"""Pieces of continuation scoring every architecture uses: batching by budget and log-probabilities at picked positions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def chunks(order: list[int], sizes: list[int], budget: int) -> Iterator[list[int]]:
    """Consecutive groups of `order` whose total size stays within budget (at least one item each)."""
    group: list[int] = []
    total = 0
    for i in order:
        if group and total + sizes[i] > budget:
            yield group
            group, total = [], 0
        group.append(i)
        total += sizes[i]
    if group:
        yield group


def row_scores(logits: Any, targets: Any, mask: Any) -> tuple[Any, Any]:
    """Summed log-probabilities of targets and whether every target is the argmax, per row of (rows, len, vocab)."""
    import torch

    logits = logits.float()
    lse = torch.logsumexp(logits, dim=-1)
    picked = (logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - lse).double()  # sum in float64
    greedy = (logits.argmax(-1) == targets) | ~mask
    return (picked * mask).sum(-1), greedy.all(-1)


def logits_at(model: Any, rows: Any, cols: Any, **inputs: Any) -> Any:
    """Logits at the (row, position) pairs only, shape (pairs, vocab).

    The output layer gets just those hidden states (a forward pre-hook on it), so padding and context positions
    never pay for the vocabulary projection, whatever the architecture adds around it (scaling, biases, caps)."""
    head = model.get_output_embeddings()
    if head is None:
        return model(**inputs).logits[rows, cols]

    def pick(module: Any, args: tuple) -> tuple:
        return (args[0][rows, cols], *args[1:])

    handle = head.register_forward_pre_hook(pick)
    try:
        logits = model(**inputs).logits
    except (RuntimeError, IndexError, ValueError):  # an architecture that reshapes after its head
        logits = None
    finally:
        handle.remove()
    if logits is None or logits.dim() != 2 or logits.shape[0] != len(rows):
        return model(**inputs).logits[rows, cols]
    return logits


def flat_scores(logits: Any, targets: Any, row_of: Any, n_rows: int) -> tuple[Any, Any]:
    """Per-row summed log-probabilities and all-argmax flags from flat (token, vocab) logits."""
    import torch

    logits = logits.float()
    token_lp = (logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)).double()
    sums = torch.zeros(n_rows, dtype=torch.float64, device=logits.device).index_add_(0, row_of, token_lp)
    misses = torch.zeros(n_rows, dtype=torch.long, device=logits.device).index_add_(
        0, row_of, (logits.argmax(-1) != targets).long())
    return sums, misses == 0
