"""The packed loss forward: one module that DDP / FSDP wrap, whatever the architecture."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ayakit.models.arch import arch_impl


class PackedLM(torch.nn.Module):
    """Wraps an HF model so one forward computes the weighted loss sum of packed rows."""

    def __init__(self, model: Any, arch: str, mask_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.model = model
        self.arch = arch
        self.impl = arch_impl(arch)
        self.mask_dtype = mask_dtype

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sum over label tokens of weight * cross-entropy, in fp32."""
        hidden = self.hidden_states(batch)
        select = batch["labels"] != -100
        logits = self.logits(hidden[select])
        ce = F.cross_entropy(logits.float(), batch["labels"][select], reduction="none")
        return (ce * batch["weight"][select]).sum()

    def hidden_states(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Final hidden states at every position of the packed rows."""
        return self.impl.hidden_states(self.model, batch, self.mask_dtype or next(self.model.parameters()).dtype)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The architecture's output layer (T5's d_model^-0.5 rescaling included)."""
        return self.impl.logits(self.model, hidden)
