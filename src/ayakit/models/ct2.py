"""The CTranslate2 engine: a Backend that converts an HF model once (cached beside it) and runs it with CTranslate2.

Token ids are ayakit's (the HF tokenizer through ayakit.models.encoding's RequestEncoder, as the HF engine), so
the same ids go in as the HF engine uses; CTranslate2
takes token strings, so the converted vocabulary is built here so that position i is exactly the string of id i.
Seq2seq models run as a `ctranslate2.Translator`, causal models as a `ctranslate2.Generator`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ayakit.io import fingerprint, read_json, write_manifest
from ayakit.models.backend import CONVENTIONS, BackendError, GenerationParams, LogLik, apply_stop
from ayakit.models.encoding import RequestEncoder
from ayakit.models.loading import detect_arch, load_config, model_digest, positions, read_meta, weights_fingerprint

# compute types per device (what CTranslate2 stores and computes in); the first is the default
COMPUTE_TYPES = {"cpu": ("float32", "int8"), "cuda": ("float16", "int8_float16", "float32")}
CACHE_DIR = ".ct2"  # beside the model's weights
FORMAT = 3  # bump when the conversion below changes: old caches are then redone
VOCAB_FILES = ("shared_vocabulary.json", "vocabulary.json", "target_vocabulary.json")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_compute_type(device: str, compute_type: str | None) -> str:
    """The compute type for a device ('cpu' or 'cuda'): the default when None, else validated with a clear error."""
    if device not in COMPUTE_TYPES:
        raise BackendError(f"ctranslate2: unknown device {device!r}; expected one of {sorted(COMPUTE_TYPES)}")
    allowed = COMPUTE_TYPES[device]
    compute_type = compute_type or allowed[0]
    if compute_type not in allowed:
        other = [d for d, types in COMPUTE_TYPES.items() if compute_type in types]
        hint = f" (it is a {other[0]} compute type)" if other else ""
        raise BackendError(f"ctranslate2: compute type {compute_type!r} is not available on {device}{hint}; "
                           f"expected one of {', '.join(allowed)}")
    import ctranslate2

    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise BackendError("ctranslate2: no CUDA device is visible (use device 'cpu' with float32 or int8)")
    try:
        supported = ctranslate2.get_supported_compute_types(device)
    except RuntimeError as exc:  # no usable CUDA device or driver
        raise BackendError(f"ctranslate2: cannot use {device}: {exc}") from None
    if compute_type not in supported:
        raise BackendError(f"ctranslate2: this {device} does not support {compute_type!r}; it supports "
                           f"{', '.join(sorted(supported))}")
    return compute_type


# --- conversion -------------------------------------------------------------------------------------------------


def conversion_key(model_dir: Path) -> tuple[str, dict[str, str]]:
    """The conversion cache key (the model layer's content digest of the model dir, the CTranslate2 version and this
    module's format) and the per-file digests it was made from."""
    import ctranslate2

    files = model_digest(model_dir)["files"]
    if not any(name.endswith((".safetensors", ".bin")) for name in files):
        raise BackendError(f"ctranslate2: {model_dir} has no weights (*.safetensors or pytorch_model*.bin)")
    return fingerprint({"files": files, "ctranslate2": ctranslate2.__version__, "format": FORMAT}), files


def vocabulary(tokenizer: Any, size: int) -> list[str]:
    """Token strings by id for a model with `size` embeddings: ids the tokenizer lacks get unique placeholders."""
    n = min(len(tokenizer), size)
    tokens: list[Any] = list(tokenizer.convert_ids_to_tokens(list(range(n))))
    seen: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        if tok is None:
            continue
        if tok in seen:
            raise BackendError(f"ctranslate2: the tokenizer maps ids {seen[tok]} and {i} to the same string {tok!r}; "
                               "CTranslate2 identifies tokens by string, so this model cannot be converted")
        seen[tok] = i
    tokens += [None] * (size - n)
    for i, tok in enumerate(tokens):
        if tok is None:
            name = f"<ayakit_unused_{i}>"
            while name in seen:
                name = "<" + name + ">"
            tokens[i] = name
    return tokens


class _VocabView:
    """The HF tokenizer with get_vocab() replaced by the id-exact vocabulary (what the converter reads)."""

    def __init__(self, tokenizer: Any, tokens: list[str]) -> None:
        self._tokenizer = tokenizer
        self._tokens = tokens

    def get_vocab(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self._tokens)}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


def _converter(model_dir: Path) -> Any:
    from ctranslate2.converters import TransformersConverter

    class Converter(TransformersConverter):
        def load_model(self, model_class: Any, name: str, **kwargs: Any) -> Any:
            self.model = super().load_model(model_class, name, **kwargs)
            return self.model

        def load_tokenizer(self, tokenizer_class: Any, name: str, **kwargs: Any) -> Any:
            tok = super().load_tokenizer(tokenizer_class, name, **kwargs)
            size = self.model.get_input_embeddings().weight.shape[0]
            if size != self.model.config.vocab_size:
                raise BackendError(f"ctranslate2: {name}: config.vocab_size is {self.model.config.vocab_size} but "
                                   f"the embeddings have {size} rows")
            self.tokens = vocabulary(tok, size)
            return _VocabView(tok, self.tokens)

        def _load(self) -> Any:
            spec = super()._load()
            # transformers 5 always sets T5's tie_word_embeddings (which the converter reads) and says whether the
            # decoder output is scaled by d_model^-0.5 in scale_decoder_outputs (False for T5 v1.1 / mT5 untied)
            scale = getattr(self.model.config, "scale_decoder_outputs", None)
            if scale is not None and hasattr(getattr(spec, "decoder", None), "scale_outputs"):
                from ctranslate2.specs import model_spec

                spec.decoder.scale_outputs = self.model.config.d_model ** -0.5 if scale else model_spec.OPTIONAL
            config = getattr(spec, "config", None)
            if config is not None and getattr(config, "unk_token", "") is None:
                # a tokenizer without an unknown token (byte-level BPE): CTranslate2 needs a string; ayakit passes
                # only token strings of the vocabulary, so the eos string stands in and is never looked up as unk
                config.unk_token = self.tokens[self.model.config.eos_token_id]
            return spec

    return Converter(str(model_dir))


def cache_root(model_dir: Path, cache_dir: str | Path | None = None) -> Path:
    """Where conversions of this model live: cache_dir, else <model>/.ct2 when writable, else the user cache."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.access(model_dir, os.W_OK) and "huggingface" not in model_dir.resolve().parts:
        return model_dir / CACHE_DIR
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ayakit" / "ct2"
    return base / hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:16]


def convert(model_dir: str | Path, compute_type: str, cache_dir: str | Path | None = None,
            notify: Callable[[str], None] = _stderr) -> Path:
    """The CTranslate2 model for model_dir in compute_type: converted once, reused while the fingerprint matches.

    The conversion is written to a temporary directory and renamed into place; conversions of older weights (same
    compute type, other fingerprint) are removed, and both events are reported through `notify`."""
    model_dir = Path(model_dir)
    root = cache_root(model_dir, cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    key, digests = conversion_key(model_dir)
    dest = root / f"{compute_type}-{key}"
    if (dest / "model.bin").is_file() and (dest / "manifest.json").is_file():
        return dest
    notify(f"ctranslate2: converting {model_dir} to {compute_type} (once; cached in {dest})")
    tmp = root / f".tmp-{compute_type}-{key}-{uuid.uuid4().hex[:8]}"
    try:
        converter = _converter(model_dir)
        try:
            converter.convert(str(tmp), quantization=compute_type, force=True)
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001 - any converter failure is this model's
            text = str(exc).strip().splitlines()
            raise BackendError(f"ctranslate2: cannot convert {model_dir}: {type(exc).__name__}: "
                               f"{text[0] if text else ''}") from None
        write_manifest(tmp, "ct2-convert", {"model": str(model_dir), "files": digests, "compute_type": compute_type,
                                            "format": FORMAT},
                       {"vocabulary": len(converter.tokens),
                        "placeholders": sum(t.startswith("<ayakit_unused_") for t in converter.tokens)},
                       fingerprint=key)
        try:
            os.rename(tmp, dest)
        except OSError:  # another process finished the same conversion first: use theirs
            if not (dest / "model.bin").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    stale = [p for p in root.glob(f"{compute_type}-*") if p.is_dir() and p != dest]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    if stale:
        notify(f"ctranslate2: removed {len(stale)} conversion(s) of earlier weights of {model_dir}: "
               f"{', '.join(p.name for p in stale)}")
    return dest


def _converted_vocabulary(path: Path) -> list[str]:
    for name in VOCAB_FILES:
        if (path / name).is_file():
            return read_json(path / name)
    raise BackendError(f"ctranslate2: {path} has no vocabulary file (one of {', '.join(VOCAB_FILES)})")


# --- the backend ------------------------------------------------------------------------------------------------


def thread_split(device: str, threads: int) -> tuple[int, int]:
    """(intra_threads, inter_threads) for `threads` CPU threads: on CPU one worker per thread, each running whole
    batches on one thread; on CUDA one worker.

    A call's examples are spread over the workers. For the small models ayakit trains on CPU, whole batches in
    parallel beat each operation split over threads: the trained demo model, 256 prompts sent 32 at a time as eval
    does, 2 workers x 1 thread 3.7-3.9 s vs 1 worker x 2 threads 4.6-4.8 s (1.24x, identical outputs, load 2.4)."""
    if device != "cpu":
        return 1, 1
    return 1, max(1, threads)


def _resolve(model: str | Path) -> Path:
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if str(model).startswith((".", "/", "~")):
        raise BackendError(f"cannot load model {model}: no such directory")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(model), local_files_only=True))
    except Exception:  # noqa: BLE001
        raise BackendError(f"cannot load model {model}: not a directory and not in the local hub cache") from None


def _generation_defaults(model_dir: Path) -> dict[str, Any]:
    """The decoding settings HF's generate() takes from generation_config.json, as CTranslate2 options."""
    from transformers import GenerationConfig

    try:
        gen = GenerationConfig.from_pretrained(str(model_dir))
    except OSError:
        gen = GenerationConfig()
    return {"top_k": gen.top_k or 0, "repetition_penalty": gen.repetition_penalty or 1.0,
            "no_repeat_ngram_size": gen.no_repeat_ngram_size or 0, "beam_size": gen.num_beams or 1}


class CT2Backend:
    """A seq2seq (Translator) or causal (Generator) model run by CTranslate2, tokenised exactly as the HF engine.

    Scores are summed token log-probabilities (CTranslate2's score_batch, which encodes the context once per
    choice); `is_greedy` comes from greedy decoding of each context, whose first tokens equal a continuation exactly
    when each of its tokens is the argmax. Sampling is seeded per call (a fresh CTranslate2 instance per seed).
    """

    engine = "ctranslate2"

    def __init__(self, model: str | Path, batch_size: int = 32, device: str | None = None,
                 max_length: int | None = None, convention: str = "ayakit", score_eos: bool | None = None,
                 compute_type: str | None = None, threads: int | None = None, cache_dir: str | Path | None = None,
                 arch: str | None = None, tokenizer: Any = None,
                 notify: Callable[[str], None] = _stderr, workers: int | None = None) -> None:
        try:
            import ctranslate2
        except ImportError:
            raise BackendError("the ctranslate2 engine needs the ctranslate2 package: pip install ctranslate2") \
                from None
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown convention {convention!r}; expected one of {CONVENTIONS}")
        self.spec = str(model)
        self.model_dir = _resolve(model)
        self.arch = arch or detect_arch(self.model_dir)
        if self.arch not in ("seq2seq", "causal"):
            raise BackendError(f"ctranslate2: unknown architecture {self.arch!r}; expected 'seq2seq' or 'causal'")
        device = device or ("cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu")
        self.device, _, index = str(device).partition(":")  # torch-style "cuda:1" names a device index
        if index and not index.isdigit():
            raise BackendError(f"ctranslate2: device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")
        self.device_index = int(index or 0)
        self.compute_type = check_compute_type(self.device, compute_type)
        self.batch_size = batch_size
        self.convention = convention
        meta = read_meta(self.model_dir)
        self.max_length = max_length or meta.get("max_source_length") or 1024
        self.max_target = max_length or meta.get("max_target_length") or 1024
        self.trained_by_ayakit = bool(meta)
        if score_eos is None:
            score_eos = convention == "ayakit" and (self.arch == "seq2seq" or self.trained_by_ayakit)
        self.score_eos = score_eos
        if tokenizer is None:
            from transformers import AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
            except Exception as exc:  # noqa: BLE001
                raise BackendError(f"cannot load the tokenizer of {model}: {type(exc).__name__}: {exc}") from None
        self.tokenizer = tokenizer
        self.path = convert(self.model_dir, self.compute_type, cache_dir, notify)
        self.tokens = _converted_vocabulary(self.path)
        if self.tokens != vocabulary(tokenizer, len(self.tokens)):
            raise BackendError(f"ctranslate2: the tokenizer of {model} does not match the vocabulary converted into "
                               f"{self.path} (token strings by id differ)")
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.window = positions(load_config(self.model_dir)) if self.arch == "causal" else None
        if self.window:
            self.max_length = min(self.max_length, self.window)
        self.decoding = _generation_defaults(self.model_dir)
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        self.threads = threads
        if workers is not None and workers < 1:
            raise BackendError(f"ctranslate2: workers is {workers}; it must be at least 1")
        # CTranslate2's (intra_threads, inter_threads): threads per batch, batches decoded at the same time
        self.intra, self.workers = (threads, workers) if workers else thread_split(self.device, threads)
        self.model = self._load()
        self.eos = tokenizer.eos_token_id

    def _load(self, workers: int | None = None) -> Any:
        """A CTranslate2 instance: this backend's workers, or `workers` workers of `threads` threads each (1 for
        seeded sampling: each worker draws from its own generator and batches are not pinned to workers)."""
        import ctranslate2

        engine = ctranslate2.Translator if self.arch == "seq2seq" else ctranslate2.Generator
        intra, inter = (self.threads, workers) if workers else (self.intra, self.workers)
        try:  # max_queued_batches -1: a submitted batch never blocks its caller (serve caps batches in flight)
            return engine(str(self.path), device=self.device, device_index=self.device_index,
                          compute_type=self.compute_type, intra_threads=intra, inter_threads=inter,
                          max_queued_batches=-1)
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"ctranslate2: cannot load {self.path}: {exc}") from None

    def instance(self) -> Any:
        """A new CTranslate2 model with one worker thread of its own (whose generator the next sampling seeds)."""
        return self._load(workers=1)

    def strings(self, ids: list[int]) -> list[str]:
        """The converted vocabulary's token strings of ids (what CTranslate2 takes)."""
        return [self.tokens[i] for i in ids]

    def describe(self) -> dict:
        """What decides this backend's scores (the cache key's model part)."""
        import ctranslate2

        return {"backend": "CT2Backend", "ctranslate2": ctranslate2.__version__, "compute_type": self.compute_type,
                "arch": self.arch, "model": weights_fingerprint(self.model_dir), "convention": self.convention,
                "score_eos": self.score_eos, "max_length": self.max_length, "max_target": self.max_target}

    # tokenisation: the shared RequestEncoder (ayakit.models.encoding), exactly as the HF engine ------------------
    @property
    def encoder(self) -> RequestEncoder:
        """This backend's tokenisation of requests and prompts (built from the current settings)."""
        return RequestEncoder(self.tokenizer, self.arch, self.convention, self.max_length, self.max_target,
                              self.score_eos, self.window)

    def _context_ids(self, context: str) -> list[int]:
        return self.encoder.context_ids(context)

    def encode_requests(self, requests: list[tuple[str, list[str]]]) -> list[tuple[list[int], list[list[int]]]]:
        """(context ids, continuation ids per choice) for each request, as the HF engine encodes them."""
        return self.encoder.requests(requests)

    def _strings(self, ids: list[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    # scoring --------------------------------------------------------------------------------------------------------
    def loglikelihood(self, requests: list[tuple[str, list[str]]]) -> list[list[LogLik]]:
        """Summed log-probabilities of every continuation, in batches of `batch_size` (context, continuation) pairs."""
        encoded = self.encode_requests(requests)
        encoder = self.encoder
        texts = [encoder.continuation_texts(ctx, conts) for ctx, conts in requests]
        if self.arch == "causal":
            for k, (ctx, _) in enumerate(encoded):
                if not ctx:
                    raise BackendError(f"request {k}: empty context and the tokenizer has no bos token to "
                                       "condition on")
        pairs = [(i, j) for i, (_, conts) in enumerate(encoded) for j, c in enumerate(conts) if c]
        logprobs = self._score([encoded[i][0] for i, _ in pairs], [encoded[i][1][j] for i, j in pairs])
        greedy = self._greedy_prefixes(encoded)
        scored = dict(zip(pairs, logprobs))
        out: list[list[LogLik]] = []
        for i, (_, conts) in enumerate(encoded):
            row = []
            for j, cont in enumerate(conts):
                is_greedy = greedy[i][: len(cont)] == cont
                row.append(LogLik(scored.get((i, j), 0.0), len(cont), len(texts[i][j].encode("utf-8")), is_greedy))
            out.append(row)
        return out

    def _score(self, contexts: list[list[int]], conts: list[list[int]]) -> list[float]:
        if not conts:
            return []
        batch = self._batch(len(conts))
        if self.arch == "seq2seq":
            # score_batch appends </s> to every target and scores it: pass the continuation without its own eos
            # and keep as many positions as the continuation has (the appended </s> is its eos, or is dropped)
            targets = [c[:-1] if c[-1] == self.eos else c for c in conts]
            results = self.model.score_batch([self._strings(s) for s in contexts],
                                             [self._strings(t) for t in targets], max_batch_size=batch,
                                             max_input_length=0)
            return [float(sum(r.log_probs[: len(c)])) for r, c in zip(results, conts)]
        # a causal row is context + continuation; position k scores token k + 1, so the continuation is the tail
        results = self.model.score_batch([self._strings(s + c) for s, c in zip(contexts, conts)],
                                         max_batch_size=batch, max_input_length=0)
        return [float(sum(r.log_probs[len(r.log_probs) - len(c):])) for r, c in zip(results, conts)]

    def _greedy_prefixes(self, encoded: list[tuple[list[int], list[list[int]]]]) -> list[list[int]]:
        """Per request, its greedy continuation (eos included) as far as any choice could still equal it.

        Decoded 1, then 4x more tokens at a time, only for requests where a longer choice still matches: most
        choices differ from the greedy one at their first token, so most contexts need one decoding step."""
        need = [max((len(c) for c in conts), default=0) for _, conts in encoded]
        out: list[list[int]] = [[] for _ in encoded]
        todo = [i for i, n in enumerate(need) if n]
        length = 1
        while todo:
            ids = self._decode([encoded[i][0] for i in todo], length, None, argmax=True)
            undecided = []
            for i, seq in zip(todo, ids):
                out[i] = seq
                if len(seq) == length and any(len(c) > length and c[:length] == seq for c in encoded[i][1]):
                    undecided.append(i)
            todo, length = undecided, min(length * 4, max(need))
        return out

    def length_options(self, max_new: int) -> dict[str, Any]:
        """The length options of a generation call on this architecture (Translator or Generator), prompt excluded."""
        if self.arch == "seq2seq":
            return {"max_decoding_length": max_new, "min_decoding_length": 0, "max_input_length": 0}
        return {"max_length": max_new, "min_length": 0, "include_prompt_in_result": False}

    def call(self, model: Any, prompts: list[list[str]], **options: Any) -> Any:
        """Generate with `model` (self.model or an instance()): translate_batch or generate_batch by architecture."""
        run = model.translate_batch if self.arch == "seq2seq" else model.generate_batch
        return run(prompts, **options)

    def _batch(self, n: int, model: Any = None) -> int:
        """CTranslate2's max_batch_size for a call of n examples: at most batch_size, and small enough that every
        worker gets a batch (callers such as the eval harness send one batch at a time)."""
        model = model or self.model
        workers = getattr(model, "num_translators", None) or getattr(model, "num_generators", 1)
        return max(1, min(self.batch_size, -(-n // workers)))

    # generation -----------------------------------------------------------------------------------------------------
    def _decode(self, prompts: list[list[int]], max_new: int, sample: GenerationParams | None,
                argmax: bool = False, prefix: list[int] | None = None) -> list[list[int]]:
        """Generated ids for each prompt: greedy (with the model's generation_config settings) or sampled.

        argmax: plain token-by-token argmax with the end token kept (the greedy check of scoring). prefix: the
        first target tokens of a seq2seq model, forced (NLLB's target language code), returned with the rest."""
        import ctranslate2

        model = self.model
        options: dict[str, Any] = {"return_end_token": argmax}
        if argmax:
            options.update(sampling_topk=1, beam_size=1)
        elif sample is None:
            options.update(sampling_topk=1, beam_size=self.decoding["beam_size"])
        else:
            # CTranslate2 4.x seeds a worker thread's generator once, when it first samples (set_random_seed does
            # not reseed it: OpenNMT/CTranslate2#1757), so a seeded call runs on a fresh instance's new worker
            ctranslate2.set_random_seed(sample.seed)
            model = self._load(workers=1)
            options.update(sampling_topk=self.decoding["top_k"], sampling_topp=sample.top_p,
                           sampling_temperature=sample.temperature, beam_size=1)
        if self.decoding["repetition_penalty"] != 1.0 and not argmax:
            options["repetition_penalty"] = self.decoding["repetition_penalty"]
        if self.decoding["no_repeat_ngram_size"] and not argmax:
            options["no_repeat_ngram_size"] = self.decoding["no_repeat_ngram_size"]
        options["max_batch_size"] = self._batch(len(prompts), model)
        tokens = [self._strings(p) for p in prompts]
        if prefix:
            if self.arch != "seq2seq":
                raise BackendError("ctranslate2: a forced target prefix needs a seq2seq model")
            options["target_prefix"] = [self._strings(prefix)] * len(tokens)
        results = self.call(model, tokens, **options, **self.length_options(max_new))
        if self.arch == "seq2seq":
            return [[self.index[t] for t in r.hypotheses[0]] for r in results]  # Translator returns strings
        return [list(r.sequences_ids[0]) for r in results]

    def generate_ids(self, prompts: list[list[int]], params: GenerationParams,
                     prefix: list[int] | None = None) -> list[list[int]]:
        """New token ids per prompt of ids (eos not included), as ayakit.models.generation.generate returns them;
        `prefix` forces a seq2seq model's first target tokens (HF's forced_bos_token_id), kept in the output."""
        if not prompts:
            return []
        return self._decode(prompts, params.max_new_tokens, params if params.temperature > 0 else None,
                            prefix=prefix)

    def generate(self, prompts: list[str], params: GenerationParams) -> list[str]:
        """Greedy (temperature 0) or sampled (temperature, top-p, the model's top-k) completions, in prompt order."""
        ids = self.encoder.prompts(prompts, params.max_new_tokens)
        if not ids:
            return []
        out = self._decode(ids, params.max_new_tokens, params if params.temperature > 0 else None)
        return [apply_stop(self.tokenizer.decode(seq, skip_special_tokens=True), params.stop) for seq in out]


OPTIONS = ("batch_size", "device", "max_length", "convention", "score_eos", "compute_type", "threads", "cache_dir",
           "arch", "tokenizer", "notify")
REMOTE_OPTIONS = ("model", "api_key", "chat", "timeout", "max_retries", "backoff", "client")  # for endpoints only


def load(spec: str | Path, **kwargs: Any) -> CT2Backend:
    """The ctranslate2 engine from load_backend-style options; HF-only ones (dtype, strategy, ...) are refused."""
    kwargs = {k: v for k, v in kwargs.items() if k not in REMOTE_OPTIONS}
    unknown = sorted(k for k, v in kwargs.items() if k not in OPTIONS and v is not None)
    if unknown:
        raise BackendError(f"the ctranslate2 engine does not take {', '.join(unknown)}; it takes "
                           f"{', '.join(OPTIONS)} (compute_type instead of dtype)")
    return CT2Backend(spec, **{k: v for k, v in kwargs.items() if k in OPTIONS})


__all__ = ["COMPUTE_TYPES", "CT2Backend", "load", "cache_root", "check_compute_type", "conversion_key", "convert",
           "thread_split", "vocabulary"]
