"""A model served by CTranslate2: the HF engine's prompt limits and encoding, decoding by CTranslate2 workers.

Rows are `decoding.RowState`s, as on the HF engine, so stop strings, streaming, finish reasons and per-row errors
behave the same; CTranslate2 picks the tokens and reports each one through its per-step callback, where a row that
is finished (or cancelled, or whose listener failed) tells CTranslate2 to stop decoding it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ayakit.models import arch_impl
from ayakit.models.ct2 import CT2Backend
from ayakit.models.encoding import encode_source
from ayakit.models.loading import load_config
from ayakit.serve.decoding import RowState, completed
from ayakit.serve.engine import Completion, GenRequest, SamplingParams, TokenInfo, model_info, prompt_token_infos

log = logging.getLogger("ayakit.serve")
# CTranslate2 4.x seeds a worker thread's generator once, from the global seed, when that thread first samples
# (OpenNMT/CTranslate2#1757): a seeded request runs on an instance of its own, seeded under this lock
SEED_LOCK = threading.Lock()
# float32 has no safe divisor below this: a smaller temperature (or top_p) is sent as this, which picks among the
# tied best tokens exactly as the HF engine does for any tiny value
MIN_TEMPERATURE = 1e-20
MIN_TOP_P = 1e-7


def decode_key(req: GenRequest) -> tuple:
    """Requests with equal keys can share one CTranslate2 batch (one set of decoding options for all its rows)."""
    params = req.params
    if params.temperature > 0 and params.seed is not None:
        return ("seeded", id(req))  # alone: on an instance of its own
    if params.logprobs:
        # alone: top logprobs need the step's logits, and CTranslate2 4.8 hands a batch's whole (B, V) logits to the
        # first row's callback of a step (the others get an empty one), in its internal row order
        return ("top", id(req))
    if params.temperature <= 0:
        return ("greedy",)
    return ("sample", params.temperature, params.top_p)


class CT2Engine:
    """A model dir converted to CTranslate2 (cached beside it) whose requests run as batches on `workers` threads."""

    engine = "ctranslate2"

    def __init__(self, model_dir: str | Path, device: str | None = None, compute_type: str | None = None,
                 name: str | None = None, workers: int = 2, threads: int | None = None,
                 notify: Callable[[str], None] | None = None, short_tokens: int = 64) -> None:
        path = Path(model_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"model directory {path} does not exist")
        if threads is None:
            import os

            threads = max(1, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1) // workers)
        kwargs = {"notify": notify} if notify is not None else {}
        self.backend = CT2Backend(path, device=device, compute_type=compute_type, threads=threads, workers=workers,
                                  **kwargs)
        self.arch = self.backend.arch
        self.impl = arch_impl(self.arch)
        self.tokenizer = self.backend.tokenizer
        self.device = self.backend.device
        self.compute_type = self.backend.compute_type
        self.workers = workers
        self.short_tokens = short_tokens  # requests of at most this many max_tokens may use the kept worker
        self.model = self.backend.model
        config = load_config(path)
        self.eos_ids = _eos_ids(path, config, self.tokenizer)
        self.info = model_info(path, name or path.name, self.arch, self.tokenizer, config, self.impl.JOINT)

    def encode_prompt(self, text: str, max_len: int | None = None) -> list[int]:
        """Prompt ids exactly as in training (ayakit.models.encoding.encode_source), as the HF engine."""
        return encode_source(self.tokenizer, text, self.arch, max_len or self.info.max_prompt_tokens)

    def batcher(self, max_batch: int = 16, max_wait_ms: float = 5.0, mode: str | None = None) -> Any:
        """The scheduler of this engine's requests: CTranslate2's asynchronous batching (or `static`)."""
        from ayakit.serve.ct2_batching import CT2Batcher

        return CT2Batcher(self, max_batch=max_batch, max_wait_ms=max_wait_ms, mode=mode,
                          short_tokens=self.short_tokens)

    def options(self, params: SamplingParams, max_tokens: int) -> dict[str, Any]:
        """CTranslate2 decoding options of a batch whose rows share `params`' decode_key."""
        opts: dict[str, Any] = {"beam_size": 1, "return_end_token": True, "end_token": sorted(self.eos_ids),
                                "return_scores": True, "return_logits_vocab": bool(params.logprobs)}
        if params.temperature <= 0:
            opts["sampling_topk"] = 1
        else:  # the whole vocabulary, as the HF engine samples (no top-k)
            opts.update(sampling_topk=0, sampling_temperature=max(params.temperature, MIN_TEMPERATURE),
                        sampling_topp=max(params.top_p, MIN_TOP_P))
        return opts | self.backend.length_options(max_tokens)

    def decode(self, rows: list[RowState], stopping: Callable[[], bool] = lambda: False) -> None:
        """Decode rows sharing one decode_key as one CTranslate2 batch; returns when it is over.

        Each row finishes on its own (its end token, max_tokens, stop string, cancellation, or its own error); an
        error of the batch itself (the model failed) is raised, for the caller to decide which rows it fails.
        """
        params = rows[0].req.params
        opts = self.options(params, max(r.req.params.max_tokens for r in rows))
        started = threading.Event()

        def callback(step: Any) -> bool:
            started.set()
            return self._on_step(rows[step.batch_id], step, stopping)

        prompts = [self.backend.strings(r.req.prompt_ids) for r in rows]
        if decode_key(rows[0].req)[0] == "seeded":
            import ctranslate2

            with SEED_LOCK:  # held until the instance's worker has sampled once, so the seed is its own
                ctranslate2.set_random_seed(params.seed % (1 << 32))
                model = self.backend.instance()
                pending = self._submit(model, prompts, opts, callback)
                while not started.wait(0.005) and not all(p.done() for p in pending):
                    pass
                ctranslate2.set_random_seed(random.getrandbits(32))  # unseeded workers started later stay random
        else:
            pending = self._submit(self.model, prompts, opts, callback)
        for p in pending:
            p.result()  # raises the batch's error
        for row in rows:
            row.end()

    def _submit(self, model: Any, prompts: list[list[str]], opts: dict[str, Any], callback: Any) -> list[Any]:
        return self.backend.call(model, prompts, asynchronous=True, callback=callback, **opts)

    def _on_step(self, row: RowState, step: Any, stopping: Callable[[], bool]) -> bool:
        """One generated token of one row (called by a CTranslate2 worker); True stops decoding that row."""
        if row.done:
            return True
        if stopping():
            row.fail(RuntimeError("the server is shutting down"))
            return True
        try:
            top = row.top_tokens(self._log_probs(step.logits)) if row.req.params.logprobs else []
            row.last = TokenInfo(step.token_id, "", float(step.log_prob), top)
            row.push(step.token_id)
        except Exception as exc:  # noqa: BLE001 - this row's listener or parameters: only it fails
            log.warning("a request failed while decoding: %s: %s", type(exc).__name__, exc)
            row.fail(exc)
        return row.done

    @staticmethod
    def _log_probs(logits: Any) -> Any:
        """A step's log-probabilities over the vocabulary from CTranslate2's logits (a StorageView, (1, V))."""
        import torch

        values = torch.as_tensor(_host(logits)).reshape(-1).float()
        return torch.log_softmax(values, dim=-1)

    def run(self, requests: list[GenRequest]) -> list[Completion]:
        """Decode the requests (one batch per decode_key) until every row is finished; the first row error is
        raised at the end, as the HF engine's `run`."""
        rows = [RowState(r, self.tokenizer, self.eos_ids) for r in requests]
        groups: dict[tuple, list[RowState]] = {}
        for row in rows:
            groups.setdefault(decode_key(row.req), []).append(row)
        for group in groups.values():
            try:
                self.decode(group)
            except Exception as exc:  # noqa: BLE001 - the batch failed: its unfinished rows get the error
                for row in group:
                    row.fail(exc)
        return completed(rows)

    def generate(self, prompts: list[str], params: SamplingParams | None = None) -> list[str]:
        """Texts for prompts, batched (a convenience for callers in the same process)."""
        params = params or SamplingParams()
        return [c.text for c in self.run([GenRequest(self.encode_prompt(p), params) for p in prompts])]

    def score(self, text: str, top: int = 0) -> list[TokenInfo]:
        """Each prompt token's log-probability given the ones before it (a causal model; the first has none)."""
        import torch

        if not self.impl.ECHO:
            raise ValueError(f"scoring a prompt needs a causal model; this model is {self.arch}")
        ids = self.encode_prompt(text)
        out = self.model.forward_batch([self.backend.strings(ids)], return_log_probs=True)
        logp = torch.as_tensor(_host(out))[0].float()
        return prompt_token_infos(self.tokenizer, text, ids, logp, top)


def _host(storage: Any) -> Any:
    """A CTranslate2 StorageView as a NumPy array (copied to the host when it lives on a GPU)."""
    import numpy as np

    if getattr(storage, "device", "cpu") != "cpu":
        storage = storage.to_device(_cpu_device())
    return np.asarray(storage)


def _cpu_device() -> Any:
    import ctranslate2

    return ctranslate2.Device.cpu


def _eos_ids(path: Path, config: Any, tokenizer: Any) -> set[int]:
    """The end tokens the HF engine stops on: generation_config's eos ids and the tokenizer's."""
    from transformers import GenerationConfig

    try:
        gen = GenerationConfig.from_pretrained(str(path))
    except OSError:
        gen = GenerationConfig.from_model_config(config)
    eos = gen.eos_token_id
    eos_list = eos if isinstance(eos, list) else [eos]
    return {i for i in [*eos_list, tokenizer.eos_token_id] if i is not None}
