"""The Hugging Face engine: any transformers seq2seq or causal model, scored and generated through ayakit.models.

Scoring conventions (the `convention` argument):
- "ayakit" (default): tokenised exactly as the trainer does (ayakit.models.encoding): seq2seq sources end with eos;
  continuations get eos appended for every seq2seq model (T5-style targets end with eos) and for causal models
  that ayakit trained (their targets end with eos); other causal models score the bare continuation.
- "lm-eval": lm-evaluation-harness's convention: trailing spaces of the context move to the continuation, no eos
  on the continuation, causal continuations are the tail of the jointly tokenised context + continuation, and an
  empty context is lm-eval's prefix token (bos, else eos).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ayakit.models.backend import CONVENTIONS, BackendError, GenerationParams, LogLik, apply_stop
from ayakit.models.encoding import RequestEncoder
from ayakit.models.generation import generate as generate_ids
from ayakit.models.loading import LoadedModel, load


class HFBackend:
    """A transformers model behind the Backend protocol; its architecture module does the scoring."""

    engine = "hf"

    def __init__(self, model: str | Path, batch_size: int = 32, device: str | None = None,
                 max_length: int | None = None, convention: str = "ayakit", score_eos: bool | None = None,
                 dtype: str = "float32", threads: int | None = None, model_obj: Any = None,
                 tokenizer: Any = None, arch: str | None = None, strategy: str = "packed") -> None:
        """Load `model`; `strategy` is the causal scorer's ("packed" or "cache"), ignored for seq2seq."""
        import torch

        if convention not in CONVENTIONS:
            raise ValueError(f"unknown convention {convention!r}; expected one of {CONVENTIONS}")
        if threads:
            torch.set_num_threads(threads)
        self.lm: LoadedModel = load(model, device=device, dtype=dtype, model=model_obj, tokenizer=tokenizer)
        if arch is not None and arch != self.lm.arch:
            raise BackendError(f"{model}: is a {self.lm.arch} model, not {arch}")
        self.arch = self.lm.arch
        self.impl = self.lm.impl
        self.options = {k: v for k, v in {"strategy": strategy}.items() if k in self.impl.SCORE_OPTIONS}
        for key, value in self.options.items():
            if value not in self.impl.SCORE_OPTIONS[key]:
                raise ValueError(f"unknown {key} {value!r}; expected one of {self.impl.SCORE_OPTIONS[key]}")
        self.spec = self.lm.path
        self.name = Path(self.spec).name or self.spec
        self.batch_size = batch_size
        # the trainer's lengths when ayakit trained the model (scored as trained), else max_length or 1024
        self.max_length = max_length or self.lm.max_source_length or 1024
        self.max_target = max_length or self.lm.max_target_length or 1024
        self.convention = convention
        self.tokenizer = self.lm.tokenizer
        self.model = self.lm.model
        self.device = self.lm.device
        # joint models see prompt + continuation in one window: never exceed the positions the model has
        self.window = self.lm.positions if self.impl.JOINT else None
        if self.window:
            self.max_length = min(self.max_length, self.window)
        if score_eos is None:
            score_eos = convention == "ayakit" and (not self.impl.JOINT or self.lm.trained_by_ayakit)
        self.score_eos = score_eos
        self.pad_id = self.lm.pad_id

    def describe(self) -> dict:
        """What decides this backend's scores (the cache key's model part)."""
        return {"backend": type(self).__name__, "arch": self.arch, "model": self.lm.fingerprint,
                "convention": self.convention, "score_eos": self.score_eos, "max_length": self.max_length,
                "max_target": self.max_target}

    # tokenisation: the shared RequestEncoder (ayakit.models.encoding), built from the current settings ----------
    @property
    def encoder(self) -> RequestEncoder:
        """This backend's tokenisation of requests and prompts."""
        return RequestEncoder(self.tokenizer, self.arch, self.convention, self.max_length, self.max_target,
                              self.score_eos, self.window)

    def _context_ids(self, context: str) -> list[int]:
        return self.encoder.context_ids(context)

    def encode_requests(self, requests: list[tuple[str, list[str]]]) -> list[tuple[list[int], list[list[int]]]]:
        """(context ids, continuation ids) per request, in this backend's convention."""
        return self.encoder.requests(requests)

    # the protocol -----------------------------------------------------------------------------------------------
    def loglikelihood(self, requests: list[tuple[str, list[str]]]) -> list[list[LogLik]]:
        """Length-sorted batches across requests; each context is computed once for all of its choices."""
        encoded = self.encode_requests(requests)
        if self.impl.JOINT:
            for k, (ctx, _) in enumerate(encoded):
                if not ctx:
                    raise BackendError(f"request {k}: empty context and the tokenizer has no bos token to "
                                       "condition on")
        scored = self.impl.score(self.model, encoded, self.batch_size, self.pad_id, **self.options)
        out = []
        encoder = self.encoder
        for (context, conts), (_, ids), row in zip(requests, encoded, scored):
            texts = encoder.continuation_texts(context, conts)
            out.append([LogLik(lp, len(c), len(t.encode("utf-8")), greedy)
                        for (lp, greedy), c, t in zip(row, ids, texts)])
        return out

    def generate(self, prompts: list[str], params: GenerationParams) -> list[str]:
        """Batched greedy (temperature 0) or nucleus-sampled completions, in the order of the prompts."""
        ids = self.encoder.prompts(prompts, params.max_new_tokens)
        new = generate_ids(self.model, self.arch, ids, params, pad_id=self.pad_id, batch_size=self.batch_size,
                           eos_ids={self.tokenizer.eos_token_id} - {None})
        return [apply_stop(self.tokenizer.decode(g, skip_special_tokens=True), params.stop) for g in new]


class HFSeq2SeqBackend(HFBackend):
    """An HF encoder-decoder model (arch checked on load)."""

    def __init__(self, model: str | Path, **kwargs: Any) -> None:
        kwargs.pop("strategy", None)  # a causal-only setting
        super().__init__(model, arch="seq2seq", **kwargs)


class HFCausalBackend(HFBackend):
    """An HF decoder-only model (arch checked on load)."""

    def __init__(self, model: str | Path, **kwargs: Any) -> None:
        super().__init__(model, arch="causal", **kwargs)
