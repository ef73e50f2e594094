"""Shared fixtures: the public data directory (skip, saying why, when it is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path | None:
    env = os.environ.get("AYAKIT_DATA_DIR")
    for candidate in (env, REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public multilingual data (../shared/data or $AYAKIT_DATA_DIR); tests that need it skip without it."""
    path = _shared_data()
    if path is None:
        pytest.skip("public data not found: set AYAKIT_DATA_DIR or place it at ../shared/data")
    return path


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach the hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for the test (2 busy cores: two threads contend); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
