"""The OpenAI-compatible HTTP API: /v1/chat/completions, /v1/completions, /v1/models, /health."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from concurrent.futures import ThreadPoolExecutor

from ayakit.serve.engine import Completion, Delta, SamplingParams, ServingEngine, TokenInfo
from ayakit.serve.schemas import (
    ChatChoice, ChatRequest, ChatResponse, CompletionChoice, CompletionRequest, CompletionResponse, ErrorResponse,
    Health, Message, ModelCard, ModelList, Usage,
)

# A cheap cap before tokenising: no tokenizer ayakit serves has tokens this long (SentencePiece pieces are at most
# 16 characters by default), so a prompt with more characters than this times the token limit is over it for sure.
MAX_CHARS_PER_TOKEN = 64
log = logging.getLogger("ayakit.serve")


@dataclass
class ServeLimits:
    """What one request may ask for; anything beyond is a 4xx in the OpenAI error shape."""

    max_batch: int = 16
    max_wait_ms: float = 5.0
    max_prompt_tokens: int | None = None  # None: the model's own limit; above a position table: refused at start
    max_tokens: int = 512  # cap on max_tokens per request
    default_max_tokens: int = 256  # chat requests that do not say
    max_body_bytes: int = 1_000_000
    # None: the engine's own (hf: continuous; ctranslate2: asynchronous); "static": a batch runs to its end before
    # the next one starts
    batching: str | None = None


class APIError(Exception):
    """A request the server refuses, answered in the OpenAI error shape."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type_


def error_response(status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                   code: str | None = None) -> JSONResponse:
    """An OpenAI-shaped error: {"error": {"message", "type", "param", "code"}}."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


@cache
def chat_format() -> dict[str, Any]:
    """The chat-to-prompt rendering rules (a data file)."""
    text = resources.files("ayakit.serve").joinpath("chat_format.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def render_chat(messages: list[Message], tokenizer: Any) -> str:
    """One prompt from chat messages: the tokenizer's chat template if it has one, else chat_format.yaml."""
    if messages[-1].role != "user":
        raise APIError(400, "the last message must be from the user", param="messages")
    if getattr(tokenizer, "chat_template", None):
        turns = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in messages]
        text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        bos = tokenizer.bos_token
        return text[len(bos):] if bos and text.startswith(bos) else text  # encode_source adds bos itself
    fmt = chat_format()
    system = "".join(fmt["system"].format(content=m.text()) for m in messages if m.role in ("system", "developer"))
    turns = [m for m in messages if m.role in ("user", "assistant")]
    history = "".join(fmt["history"][m.role].format(content=m.text()) for m in turns[:-1])
    return system + history + fmt["last_user"].format(content=turns[-1].text())


class BodyLimit:
    """ASGI middleware: a request body over the limit is answered 413, declared (content-length) or streamed."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks, size = [], 0
        while True:  # read the body here (at most max_bytes), so an oversized stream never reaches the app
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _too_large(self, scope: dict, receive: Any, send: Any) -> None:
        response = error_response(413, f"request body is over {self.max_bytes} bytes", code="request_too_large")
        await response(scope, receive, send)


class ServerErrors:
    """ASGI middleware: an unexpected error becomes a 500 without internal text, and the connection stays usable.

    The traceback goes to the server log under a reference the client sees.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:  # noqa: BLE001 - answered, logged, never re-raised (that would reset the connection)
            ref = uuid.uuid4().hex[:12]
            log.exception("request %s %s failed (reference %s)", scope.get("method"), scope.get("path"), ref)
            if not started:
                await error_response(500, f"internal server error (reference {ref}; details are in the server log)",
                                     "server_error")(scope, receive, send)


def _replay(messages: list[dict], receive: Any) -> Any:
    """A receive callable that hands out `messages` first, then whatever the client sends next (disconnect)."""
    pending = list(messages)

    async def replay() -> dict:
        return pending.pop(0) if pending else await receive()

    return replay


def _now() -> int:
    return int(time.time())


def _token_logprob(info: TokenInfo, top: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"token": info.text, "logprob": info.logprob, "bytes": list(info.text.encode("utf-8"))}
    if top:
        entry["top_logprobs"] = [{"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))} for t, lp in info.top]
    return entry


def _completion_logprobs(tokens: list[TokenInfo], offset: int, prompt: list[TokenInfo] | None = None
                         ) -> dict[str, Any]:
    """Legacy completions logprobs: tokens, token_logprobs, top_logprobs, text_offset (characters into the text)."""
    out: dict[str, Any] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for info, shift in [(t, 0) for t in (prompt or [])] + [(t, offset) for t in tokens]:
        out["tokens"].append(info.text)
        out["token_logprobs"].append(info.logprob)  # None for the first prompt token
        out["top_logprobs"].append({t: lp for t, lp in info.top} if info.logprob is not None else None)
        out["text_offset"].append(info.offset + shift)
    return out


def create_app(engine: ServingEngine, limits: ServeLimits | None = None, api_key: str | None = None) -> FastAPI:
    """The FastAPI app serving one model with dynamic batching; with api_key, /v1/* needs `Bearer <api_key>`.

    The engine (HF or CTranslate2) brings its own scheduler (`engine.batcher`); everything else here is the same.
    """
    limits = limits or ServeLimits()
    batcher = engine.batcher(max_batch=limits.max_batch, max_wait_ms=limits.max_wait_ms, mode=limits.batching)
    max_prompt = prompt_limit(engine, limits.max_prompt_tokens)
    max_chars = max_prompt * MAX_CHARS_PER_TOKEN
    tokenize_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ayakit-tokenize")
    model_name = engine.info.name
    errors = {status: {"model": ErrorResponse} for status in (400, 404, 413)}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()
        tokenize_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="ayakit serve", version="1", lifespan=lifespan,
                  description=f"OpenAI-compatible API serving {model_name} ({engine.info.arch}).")
    app.state.batcher = batcher
    app.state.engine = engine

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.type, exc.param, exc.code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        msg = first.get("msg", "invalid request")
        if param == "n":
            msg = "n > 1 is not supported: send n=1 and repeat the request (with different seeds) for more samples"
        return error_response(400, f"{param + ': ' if param else ''}{msg}", param=param, code=first.get("type"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), "invalid_request_error" if exc.status_code < 500
                              else "server_error")

    def sampling(req: ChatRequest | CompletionRequest, max_tokens: int, logprobs: int | None) -> SamplingParams:
        if max_tokens > limits.max_tokens:
            raise APIError(400, f"max_tokens is {max_tokens}; this server allows at most {limits.max_tokens}",
                           param="max_tokens", code="max_tokens_exceeded")
        return SamplingParams(max_tokens=max_tokens, temperature=1.0 if req.temperature is None else req.temperature,
                              top_p=1.0 if req.top_p is None else req.top_p, seed=req.seed, stop=req.stop_list(),
                              logprobs=logprobs)

    def check_model(requested: str | None) -> None:
        if requested and requested != model_name:
            raise APIError(404, f"model {requested!r} is not served here; this server serves {model_name!r}",
                           param="model", code="model_not_found")

    def check_chars(n_chars: int, param: str) -> None:
        if n_chars > max_chars:  # over the token limit for sure: refused before any tokenising
            raise APIError(400, f"the prompt is {n_chars} characters; this server accepts at most {max_prompt} "
                           f"tokens (at most {max_chars} characters)", param=param, code="context_length_exceeded")

    async def encode(prompt: str | list[Message], param: str, max_tokens: int) -> list[int]:
        """Render (chat) and tokenise off the event loop, then check the limits."""
        def work() -> list[int]:
            text = render_chat(prompt, engine.tokenizer) if isinstance(prompt, list) else prompt
            return engine.encode_prompt(text, 1 << 30)  # untruncated, so its length is the prompt's true length

        ids = await asyncio.get_running_loop().run_in_executor(tokenize_pool, work)
        n = len(ids)
        if n > max_prompt:
            raise APIError(400, f"the prompt is {n} tokens; this server accepts at most {max_prompt}",
                           param=param, code="context_length_exceeded")
        total = engine.info.max_total_tokens
        if total is not None and n + max_tokens > total:
            raise APIError(400, f"the prompt ({n} tokens) and max_tokens ({max_tokens}) exceed the model's "
                           f"{total} positions", param="max_tokens", code="context_length_exceeded")
        if not ids:
            raise APIError(400, "the prompt is empty", param=param)
        return ids

    async def collect(ids: list[int], params: SamplingParams) -> Completion:
        async for event in batcher.submit(ids, params, stream=False):
            if isinstance(event, Completion):
                return event
        raise RuntimeError("generation ended without a result")

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        """Liveness and batching counters."""
        return Health(status="ok", model=model_name, queued=batcher.queued, requests=batcher.stats.requests,
                      batches=batcher.stats.batches, max_batch_seen=batcher.stats.max_batch_seen,
                      running=batcher.stats.running, batching=batcher.mode)

    @app.get("/v1/models", response_model=ModelList)
    async def models() -> ModelList:
        """The one model this server serves."""
        return ModelList(data=[ModelCard(id=model_name, created=_now(), arch=engine.info.arch,
                                         max_prompt_tokens=max_prompt, max_tokens=limits.max_tokens,
                                         trained_prompt_tokens=engine.info.trained_prompt_tokens)])

    @app.post("/v1/chat/completions", response_model=ChatResponse, responses=errors)
    async def chat(req: ChatRequest) -> Any:
        """Chat completion; with stream=true, server-sent events ending in `data: [DONE]`."""
        check_model(req.model)
        max_tokens = req.max_completion_tokens or req.max_tokens or min(limits.default_max_tokens, limits.max_tokens)
        top = req.top_logprobs or 0
        params = sampling(req, max_tokens, top if req.logprobs else None)
        check_chars(sum(len(m.text()) for m in req.messages), "messages")
        ids = await encode(req.messages, "messages", max_tokens)
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", _now()
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return _sse(_chat_stream(batcher.submit(ids, params), rid, created, model_name, req.logprobs or False,
                                     include_usage))
        result = await collect(ids, params)
        logprobs = {"content": [_token_logprob(t, top > 0) for t in result.tokens]} if req.logprobs else None
        return ChatResponse(id=rid, created=created, model=model_name, usage=_usage(result), choices=[ChatChoice(
            index=0, message={"role": "assistant", "content": result.text}, finish_reason=result.finish_reason,
            logprobs=logprobs)])

    @app.post("/v1/completions", response_model=CompletionResponse, responses=errors)
    async def completions(req: CompletionRequest) -> Any:
        """Text completion of one prompt; `echo` with `logprobs` scores the prompt (causal models)."""
        check_model(req.model)
        prompt = req.prompt_text()
        max_tokens = 16 if req.max_tokens is None else req.max_tokens
        params = sampling(req, max(max_tokens, 1), req.logprobs)
        check_chars(len(prompt), "prompt")
        ids = await encode(prompt, "prompt", max_tokens)
        rid, created = f"cmpl-{uuid.uuid4().hex}", _now()
        prompt_infos = None
        if req.echo and req.logprobs is not None:
            if not engine.impl.ECHO:
                raise APIError(400, "echo with logprobs scores the prompt, which needs a causal model; this model is "
                               f"{engine.arch}", param="echo")
            prompt_infos = await _score(batcher, engine, prompt, req.logprobs)
        if req.stream:
            if max_tokens == 0:
                raise APIError(400, "stream needs max_tokens >= 1", param="max_tokens")
            return _sse(_completion_stream(batcher.submit(ids, params), rid, created, model_name,
                                           prompt if req.echo else ""))
        if max_tokens == 0:
            result = Completion("", "length", len(ids), 0, [])
        else:
            result = await collect(ids, params)
        text = (prompt if req.echo else "") + result.text
        logprobs = None
        if req.logprobs is not None:
            logprobs = _completion_logprobs(result.tokens, len(prompt) if req.echo else 0, prompt_infos)
        return CompletionResponse(id=rid, created=created, model=model_name, usage=_usage(result), choices=[
            CompletionChoice(index=0, text=text, finish_reason=result.finish_reason, logprobs=logprobs)])

    if api_key:
        @app.middleware("http")
        async def _auth(request: Request, call_next: Any) -> Any:
            if request.url.path.startswith("/v1/") and \
                    not secrets.compare_digest(request.headers.get("authorization", ""), f"Bearer {api_key}"):
                return error_response(401, "missing or wrong API key (send Authorization: Bearer <key>)",
                                      code="invalid_api_key")
            return await call_next(request)

    app.add_middleware(ServerErrors)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    return app


def prompt_limit(engine: ServingEngine, requested: int | None) -> int:
    """The longest prompt served: the operator's setting, else the model's default; never silently lowered.

    A setting over the model's position table is refused; models with relative positions (T5) have no hard limit.
    """
    hard = engine.info.hard_prompt_tokens
    if requested is None:
        return engine.info.max_prompt_tokens
    if hard is not None and requested > hard:
        raise ValueError(f"--max-prompt-tokens {requested} is more than {engine.info.name} has positions ({hard}); "
                         f"use at most {hard}")
    return requested


async def _score(batcher: Any, engine: ServingEngine, prompt: str, top: int) -> list[TokenInfo]:
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(batcher.pool, engine.score, prompt, top)


def _usage(result: Completion) -> Usage:
    return Usage(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                 total_tokens=result.prompt_tokens + result.completion_tokens)


def _sse(events: AsyncIterator[dict]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        try:
            async for event in events:
                yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
        except Exception:  # noqa: BLE001 - the status line is already sent: report the error in the stream
            ref = uuid.uuid4().hex[:12]
            log.exception("a streamed generation failed (reference %s)", ref)
            message = f"generation failed (reference {ref}; details are in the server log)"
            yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error'}})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _chat_stream(events: AsyncIterator[Delta | Completion], rid: str, created: int, model: str,
                       logprobs: bool, include_usage: bool) -> AsyncIterator[dict]:
    def chunk(delta: dict, finish: str | None = None, lp: list | None = None) -> dict:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        if logprobs:
            choice["logprobs"] = {"content": lp or []}
        return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [choice]}

    yield chunk({"role": "assistant", "content": ""})
    async for event in events:
        if isinstance(event, Delta):
            if event.text or (logprobs and event.tokens):
                yield chunk({"content": event.text}, lp=[_token_logprob(t, bool(t.top)) for t in event.tokens])
        else:
            yield chunk({}, finish=event.finish_reason)
            if include_usage:
                yield {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [], "usage": _usage(event).model_dump()}


async def _completion_stream(events: AsyncIterator[Delta | Completion], rid: str, created: int, model: str,
                             echo: str) -> AsyncIterator[dict]:
    def chunk(text: str, finish: str | None = None) -> dict:
        return {"id": rid, "object": "text_completion", "created": created, "model": model,
                "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}]}

    if echo:
        yield chunk(echo)
    async for event in events:
        if isinstance(event, Delta):
            if event.text:
                yield chunk(event.text)
        else:
            yield chunk("", finish=event.finish_reason)
