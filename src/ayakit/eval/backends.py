"""Model backends for evaluation: two calls, `loglikelihood` and `generate`, for HF seq2seq, HF causal and HTTP.

Scoring conventions (the `convention` argument of the HF backends):
- "ayakit" (default): tokenised exactly as the trainer does (ayakit.features): seq2seq sources end with eos;
  continuations get eos appended for every seq2seq model (T5-style targets end with eos) and for causal models
  that ayakit trained (their targets end with eos); other causal models score the bare continuation.
- "lm-eval": lm-evaluation-harness's convention: trailing spaces of the context move to the continuation, no eos
  on the continuation, and causal continuations are the tail of the jointly tokenised context + continuation.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ayakit.errors import DataError
from ayakit.features import encode_source, encode_target
from ayakit.io import fingerprint

CONVENTIONS = ("ayakit", "lm-eval")
AYAKIT_MODEL_FILE = "ayakit.json"


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


# --- Hugging Face ------------------------------------------------------------------------------------------------


def detect_arch(model: str | Path) -> str:
    """'seq2seq' or 'causal': ayakit.json's arch where ayakit trained the model, else the HF config."""
    path = Path(model)
    marker = path / AYAKIT_MODEL_FILE
    if marker.is_file():
        try:
            arch = json.loads(marker.read_text(encoding="utf-8")).get("arch")
        except json.JSONDecodeError as exc:
            raise BackendError(f"{marker}: not valid JSON ({exc})") from None
        if arch in ("seq2seq", "causal"):
            return arch
        raise BackendError(f"{marker}: arch is {arch!r}; expected 'seq2seq' or 'causal'")
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(model))
    except Exception as exc:  # noqa: BLE001 - any loading failure is the user's model spec
        raise BackendError(f"cannot load model {model}: {_first_line(exc)}") from None
    return "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"


def _ayakit_meta(model: str | Path) -> dict:
    """The ayakit.json of a model ayakit saved (arch, training lengths), else {}."""
    path = Path(model) / AYAKIT_MODEL_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except json.JSONDecodeError as exc:
        raise BackendError(f"{path}: not valid JSON ({exc})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _chunks(order: list[int], sizes: list[int], budget: int) -> Iterator[list[int]]:
    """Consecutive groups of `order` whose total size stays within budget (at least one item each)."""
    group: list[int] = []
    total = 0
    for i in order:
        if group and total + sizes[i] > budget:
            yield group
            group, total = [], 0
        group.append(i)
        total += sizes[i]
    if group:
        yield group


class _HFBackend:
    """What the seq2seq and causal backends share: loading, tokenisation, fingerprint, generation batching."""

    arch = ""

    def __init__(self, model: str | Path, batch_size: int = 32, device: str | None = None,
                 max_length: int | None = None, convention: str = "ayakit", score_eos: bool | None = None,
                 dtype: str = "float32", threads: int | None = None, model_obj: Any = None,
                 tokenizer: Any = None) -> None:
        import torch

        if convention not in CONVENTIONS:
            raise ValueError(f"unknown convention {convention!r}; expected one of {CONVENTIONS}")
        if threads:
            torch.set_num_threads(threads)
        self.spec = str(model)
        self.batch_size = batch_size
        meta = _ayakit_meta(model)
        # the trainer's lengths when ayakit trained the model (scored as trained), else max_length or 1024
        self.max_length = max_length or meta.get("max_source_length") or 1024
        self.max_target = max_length or meta.get("max_target_length") or 1024
        self.convention = convention
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.trained_by_ayakit = (Path(model) / AYAKIT_MODEL_FILE).is_file()
        try:
            if tokenizer is None:
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(str(model))
            if model_obj is None:
                model_obj = self._load(str(model), getattr(torch, dtype))
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise BackendError(f"cannot load model {model}: {_first_line(exc)}") from None
        self.tokenizer = tokenizer
        self.model = model_obj.to(self.device).eval()
        # causal models see prompt + continuation in one window: never exceed the positions the model has
        self.window = getattr(self.model.config, "max_position_embeddings", None) if self.arch == "causal" else None
        if self.window:
            self.max_length = min(self.max_length, self.window)
        if score_eos is None:
            score_eos = convention == "ayakit" and (self.arch == "seq2seq" or self.trained_by_ayakit)
        self.score_eos = score_eos
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (tokenizer.eos_token_id or 0)

    def _load(self, spec: str, dtype: Any) -> Any:
        raise NotImplementedError

    def describe(self) -> dict:
        """What decides this backend's scores (the cache key's model part)."""
        return {"backend": type(self).__name__, "arch": self.arch, "model": _model_digest(self.spec),
                "convention": self.convention, "score_eos": self.score_eos, "max_length": self.max_length,
                "max_target": self.max_target}

    # tokenisation ------------------------------------------------------------------------------------------
    def _split_space(self, context: str, continuation: str) -> tuple[str, str]:
        if self.convention == "lm-eval":
            n = len(context) - len(context.rstrip())
            if n:
                return context[:-n], context[-n:] + continuation
        return context, continuation

    def _context_ids(self, context: str) -> list[int]:
        return encode_source(self.tokenizer, context, self.arch, self.max_length)

    def _continuation_ids(self, context: str, continuation: str) -> list[int]:
        return encode_target(self.tokenizer, continuation, self.max_target, add_eos=self.score_eos)

    def _encode_requests(self, requests: list[tuple[str, list[str]]]) -> list[tuple[list[int], list[list[int]]]]:
        out = []
        for context, conts in requests:
            if self.convention == "lm-eval":
                pairs = [self._split_space(context, c) for c in conts]
                ctx = pairs[0][0] if pairs else context
                out.append((self._context_ids(ctx), [self._continuation_ids(ctx, c) for _, c in pairs]))
            else:
                out.append((self._context_ids(context), [self._continuation_ids(context, c) for c in conts]))
        return out

    # generation -------------------------------------------------------------------------------------------------
    def generate(self, prompts: list[str], params: GenerationParams) -> list[str]:
        """Batched greedy (temperature 0) or nucleus-sampled completions, in the order of the prompts."""
        import torch

        ids = [self._context_ids(p) for p in prompts]
        if self.window:  # keep the end of a long prompt (bos first) so the answer fits the model's window
            keep = max(2, self.window - params.max_new_tokens)
            bos = self.tokenizer.bos_token_id
            ids = [seq if len(seq) <= keep else
                   (seq[:1] + seq[len(seq) - keep + 1:] if seq[0] == bos else seq[len(seq) - keep:]) for seq in ids]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out: list[str] = [""] * len(ids)
        sample = params.temperature > 0
        for group in _chunks(order, [1] * len(ids), self.batch_size):
            width = max(len(ids[i]) for i in group)
            input_ids = torch.full((len(group), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for row, i in enumerate(group):
                seq = torch.tensor(ids[i], dtype=torch.long)
                if self.arch == "causal":  # left padding: every prompt ends where generation starts
                    input_ids[row, width - len(seq):], mask[row, width - len(seq):] = seq, 1
                else:
                    input_ids[row, : len(seq)], mask[row, : len(seq)] = seq, 1
            kwargs: dict[str, Any] = {"max_new_tokens": params.max_new_tokens, "do_sample": sample,
                                      "pad_token_id": self.pad_id}
            if sample:
                kwargs.update(temperature=params.temperature, top_p=params.top_p)
                torch.manual_seed(params.seed)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            with torch.inference_mode():
                gen = self.model.generate(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                                          **kwargs)
            if self.arch == "causal":
                gen = gen[:, width:]
            for row, i in enumerate(group):
                text = self.tokenizer.decode(gen[row].tolist(), skip_special_tokens=True)
                out[i] = apply_stop(text, params.stop)
        return out


def _scores(logits: Any, targets: Any, mask: Any) -> tuple[Any, Any]:
    """Summed log-probabilities of targets and whether every target is the argmax, per row."""
    import torch

    logits = logits.float()
    lse = torch.logsumexp(logits, dim=-1)
    picked = (logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - lse).double()  # sum in float64
    greedy = (logits.argmax(-1) == targets) | ~mask
    return (picked * mask).sum(-1), greedy.all(-1)


def _logits_at(model: Any, rows: Any, cols: Any, **inputs: Any) -> Any:
    """Logits at the (row, position) pairs only, shape (pairs, vocab).

    The output layer gets just those hidden states (a forward pre-hook on it), so padding and context positions
    never pay for the vocabulary projection, whatever the architecture adds around it (scaling, biases, caps)."""
    head = model.get_output_embeddings()
    if head is None:
        return model(**inputs).logits[rows, cols]

    def pick(module: Any, args: tuple) -> tuple:
        return (args[0][rows, cols], *args[1:])

    handle = head.register_forward_pre_hook(pick)
    try:
        logits = model(**inputs).logits
    except (RuntimeError, IndexError, ValueError):  # an architecture that reshapes after its head
        logits = None
    finally:
        handle.remove()
    if logits is None or logits.dim() != 2 or logits.shape[0] != len(rows):
        return model(**inputs).logits[rows, cols]
    return logits


def _flat_scores(logits: Any, targets: Any, row_of: Any, n_rows: int) -> tuple[Any, Any]:
    """Per-row summed log-probabilities and all-argmax flags from flat (token, vocab) logits."""
    import torch

    logits = logits.float()
    token_lp = (logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)).double()
    sums = torch.zeros(n_rows, dtype=torch.float64, device=logits.device).index_add_(0, row_of, token_lp)
    misses = torch.zeros(n_rows, dtype=torch.long, device=logits.device).index_add_(
        0, row_of, (logits.argmax(-1) != targets).long())
    return sums, misses == 0


class HFSeq2SeqBackend(_HFBackend):
    """An encoder-decoder model: each context is encoded once and all its choices scored in one decoder batch."""

    arch = "seq2seq"

    def _load(self, spec: str, dtype: Any) -> Any:
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM.from_pretrained(spec, dtype=dtype)

    def loglikelihood(self, requests: list[tuple[str, list[str]]]) -> list[list[LogLik]]:
        """Length-sorted batches of contexts; one encoder pass per context, one decoder row per choice."""
        import torch

        encoded = self._encode_requests(requests)
        texts = [[self._split_space(ctx, c)[1] for c in conts] for ctx, conts in requests]
        results: list[list[LogLik]] = [[] for _ in requests]
        sizes = [max(1, len(conts)) for _, conts in encoded]
        order = sorted(range(len(encoded)),
                       key=lambda i: (-len(encoded[i][0]), -max((len(c) for c in encoded[i][1]), default=0)))
        start = self.model.config.decoder_start_token_id
        if start is None:
            start = self.pad_id
        for group in _chunks(order, sizes, self.batch_size):
            width = max(len(encoded[i][0]) for i in group)
            src = torch.full((len(group), width), self.pad_id, dtype=torch.long)
            src_mask = torch.zeros((len(group), width), dtype=torch.long)
            rows, conts = [], []
            for g, i in enumerate(group):
                ids = encoded[i][0]
                src[g, : len(ids)], src_mask[g, : len(ids)] = torch.tensor(ids), 1
                for j, cont in enumerate(encoded[i][1]):
                    rows.append((g, i, j))
                    conts.append(cont)
            if not rows:
                continue
            tlen = max(1, max(len(c) for c in conts))
            dec_in = torch.full((len(rows), tlen), self.pad_id, dtype=torch.long)
            target = torch.full((len(rows), tlen), self.pad_id, dtype=torch.long)
            tmask = torch.zeros((len(rows), tlen), dtype=torch.bool)
            for r, cont in enumerate(conts):
                if cont:
                    seq = torch.tensor(cont)
                    target[r, : len(seq)] = seq
                    dec_in[r, : len(seq)] = torch.cat([torch.tensor([start]), seq[:-1]])
                    tmask[r, : len(seq)] = True
            index = torch.tensor([g for g, _, _ in rows], device=self.device)
            with torch.inference_mode():
                enc = self.model.get_encoder()(input_ids=src.to(self.device), attention_mask=src_mask.to(self.device))
                hidden = enc.last_hidden_state.index_select(0, index)
                # no decoder mask: targets are right-padded and the decoder is causal, so padding never reaches
                # a real position; logits only at the real target positions
                r_idx, c_idx = tmask.nonzero(as_tuple=True)
                logits = _logits_at(self.model, r_idx.to(self.device), c_idx.to(self.device),
                                    encoder_outputs=(hidden,),
                                    attention_mask=src_mask.to(self.device).index_select(0, index),
                                    decoder_input_ids=dec_in.to(self.device), use_cache=False)
                logprob, greedy = _flat_scores(logits, target[r_idx, c_idx].to(self.device), r_idx.to(self.device),
                                               len(rows))
            for r, (_, i, j) in enumerate(rows):
                results[i].append(LogLik(float(logprob[r]), len(conts[r]), len(texts[i][j].encode("utf-8")),
                                         bool(greedy[r])))
        return results


class HFCausalBackend(_HFBackend):
    """A decoder-only model: each context runs once and its keys/values are reused by all of its choices.

    strategy "packed" (default): one forward pass per batch; a row holds the context then every choice, and a block
    attention mask lets each choice see the context and itself only (positions restart after the context).
    strategy "cache": a pass over the contexts, then the choices on a copy of the KV cache.
    """

    arch = "causal"
    STRATEGIES = ("packed", "cache")

    def __init__(self, model: str | Path, strategy: str = "packed", **kwargs: Any) -> None:
        if strategy not in self.STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; expected one of {self.STRATEGIES}")
        self.strategy = strategy
        super().__init__(model, **kwargs)

    def _load(self, spec: str, dtype: Any) -> Any:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(spec, dtype=dtype)

    @functools.cached_property
    def _cache_kwarg(self) -> str:
        """transformers renamed `past_key_values` to `cache` in 5.x: use whichever this version takes."""
        params = inspect.signature(self.model.forward).parameters
        return "cache" if "cache" in params else "past_key_values"

    def _continuation_ids(self, context: str, continuation: str) -> list[int]:
        if self.convention == "lm-eval":  # the tail of the joint tokenisation, as lm-eval does
            big = 10**9
            whole = encode_target(self.tokenizer, context + continuation, big, add_eos=False)
            ctx = encode_target(self.tokenizer, context, big, add_eos=False)
            return whole[len(ctx):][: self.max_target]
        return super()._continuation_ids(context, continuation)

    def loglikelihood(self, requests: list[tuple[str, list[str]]]) -> list[list[LogLik]]:
        """Length-sorted batches; each context is computed once for all of its choices (see `strategy`)."""
        if self.strategy == "packed":
            return self._packed(requests)
        return self._cached(requests)

    def _prepare(self, requests: list[tuple[str, list[str]]]) -> tuple[list, list[list[str]], list[list[LogLik]],
                                                                        list[int]]:
        """Encoded requests, continuation texts (for byte counts), empty results and choices per request."""
        encoded = self._encode_requests(requests)
        texts = [[self._split_space(ctx, c)[1] for c in conts] for ctx, conts in requests]
        for k, (ctx, _) in enumerate(encoded):
            if not ctx:
                raise BackendError(f"request {k}: empty context and the tokenizer has no bos token to condition on")
        results: list[list[LogLik]] = [[] for _ in requests]
        return encoded, texts, results, [max(1, len(conts)) for _, conts in encoded]

    def _packed(self, requests: list[tuple[str, list[str]]]) -> list[list[LogLik]]:
        import torch

        encoded, texts, results, sizes = self._prepare(requests)
        lengths = [len(ctx) + sum(len(c) for c in conts) for ctx, conts in encoded]
        order = sorted(range(len(encoded)), key=lambda i: -lengths[i])
        dev = self.device
        dtype = next(self.model.parameters()).dtype
        blocked = torch.finfo(dtype).min
        for group in _chunks(order, sizes, self.batch_size):
            # logits are computed only where a choice token is predicted (each context's last token and the
            # choices), which matters when the vocabulary is large and the context long (few-shot prompts)
            width = max(lengths[i] for i in group)
            ids = torch.full((len(group), width), self.pad_id, dtype=torch.long)
            pos = torch.zeros((len(group), width), dtype=torch.long)
            allow = torch.zeros((len(group), width, width), dtype=torch.bool)
            rows = []  # (group row, request, choice, prediction positions, targets)
            for g, i in enumerate(group):
                ctx, conts = encoded[i]
                lc, o = len(ctx), width - lengths[i]
                ids[g, o:o + lc] = torch.tensor(ctx)
                pos[g, o:o + lc] = torch.arange(lc)
                allow[g, o:o + lc, o:o + lc] = torch.ones(lc, lc, dtype=torch.bool).tril()
                start = o + lc
                for j, cont in enumerate(conts):
                    n = len(cont)
                    if n:
                        ids[g, start:start + n] = torch.tensor(cont)
                        pos[g, start:start + n] = torch.arange(lc, lc + n)
                        allow[g, start:start + n, o:o + lc] = True
                        allow[g, start:start + n, start:start + n] = torch.ones(n, n, dtype=torch.bool).tril()
                    # token k of the choice is predicted at the previous token: the context's last, then its own
                    where = [o + lc - 1] + list(range(start, start + n - 1))
                    rows.append((g, i, j, where[:n], cont))
                    start += n
            idle = ~allow.any(-1)
            allow[idle] = True  # padding rows attend everywhere (their outputs are unused): no empty softmax
            mask = torch.zeros((len(group), 1, width, width), dtype=dtype)
            mask.masked_fill_(~allow.unsqueeze(1), blocked)
            flat_r, flat_g, flat_p, flat_t = [], [], [], []
            for r, (g, _, _, where, cont) in enumerate(rows):
                flat_r += [r] * len(cont)
                flat_g += [g] * len(cont)
                flat_p += where
                flat_t += cont
            row_of = torch.tensor(flat_r, dtype=torch.long, device=dev)
            with torch.inference_mode():
                logits = _logits_at(self.model, torch.tensor(flat_g, dtype=torch.long, device=dev),
                                    torch.tensor(flat_p, dtype=torch.long, device=dev), input_ids=ids.to(dev),
                                    attention_mask=mask.to(dev), position_ids=pos.to(dev), use_cache=False)
                logprob, greedy = _flat_scores(logits, torch.tensor(flat_t, dtype=torch.long, device=dev), row_of,
                                               len(rows))
            for r, (_, i, j, _, cont) in enumerate(rows):
                results[i].append(LogLik(float(logprob[r]), len(cont), len(texts[i][j].encode("utf-8")),
                                         bool(greedy[r])))
        return results

    def _cached(self, requests: list[tuple[str, list[str]]]) -> list[list[LogLik]]:
        import torch

        encoded, texts, results, sizes = self._prepare(requests)
        order = sorted(range(len(encoded)),
                       key=lambda i: (-len(encoded[i][0]), -max((len(c) for c in encoded[i][1]), default=0)))
        for group in _chunks(order, sizes, self.batch_size):
            lens = [len(encoded[i][0]) for i in group]
            width = max(lens)
            ctx = torch.full((len(group), width), self.pad_id, dtype=torch.long)
            ctx_mask = torch.zeros((len(group), width), dtype=torch.long)
            for g, i in enumerate(group):
                ctx[g, : lens[g]], ctx_mask[g, : lens[g]] = torch.tensor(encoded[i][0]), 1
            rows = [(g, i, j) for g, i in enumerate(group) for j in range(len(encoded[i][1]))]
            if not rows:
                continue
            conts = [encoded[i][1][j] for _, i, j in rows]
            tlen = max(1, max(len(c) for c in conts))
            cont = torch.full((len(rows), tlen), self.pad_id, dtype=torch.long)
            tmask = torch.zeros((len(rows), tlen), dtype=torch.bool)
            for r, c in enumerate(conts):
                if c:
                    cont[r, : len(c)], tmask[r, : len(c)] = torch.tensor(c), True
            index = torch.tensor([g for g, _, _ in rows])
            row_lens = torch.tensor([lens[g] for g, _, _ in rows])
            dev = self.device
            with torch.inference_mode():
                out = self.model(input_ids=ctx.to(dev), attention_mask=ctx_mask.to(dev),
                                 position_ids=torch.arange(width).expand(len(group), -1).to(dev), use_cache=True)
                first = out.logits[torch.arange(len(group)), torch.tensor(lens) - 1].index_select(0, index.to(dev))
                cache = getattr(out, "cache", None) or out.past_key_values
                cache.batch_select_indices(index.to(dev))
                if tlen > 1:
                    positions = (row_lens.unsqueeze(1) + torch.arange(tlen - 1)).to(dev)
                    mask = torch.cat([ctx_mask.index_select(0, index), tmask[:, :-1].long()], dim=1).to(dev)
                    rest = self.model(input_ids=cont[:, :-1].to(dev), attention_mask=mask, position_ids=positions,
                                      use_cache=True, **{self._cache_kwarg: cache}).logits
                    logits = torch.cat([first.unsqueeze(1), rest], dim=1)
                else:
                    logits = first.unsqueeze(1)
                logprob, greedy = _scores(logits, cont.to(dev), tmask.to(dev))
            for r, (_, i, j) in enumerate(rows):
                results[i].append(LogLik(float(logprob[r]), len(conts[r]), len(texts[i][j].encode("utf-8")),
                                         bool(greedy[r])))
        return results


def _model_digest(spec: str) -> dict:
    """Content digest of a local model dir (weights, config, tokenizer files); a hub id's resolved revision."""
    path = Path(spec)
    if path.is_dir():
        digest = {}
        for f in sorted(p for p in path.iterdir() if p.is_file()):
            digest[f.name] = _file_digest(f)
        return {"files": digest}
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(spec, local_files_only=True)
        return {"hub": spec, "revision": Path(local).name}
    except Exception:  # noqa: BLE001 - not cached locally: the id is all we know
        return {"hub": spec}


def _file_digest(path: Path, full_limit: int = 64 << 20) -> str:
    """sha256 of a file; for files over 64 MiB, of its size, first and last MiB (weights change everywhere)."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        if size <= full_limit:
            while block := fh.read(1 << 20):
                h.update(block)
        else:
            h.update(fh.read(1 << 20))
            fh.seek(-(1 << 20), os.SEEK_END)
            h.update(fh.read())
    return h.hexdigest()[:16]


# --- OpenAI-compatible HTTP ---------------------------------------------------------------------------------------


class OpenAIBackend:
    """Any OpenAI-compatible endpoint: /v1/completions (and /v1/chat/completions for generation with chat=True).

    Log-likelihood needs a server that echoes prompt logprobs (`echo: true, logprobs: 1, max_tokens: 0`).
    Failures are retried with exponential backoff, then reported as one BackendError.
    """

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None, chat: bool = False,
                 timeout: float = 60.0, max_retries: int = 4, backoff: float = 1.0,
                 client: Any = None, sleep: Callable[[float], None] = time.sleep) -> None:
        import httpx

        base_url, _, fragment = base_url.partition("#")
        base_url = base_url.rstrip("/")
        if not base_url.endswith("/v1"):
            base_url += "/v1"
        self.base_url = base_url
        self.model = model or fragment or "default"
        self.named = bool(model or fragment)  # unnamed: the request names no model (the server's only one)
        self.chat = chat
        self.max_retries = max_retries
        self.backoff = backoff
        self.sleep = sleep
        key = api_key or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = client or httpx.Client(timeout=timeout, headers=headers)

    def describe(self) -> dict:
        """What decides this backend's scores."""
        return {"backend": "OpenAIBackend", "url": self.base_url, "model": self.model, "chat": self.chat}

    def _post(self, path: str, payload: dict) -> dict:
        import httpx

        url = self.base_url + path
        if not self.named:
            payload = {k: v for k, v in payload.items() if k != "model"}
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                resp = self.client.post(url, json=payload)
            except httpx.TimeoutException:
                last = "timed out"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 400:
                    try:
                        return resp.json()
                    except ValueError:
                        raise BackendError(f"{url}: response is not JSON") from None
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                if resp.status_code < 500 and resp.status_code != 429:
                    raise BackendError(f"{url}: {last}")
            if attempt < self.max_retries:
                self.sleep(self.backoff * 2 ** attempt)
        raise BackendError(f"{url}: failed after {self.max_retries + 1} attempts ({last})")

    def generate(self, prompts: list[str], params: GenerationParams) -> list[str]:
        """One request per prompt, in order."""
        out = []
        for prompt in prompts:
            payload: dict[str, Any] = {"model": self.model, "max_tokens": params.max_new_tokens,
                                       "temperature": params.temperature, "top_p": params.top_p,
                                       "seed": params.seed}
            if params.stop:
                payload["stop"] = params.stop
            if self.chat:
                payload["messages"] = [{"role": "user", "content": prompt}]
                data = self._post("/chat/completions", payload)
                text = _get(data, ["choices", 0, "message", "content"], self.base_url)
            else:
                payload["prompt"] = prompt
                data = self._post("/completions", payload)
                text = _get(data, ["choices", 0, "text"], self.base_url)
            out.append(apply_stop(text or "", params.stop))
        return out

    def loglikelihood(self, requests: list[tuple[str, list[str]]]) -> list[list[LogLik]]:
        """Echoed prompt logprobs of context + continuation; the continuation's tokens are those after the context."""
        results = []
        for context, conts in requests:
            row = []
            for cont in conts:
                payload = {"model": self.model, "prompt": context + cont, "max_tokens": 0, "echo": True,
                           "logprobs": 1, "temperature": 0}
                data = self._post("/completions", payload)
                lp = _get(data, ["choices", 0, "logprobs"], self.base_url)
                if not lp or not lp.get("token_logprobs") or lp.get("text_offset") is None:
                    raise BackendError(f"{self.base_url}: the endpoint returns no prompt logprobs (echo); "
                                       "choice tasks need a backend that does")
                total, n, greedy = 0.0, 0, True
                tops = lp.get("top_logprobs") or [None] * len(lp["tokens"])
                for tok, value, offset, top in zip(lp["tokens"], lp["token_logprobs"], lp["text_offset"], tops):
                    if offset < len(context) or value is None:
                        continue
                    total += float(value)
                    n += 1
                    if top:
                        greedy = greedy and max(top, key=top.get) == tok
                row.append(LogLik(total, n, len(cont.encode("utf-8")), greedy))
            results.append(row)
        return results


def _get(data: Any, keys: list, where: str) -> Any:
    for k in keys:
        try:
            data = data[k]
        except (KeyError, IndexError, TypeError):
            raise BackendError(f"{where}: unexpected response, no {'.'.join(map(str, keys))}") from None
    return data


# --- factory ---------------------------------------------------------------------------------------------------


def load_backend(spec: str, **kwargs: Any) -> Backend:
    """A backend from a spec: 'http(s)://host[:port][/v1][#model]' -> OpenAI-compatible; a path or hub id -> HF."""
    if spec.startswith(("http://", "https://")):
        allowed = {"model", "api_key", "chat", "timeout", "max_retries", "backoff", "client"}
        return OpenAIBackend(spec, **{k: v for k, v in kwargs.items() if k in allowed})
    path = Path(spec).expanduser()
    if not path.exists() and spec.startswith((".", "/", "~")):
        raise BackendError(f"cannot load model {spec}: no such directory")
    arch = kwargs.pop("arch", None) or detect_arch(path if path.exists() else spec)
    for k in ("model", "api_key", "chat", "timeout", "max_retries", "backoff", "client"):
        kwargs.pop(k, None)
    if arch == "seq2seq":
        kwargs.pop("strategy", None)  # a causal-only setting
        return HFSeq2SeqBackend(path if path.exists() else spec, **kwargs)
    return HFCausalBackend(path if path.exists() else spec, **kwargs)


def model_fingerprint(backend: Backend) -> str:
    """A short hash of what decides the backend's outputs (weights, tokenizer, scoring convention, endpoint)."""
    describe = getattr(backend, "describe", None)
    info = describe() if callable(describe) else {"backend": type(backend).__name__, "id": id(backend)}
    return fingerprint(info)


def backend_name(backend: Backend) -> str:
    """A readable name: the model path's last part, the endpoint's model, or the class name."""
    if isinstance(backend, _HFBackend):
        return Path(backend.spec).name or backend.spec
    if isinstance(backend, OpenAIBackend):
        return backend.model
    return type(backend).__name__


__all__ = ["Backend", "BackendError", "GenerationParams", "HFCausalBackend", "HFSeq2SeqBackend", "LogLik",
           "OpenAIBackend", "apply_stop", "backend_name", "detect_arch", "load_backend",
           "model_fingerprint"]
