"""The serve tests' tiny-model builder, shared here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("ayakit_tests_tiny_model_tr", Path(__file__).parents[1] / "serve" / "tiny_model.py")
_tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tiny)


@pytest.fixture(scope="session")
def tiny_nllb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny T5 whose vocabulary holds FLORES codes, as NLLB's does (so translation goes by language codes)."""
    import torch

    torch.set_num_threads(1)
    return _tiny.build_tiny_model(tmp_path_factory.mktemp("tiny-nllb"), extra_tokens=["eng_Latn", "swh_Latn",
                                                                                          "fra_Latn"])
