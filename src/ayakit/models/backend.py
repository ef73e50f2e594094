"""What a task talks to: the `Backend` protocol, its result and settings types, and helpers every engine shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ayakit.errors import DataError
from ayakit.io import fingerprint

CONVENTIONS = ("ayakit", "lm-eval")


class BackendError(DataError):
    """A model that cannot be loaded or an endpoint that fails: the CLI prints it as one line."""


@dataclass(frozen=True)
class LogLik:
    """The log-likelihood of one continuation given its context."""

    logprob: float
    n_tokens: int
    n_bytes: int  # UTF-8 bytes of the continuation text (for per-byte normalisation)
    is_greedy: bool  # every continuation token is the model's argmax


@dataclass
class GenerationParams:
    """Decoding settings: temperature 0 is greedy; otherwise nucleus sampling with top_p."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: list[str] = field(default_factory=list)

    @classmethod
    def paper_open_ended(cls) -> GenerationParams:
        """The Aya paper's open-ended setting: temperature 0.9, top-p 0.8, up to 256 new tokens."""
        return cls(max_new_tokens=256, temperature=0.9, top_p=0.8)


@runtime_checkable
class Backend(Protocol):
    """What a task talks to."""

    def loglikelihood(self, requests: list[tuple[str, list[str]]]) -> list[list[LogLik]]:
        """For each (context, continuations), the log-likelihood of every continuation."""
        ...

    def generate(self, prompts: list[str], params: GenerationParams) -> list[str]:
        """One completion per prompt."""
        ...


def apply_stop(text: str, stop: Sequence[str]) -> str:
    """Cut a completion at the first stop string."""
    cut = len(text)
    for s in stop:
        if s and (i := text.find(s)) >= 0:
            cut = min(cut, i)
    return text[:cut]


def first_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def model_fingerprint(backend: Backend) -> str:
    """A short hash of what decides the backend's outputs (weights, tokenizer, scoring convention, endpoint)."""
    describe = getattr(backend, "describe", None)
    info = describe() if callable(describe) else {"backend": type(backend).__name__, "id": id(backend)}
    return fingerprint(info)


def backend_name(backend: Backend) -> str:
    """A readable name: the backend's `name` (model dir's last part, endpoint's model), else the class name."""
    return getattr(backend, "name", "") or type(backend).__name__
