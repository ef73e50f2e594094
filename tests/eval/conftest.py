"""Fixtures of the eval tests: tiny local models (built once per session) and a torch-free fake backend."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread during eval tests (2 busy cores: two threads contend); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(tiny T5 dir, tiny Llama dir), random weights, byte-level BPE tokenizer; built locally."""
    from eval_tiny_models import build_models

    return build_models(tmp_path_factory.mktemp("tiny-models"))
