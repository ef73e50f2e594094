"""Fixtures of the model-layer tests: the eval tests' tiny T5 and Llama (random weights, local tokenizer)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("ayakit_tests_eval_tiny_models",
                                               Path(__file__).parents[1] / "eval" / "eval_tiny_models.py")
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs with one torch thread (tests/conftest.py)."""
    yield


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(tiny T5 dir, tiny Llama dir), random weights, byte-level BPE tokenizer, each with an old-style ayakit.json."""
    return tiny.build_models(tmp_path_factory.mktemp("tiny-models"))
