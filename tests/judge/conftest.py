"""The serve tests' fixtures (tiny model, loopback server), shared here: the judge talks to `ayakit serve`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("ayakit_tests_serve_conftest",
                                               Path(__file__).parents[1] / "serve" / "conftest.py")
_serve = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_serve)

tiny_seq2seq = _serve.tiny_seq2seq
engine = _serve.engine
server = _serve.server
hf_engine = _serve.hf_engine
ctranslate2_engine = _serve.ctranslate2_engine
