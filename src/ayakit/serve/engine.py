"""An HF model dir loaded for serving: prompt limits, encoding, and batched generation (rows decoded in `decoding`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ayakit.models import load, read_meta
from ayakit.models.encoding import encode_source
from ayakit.models.loading import DEFAULT_PROMPT_LIMIT as DEFAULT_MAX_PROMPT_TOKENS
from ayakit.models.loading import detect_arch, positions, prompt_limit


@dataclass
class SamplingParams:
    """What one request asks of the decoder; temperature 0 is greedy."""

    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    logprobs: int | None = None  # None: no logprobs; 0: the chosen token's; k: also the k most likely


@dataclass
class TokenInfo:
    """One generated token with its log-probability under the model (before temperature)."""

    id: int
    text: str
    logprob: float | None  # None for the first prompt token when a prompt is scored
    top: list[tuple[str, float]] = field(default_factory=list)
    offset: int = 0  # where the token's text starts in the decoded output (or in the prompt, when scored)


@dataclass
class Delta:
    """A streamed piece of one row's output: new text (may be empty while a stop string could still match)."""

    text: str
    tokens: list[TokenInfo]


@dataclass
class Completion:
    """The finished output of one row."""

    text: str
    finish_reason: str  # "stop" (eos or stop string), "length" (max_tokens) or "cancelled"
    prompt_tokens: int
    completion_tokens: int
    tokens: list[TokenInfo]


@dataclass
class GenRequest:
    """One row of a batch: encoded prompt, params, and optional callbacks for each Delta and for the result."""

    prompt_ids: list[int]
    params: SamplingParams
    on_delta: Callable[[Delta], None] | None = None
    on_finish: Callable[[Completion | BaseException], None] | None = None  # called once, from the decoding thread
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class ModelInfo:
    """What the server says about the model it serves."""

    path: str
    name: str
    arch: str
    max_prompt_tokens: int  # the default limit: the position table when the model has one, else a generous default
    vocab_size: int
    max_total_tokens: int | None = None  # causal models: prompt + completion must fit the position table
    hard_prompt_tokens: int | None = None  # the position table; None for relative positions (T5): no hard limit
    trained_prompt_tokens: int | None = None  # the longest prompt the model was trained on, when known


def read_arch(model_dir: Path, config: Any) -> str:
    """The architecture from ayakit.json when ayakit trained the model, else from the HF config."""
    return detect_arch(model_dir, config)


def _max_prompt_tokens(model_dir: Path, tokenizer: Any, config: Any) -> int:
    return prompt_limit(read_meta(model_dir), config, tokenizer)


def _positions(config: Any) -> int | None:
    """The size of the model's position table (a hard limit on its input), or None for relative positions."""
    return positions(config)


def model_info(path: Path, name: str, arch: str, tokenizer: Any, config: Any, joint: bool) -> ModelInfo:
    """What the server says about a model: its prompt limits from the position table and the training length
    (joint: prompt and answer share one sequence, as in a decoder-only model)."""
    hard = _positions(config)
    trained = _max_prompt_tokens(path, tokenizer, config)
    default = hard if hard is not None else max(trained, DEFAULT_MAX_PROMPT_TOKENS)
    return ModelInfo(path=str(path), name=name, arch=arch, max_prompt_tokens=default, vocab_size=len(tokenizer),
                     max_total_tokens=hard if joint else None, hard_prompt_tokens=hard,
                     trained_prompt_tokens=trained)


class Engine:
    """A loaded HF model dir whose requests are decoded together, rows joining and leaving between steps."""

    def __init__(self, model_dir: str | Path, device: str | None = None, dtype: str | None = None,
                 name: str | None = None) -> None:
        path = Path(model_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"model directory {path} does not exist")
        lm = load(path, device=device, dtype=dtype)
        config = lm.model.config
        self.arch = lm.arch
        self.impl = lm.impl  # the architecture's module (ayakit.models): decoding rows, capabilities
        self.tokenizer = lm.tokenizer
        self.device = str(lm.device)
        self.model = lm.model
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id
        eos = self.model.generation_config.eos_token_id
        eos_list = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {i for i in [*eos_list, self.tokenizer.eos_token_id] if i is not None}
        self.info = model_info(path, name or path.name, self.arch, self.tokenizer, config, lm.impl.JOINT)
        self._lock = threading.Lock()

    def encode_prompt(self, text: str, max_len: int | None = None) -> list[int]:
        """Prompt ids exactly as in training (ayakit.models.encoding.encode_source)."""
        return encode_source(self.tokenizer, text, self.arch, max_len or self.info.max_prompt_tokens)

    def run(self, requests: list[GenRequest]) -> list[Completion]:
        """Decode the requests as one batch until every row is finished (each leaves the batch when it is).

        A row that fails (its own parameters, its listener) fails alone; the first such error is raised at the end.
        """
        from ayakit.serve.decoding import RunningBatch, completed

        batch = RunningBatch(self)
        rows = batch.admit(requests)
        while batch:
            batch.step()
        return completed(rows)

    def generate(self, prompts: list[str], params: SamplingParams | None = None) -> list[str]:
        """Texts for prompts, batched (a convenience for callers in the same process)."""
        params = params or SamplingParams()
        reqs = [GenRequest(self.encode_prompt(p), params) for p in prompts]
        return [c.text for c in self.run(reqs)]

    def score(self, text: str, top: int = 0) -> list[TokenInfo]:
        """Each prompt token's log-probability given the ones before it (an `ECHO` architecture; the first has none).

        Offsets are character positions in `text`, so a caller can tell context tokens from continuation tokens.
        """
        import torch

        if not self.impl.ECHO:
            raise ValueError(f"scoring a prompt needs a causal model; this model is {self.arch}")
        ids = self.encode_prompt(text)
        with self._lock, torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0].float()
        return prompt_token_infos(self.tokenizer, text, ids, torch.log_softmax(logits, dim=-1), top)

    def batcher(self, max_batch: int = 16, max_wait_ms: float = 5.0, mode: str | None = None) -> Any:
        """The scheduler of this engine's requests: continuous batching (or `static`)."""
        from ayakit.serve.batching import Batcher

        return Batcher(self, max_batch=max_batch, max_wait_ms=max_wait_ms, mode=mode or "continuous")


def prompt_token_infos(tokenizer: Any, text: str, ids: list[int], logp: Any, top: int) -> list[TokenInfo]:
    """Each prompt token with its log-probability from row i - 1 of `logp` (a (len, vocab) torch tensor).

    Offsets are character positions in `text`; the first token has no log-probability.
    """
    import torch

    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    starts = [start for start, _ in enc["offset_mapping"]]
    starts = [0] * (len(ids) - len(starts)) + starts[-len(ids):]  # a bos in front starts at 0
    tokens = tokenizer.convert_ids_to_tokens(ids)
    out = [TokenInfo(ids[0], tokens[0], None, [], starts[0])]
    for i in range(1, len(ids)):
        best = []
        if top > 0:
            values, idx = torch.topk(logp[i - 1], min(top, logp.shape[-1]))
            best = [(tokenizer.convert_ids_to_tokens(int(t)), float(v)) for v, t in zip(values, idx)]
        out.append(TokenInfo(ids[i], tokens[i], float(logp[i - 1, ids[i]]), best, starts[i]))
    return out


class ServingEngine(Protocol):
    """What the HTTP layer needs of an engine (the HF `Engine`, `ct2_engine.CT2Engine`)."""

    info: ModelInfo
    arch: str
    impl: Any  # the architecture's module (ayakit.models): ECHO says whether a prompt can be scored
    tokenizer: Any

    def encode_prompt(self, text: str, max_len: int | None = None) -> list[int]:
        """Prompt ids exactly as in training."""
        ...

    def score(self, text: str, top: int = 0) -> list[TokenInfo]:
        """Each prompt token's log-probability (an ECHO architecture)."""
        ...

    def batcher(self, max_batch: int = 16, max_wait_ms: float = 5.0, mode: str | None = None) -> Any:
        """The scheduler that decodes this engine's requests (start, stop, submit, stats, queued, mode, pool)."""
        ...
