"""Batched generation on an HF model dir: per-row sampling, stop strings, limits and token streaming in one `generate`."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ayakit.models import load, read_meta
from ayakit.models.encoding import encode_source
from ayakit.models.loading import detect_arch, prompt_limit


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
    """One row of a batch: encoded prompt, params, and an optional callback that receives each Delta."""

    prompt_ids: list[int]
    params: SamplingParams
    on_delta: Callable[[Delta], None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class ModelInfo:
    """What the server says about the model it serves."""

    path: str
    name: str
    arch: str
    max_prompt_tokens: int
    vocab_size: int
    max_total_tokens: int | None = None  # causal models: prompt + completion must fit the position table


def read_arch(model_dir: Path, config: Any) -> str:
    """The architecture from ayakit.json when ayakit trained the model, else from the HF config."""
    return detect_arch(model_dir, config)


def _max_prompt_tokens(model_dir: Path, tokenizer: Any, config: Any) -> int:
    return prompt_limit(read_meta(model_dir), config, tokenizer)


class _RowState:
    """Per-row decoding state shared by the sampler (logits processor) and the tracker (stopping criterion)."""

    def __init__(self, req: GenRequest, tokenizer: Any, eos_ids: set[int]) -> None:
        self.req = req
        self.tok = tokenizer
        self.eos_ids = eos_ids
        self.ids: list[int] = []
        self.infos: list[TokenInfo] = []
        self.pending: list[TokenInfo] = []  # infos not yet sent in a Delta
        self.text = ""
        self.sent = 0  # characters of text already streamed
        self.done = False
        self.finish_reason = "length"
        self.last: TokenInfo | None = None
        seed = req.params.seed if req.params.seed is not None else random.getrandbits(62)
        import torch

        self.gen = torch.Generator().manual_seed(seed)
        self.holdback = max((len(s) for s in req.params.stop), default=1) - 1

    def push(self, token_id: int) -> None:
        """Take the token the batch chose for this row; decide whether the row is finished; stream what is safe."""
        if self.done:
            return
        if self.req.cancelled.is_set():
            self._finish("cancelled")
            return
        if token_id in self.eos_ids:
            self._finish("stop")
            return
        self.ids.append(token_id)
        info = self.last if self.last is not None and self.last.id == token_id else TokenInfo(token_id, "", 0.0)
        info.text = self.tok.convert_ids_to_tokens(token_id)
        info.offset = len(self.text)
        self.infos.append(info)
        self.pending.append(info)
        self.text = self.tok.decode(self.ids, skip_special_tokens=True)
        for stop in self.req.params.stop:
            at = self.text.find(stop)
            if stop and at >= 0:
                self.text = self.text[:at]
                self._finish("stop")
                return
        if len(self.ids) >= self.req.params.max_tokens:
            self._finish("length")
            return
        safe = len(self.text) - self.holdback
        while safe > self.sent and self.text[safe - 1] == "\ufffd":  # an incomplete multi-byte character
            safe -= 1
        self._emit(safe)

    def _finish(self, reason: str) -> None:
        self.done = True
        self.finish_reason = reason
        self._emit(len(self.text))

    def _emit(self, upto: int) -> None:
        if self.req.on_delta is None or (upto <= self.sent and not self.pending):
            return
        piece = self.text[self.sent:upto] if upto > self.sent else ""
        self.sent = max(self.sent, upto)
        self.req.on_delta(Delta(piece, self.pending))
        self.pending = []


class Engine:
    """A loaded HF model dir that runs batches of requests through one `generate` call each."""

    def __init__(self, model_dir: str | Path, device: str | None = None, dtype: str | None = None,
                 name: str | None = None) -> None:
        path = Path(model_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"model directory {path} does not exist")
        lm = load(path, device=device, dtype=dtype)
        config = lm.model.config
        self.arch = lm.arch
        self.tokenizer = lm.tokenizer
        self.device = str(lm.device)
        self.model = lm.model
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id
        eos = self.model.generation_config.eos_token_id
        eos_list = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {i for i in [*eos_list, self.tokenizer.eos_token_id] if i is not None}
        self.info = ModelInfo(path=str(path), name=name or path.name, arch=self.arch,
                              max_prompt_tokens=_max_prompt_tokens(path, self.tokenizer, config),
                              vocab_size=len(self.tokenizer),
                              max_total_tokens=lm.positions if lm.impl.JOINT else None)
        self._lock = threading.Lock()

    def encode_prompt(self, text: str, max_len: int | None = None) -> list[int]:
        """Prompt ids exactly as in training (ayakit.models.encoding.encode_source)."""
        return encode_source(self.tokenizer, text, self.arch, max_len or self.info.max_prompt_tokens)

    def run(self, requests: list[GenRequest], **generate_kwargs: Any) -> list[Completion]:
        """Generate for every request in one batched `generate` call; each row stops on its own terms."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        if not requests:
            return []
        rows = [_RowState(r, self.tokenizer, self.eos_ids) for r in requests]
        input_ids, attention = self._pad([r.prompt_ids for r in requests])
        max_new = max(r.params.max_tokens for r in requests)
        gc = GenerationConfig(max_new_tokens=max_new, do_sample=False, num_beams=1, pad_token_id=self.pad_id,
                              eos_token_id=sorted(self.eos_ids) or None, bos_token_id=self.tokenizer.bos_token_id,
                              decoder_start_token_id=self.model.generation_config.decoder_start_token_id)
        with self._lock, torch.inference_mode():
            self.model.generate(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                                generation_config=gc, logits_processor=LogitsProcessorList([_Sampler(rows)]),
                                stopping_criteria=StoppingCriteriaList([_Tracker(rows)]), **generate_kwargs)
        out = []
        for req, row in zip(requests, rows):
            if not row.done:  # the batch hit max_new_tokens (longest row) before this row's own limit fired
                row._finish("length")
            out.append(Completion(row.text, row.finish_reason, len(req.prompt_ids), len(row.ids), row.infos))
        return out

    def generate(self, prompts: list[str], params: SamplingParams | None = None) -> list[str]:
        """Texts for prompts, batched (a convenience for callers in the same process)."""
        params = params or SamplingParams()
        reqs = [GenRequest(self.encode_prompt(p), params) for p in prompts]
        return [c.text for c in self.run(reqs)]

    def score(self, text: str, top: int = 0) -> list[TokenInfo]:
        """Each prompt token's log-probability given the ones before it (causal models; the first has none).

        Offsets are character positions in `text`, so a caller can tell context tokens from continuation tokens.
        """
        import torch

        if self.arch != "causal":
            raise ValueError("scoring a prompt needs a causal model")
        ids = self.encode_prompt(text)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        starts = [start for start, _ in enc["offset_mapping"]]
        starts = [0] * (len(ids) - len(starts)) + starts[-len(ids):]  # a bos in front starts at 0
        with self._lock, torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        tokens = self.tokenizer.convert_ids_to_tokens(ids)
        out = [TokenInfo(ids[0], tokens[0], None, [], starts[0])]
        for i in range(1, len(ids)):
            best = []
            if top > 0:
                values, idx = torch.topk(logp[i - 1], min(top, logp.shape[-1]))
                best = [(self.tokenizer.convert_ids_to_tokens(int(t)), float(v)) for v, t in zip(values, idx)]
            out.append(TokenInfo(ids[i], tokens[i], float(logp[i - 1, ids[i]]), best, starts[i]))
        return out

    def _pad(self, seqs: list[list[int]]) -> tuple[Any, Any]:
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            if self.arch == "causal":  # left padding: every row's next token sits in the last column
                ids[i, width - len(s):] = torch.tensor(s)
                mask[i, width - len(s):] = 1
            else:
                ids[i, : len(s)] = torch.tensor(s)
                mask[i, : len(s)] = 1
        return ids, mask


class _Sampler:
    """Logits processor that picks each row's token itself (greedy or temperature/top-p with the row's own seed).

    It returns scores that are -inf except at the chosen token, so HF's greedy step takes exactly that token;
    this is how rows with different temperatures, top_p and seeds share one batch.
    """

    def __init__(self, rows: list[_RowState]) -> None:
        self.rows = rows

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logp = torch.log_softmax(scores.float(), dim=-1)
        out = torch.full_like(scores, float("-inf"))
        for i, row in enumerate(self.rows):
            p = row.req.params
            if row.done:
                choice = int(torch.argmax(scores[i]))
            elif p.temperature <= 0:
                choice = int(torch.argmax(logp[i]))
            else:
                probs = torch.softmax(scores[i].float() / p.temperature, dim=-1)
                if p.top_p < 1.0:
                    sorted_p, order = torch.sort(probs, descending=True)
                    keep = torch.cumsum(sorted_p, 0) - sorted_p < p.top_p  # always keeps the most likely token
                    probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
                choice = int(torch.multinomial(probs.cpu(), 1, generator=row.gen))  # the row's CPU generator
            out[i, choice] = 0.0
            if p.logprobs is not None and not row.done:
                top: list[tuple[str, float]] = []
                if p.logprobs > 0:
                    values, idx = torch.topk(logp[i], min(p.logprobs, logp.shape[-1]))
                    top = [(row.tok.convert_ids_to_tokens(int(t)), float(v)) for v, t in zip(values, idx)]
                row.last = TokenInfo(choice, "", float(logp[i, choice]), top)
            else:
                row.last = TokenInfo(choice, "", float(logp[i, choice]))
        return out


class _Tracker:
    """Stopping criterion: hands each row its new token and reports which rows are finished."""

    def __init__(self, rows: list[_RowState]) -> None:
        self.rows = rows

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        last = input_ids[:, -1].tolist()
        for row, token in zip(self.rows, last):
            row.push(int(token))
        return torch.tensor([row.done for row in self.rows], dtype=torch.bool, device=input_ids.device)
