"""Fixtures: a tiny model built offline, and a real server for it on loopback."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _tiny():
    spec = importlib.util.spec_from_file_location("ayakit_tests_tiny_model", Path(__file__).with_name("tiny_model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_seq2seq(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A T5 model under 1M parameters with a tokenizer trained here."""
    return _tiny().build_tiny_model(tmp_path_factory.mktemp("tiny-t5"))


@pytest.fixture(scope="session")
def tiny_causal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-2 model under 1M parameters with a tokenizer trained here."""
    return _tiny().build_tiny_model(tmp_path_factory.mktemp("tiny-gpt"), arch="causal")


@pytest.fixture(scope="session")
def hf_engine(tiny_seq2seq: Path):
    """The tiny seq2seq model loaded for serving on the HF engine."""
    import torch

    from ayakit.serve.engine import Engine

    torch.set_num_threads(1)
    return Engine(tiny_seq2seq, device="cpu", name="tiny")


@pytest.fixture(scope="session")
def ctranslate2_engine(tiny_seq2seq: Path):
    """The tiny seq2seq model served by CTranslate2 (float32, two workers of one thread)."""
    pytest.importorskip("ctranslate2", reason="the ctranslate2 engine needs the ctranslate2 package")
    from ayakit.serve.ct2_engine import CT2Engine

    return CT2Engine(tiny_seq2seq, device="cpu", compute_type="float32", name="tiny", workers=2, threads=1,
                     notify=lambda _: None)


@pytest.fixture(scope="session", params=["hf", "ctranslate2"])
def engine(request: pytest.FixtureRequest):
    """The tiny seq2seq model on each serving engine in turn (tests that hold for both take this one)."""
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture(scope="session")
def server(engine) -> str:
    """Base URL of `ayakit serve` on loopback for the tiny model (small limits so fuzzing stays fast)."""
    from ayakit.serve.app import ServeLimits, create_app
    from ayakit.serve.loopback import serve_in_thread

    limits = ServeLimits(max_batch=8, max_wait_ms=20, max_tokens=24, default_max_tokens=16, max_body_bytes=20_000)
    with serve_in_thread(create_app(engine, limits)) as url:
        yield url
