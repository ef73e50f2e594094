"""The only place that knows model architectures: loading, encoding, packing, scoring, generation and engines.

`ayakit.models.load` reads a model dir (and its ayakit.json); `ARCHS` maps an architecture name to its module
(seq2seq.py, causal.py); `generation.generate` is the batched generation every stage uses; `load_backend`
builds a `Backend` (the protocol evaluation, judging and safety talk to) from a spec and an engine name.
"""

from ayakit.models.arch import ARCHS, Arch, arch_impl
from ayakit.models.backend import Backend, BackendError, GenerationParams, LogLik, apply_stop
from ayakit.models.engines import ENGINE_HELP, ENGINES, check_engine, engine_key, engine_label, load_backend
from ayakit.models.loading import (META_FILE, LoadedModel, detect_arch, load, read_meta, save_meta,
                                   weights_fingerprint)

__all__ = ["ARCHS", "ENGINES", "ENGINE_HELP", "META_FILE", "Arch", "Backend", "BackendError", "GenerationParams",
           "LoadedModel", "LogLik", "apply_stop", "arch_impl", "check_engine", "detect_arch", "engine_key",
           "engine_label", "load", "load_backend",
           "read_meta", "save_meta", "weights_fingerprint"]
