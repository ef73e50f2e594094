"""Fixtures of the eval tests: tiny local models (built once per session) and a torch-free fake backend."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs with one torch thread (tests/conftest.py)."""
    yield


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(tiny T5 dir, tiny Llama dir), random weights, byte-level BPE tokenizer; built locally."""
    from eval_tiny_models import build_models

    return build_models(tmp_path_factory.mktemp("tiny-models"))
