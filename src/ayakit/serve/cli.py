"""`ayakit serve` (the OpenAI-compatible server) and `ayakit chat` (a streaming terminal chat)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console


def serve_cmd(
    model_dir: Path = typer.Argument(..., help="An HF model directory (save_pretrained + tokenizer), e.g. runs/demo/model."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, help="TCP port."),
    max_batch: int = typer.Option(16, min=1, help="Most requests decoded together in one batch."),
    max_wait_ms: float = typer.Option(5.0, min=0, help="How long the first request of an idle server waits for "
                                                       "others before decoding starts."),
    batching: str = typer.Option(None, help="How requests share the model. hf: continuous (default; a new request "
                                            "joins the running batch at the next decoding step) or static (it waits "
                                            "until the whole running batch is finished). ctranslate2: asynchronous "
                                            "(default; waiting requests start at once as a new batch on a free "
                                            "worker, see --workers) or static (one batch at a time)."),
    max_prompt_tokens: int = typer.Option(None, min=1, help="Longest prompt accepted, in tokens. Default: the "
                                          "model's position table, or 1024 (or the training length, if longer) "
                                          "for models with relative positions such as T5, which have no hard "
                                          "limit. A value over a position table is refused, never lowered."),
    max_tokens: int = typer.Option(512, min=1, help="Largest max_tokens a request may ask for."),
    max_body_bytes: int = typer.Option(1_000_000, min=1, help="Largest request body, in bytes (413 above)."),
    name: str = typer.Option(None, help="Model id shown by /v1/models and in responses (default: the folder name)."),
    device: str = typer.Option(None, help="Device (default: cuda when present, else cpu): a torch device for hf; "
                                          "cpu, cuda or cuda:N for ctranslate2."),
    dtype: str = typer.Option(None, help="hf only: weights dtype, e.g. bfloat16 (default: as saved)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    api_key: str = typer.Option(None, envvar="AYAKIT_API_KEY", help="Require `Authorization: Bearer <key>` on "
                                                                    "/v1/* (default: $AYAKIT_API_KEY; none: open)."),
    engine: str = typer.Option("hf", "--engine", help="Who decodes. hf: transformers, continuous batching (a new "
                               "request joins the running batch at the next step). ctranslate2: CTranslate2 (the "
                               "model is converted once, cached in <model>/.ct2; float32 gives the hf engine's greedy "
                               "outputs), with its asynchronous batching: --workers batches decode at the same time, "
                               "and waiting requests start as a new batch as soon as a worker is free (a running "
                               "batch cannot take new rows). A seeded sampling request runs alone on a CTranslate2 "
                               "instance of its own (CTranslate2 seeds a worker only once), loaded for it; a request "
                               "for top logprobs decodes in a batch of its own."),
    compute_type: str = typer.Option(None, "--compute-type", help="ctranslate2 only: what the weights are stored "
                                     "and computed in: float32 (CPU default; the hf engine's greedy outputs) or int8 "
                                     "(faster, smaller, outputs close but not identical) on CPU; float16 (GPU "
                                     "default), int8_float16 or float32 on GPU."),
    workers: int = typer.Option(None, min=1, help="ctranslate2 only: batches decoded at the same time (CTranslate2's "
                                "inter_threads; default 2); a waiting request starts as soon as a worker is free "
                                "(a long one: a worker other than the one --short-tokens keeps)."),
    threads: int = typer.Option(None, min=1, help="ctranslate2 only: CPU threads per worker (default: the CPUs "
                                "divided by --workers)."),
    short_tokens: int = typer.Option(None, min=0, help="ctranslate2 only: with 2+ workers, one worker is kept for "
                                     "requests whose max_tokens is at most this (default 64), so short requests "
                                     "never wait behind a steady stream of long ones; 0 keeps none."),
) -> None:
    """Serve a model over an OpenAI-compatible HTTP API, batching concurrent requests.

    Each request is decoded in its own row: with the hf engine a new request joins the running batch at the next
    step; with ctranslate2 it starts as a new batch on a free worker. A finished row leaves at once, and a request
    that fails (its parameters, its client) fails alone with its own error.
    """
    import uvicorn

    from ayakit.serve.app import ServeLimits, create_app, prompt_limit

    console = Console(stderr=True)
    served = _serving_engine(model_dir, engine, batching, device, dtype, compute_type, workers, threads, name,
                             short_tokens)
    try:
        limit = prompt_limit(served, max_prompt_tokens)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--max-prompt-tokens") from None
    limits = ServeLimits(max_batch=max_batch, max_wait_ms=max_wait_ms, max_prompt_tokens=max_prompt_tokens,
                         max_tokens=max_tokens, max_body_bytes=max_body_bytes, batching=batching)
    app = create_app(served, limits, api_key=api_key)
    trained = served.info.trained_prompt_tokens
    how = f"{app.state.batcher.mode} batching of up to {max_batch} requests"
    if engine == "ctranslate2":
        batcher = app.state.batcher
        how = (f"ctranslate2 ({served.compute_type}, {served.device}), {how} per batch, {batcher.slots} batch(es) "
               f"at a time" + (f" (one kept for requests of at most {batcher.short_tokens} tokens)"
                               if batcher.reserved else ""))
    console.print(f"serving [bold]{served.info.name}[/] ({served.arch}) on http://{host}:{port}/v1: prompts up "
                  f"to {limit} tokens, {how}")
    if trained is not None and limit > trained:
        console.print(f"[yellow]note:[/] the model was trained on prompts of at most {trained} tokens; longer "
                      "prompts are served, with quality the model was not trained for")
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def _serving_engine(model_dir: Path, engine: str, batching: str | None, device: str | None, dtype: str | None,
                    compute_type: str | None, workers: int | None, threads: int | None, name: str | None,
                    short_tokens: int | None = None) -> Any:
    """The engine `ayakit serve` runs, its options checked first (a clear error naming the option)."""
    from ayakit.models import ENGINES, BackendError, check_engine

    if engine not in ENGINES:
        raise typer.BadParameter(f"{engine!r} is not an engine: use one of {', '.join(sorted(ENGINES))}",
                                 param_hint="--engine")
    if engine == "hf":
        from ayakit.serve.batching import MODES
        from ayakit.serve.engine import Engine

        for option, value in (("--compute-type", compute_type), ("--workers", workers), ("--threads", threads),
                              ("--short-tokens", short_tokens)):
            if value is not None:
                raise typer.BadParameter(f"{option} is a ctranslate2 option (add --engine ctranslate2)",
                                         param_hint=option)
        if batching is not None and batching not in MODES:
            raise typer.BadParameter(f"{batching!r} with the hf engine: use one of {', '.join(MODES)}",
                                     param_hint="--batching")
        return Engine(model_dir, device=device, dtype=dtype, name=name)
    from ayakit.serve.ct2_batching import MODES as CT2_MODES
    from ayakit.serve.ct2_engine import CT2Engine

    if dtype is not None:
        raise typer.BadParameter("--dtype is an hf option; ctranslate2 takes --compute-type", param_hint="--dtype")
    if batching is not None and batching not in CT2_MODES:
        raise typer.BadParameter(f"{batching!r} with the ctranslate2 engine: use one of {', '.join(CT2_MODES)} "
                                 "(CTranslate2 cannot add requests to a running batch)", param_hint="--batching")
    try:
        check_engine(engine, compute_type)
        return CT2Engine(model_dir, device=device, compute_type=compute_type, name=name, workers=workers or 2,
                         threads=threads, short_tokens=64 if short_tokens is None else short_tokens)
    except BackendError as exc:
        raise typer.BadParameter(str(exc), param_hint="--engine") from None


class ContextTooLong(RuntimeError):
    """The conversation is over the model's prompt limit (the server's `context_length_exceeded`)."""


def stream_url(url: str, messages: list[dict], max_tokens: int, temperature: float,
               timeout: float = 600.0, api_key: str | None = None) -> Iterator[str]:
    """Text pieces of a streamed chat completion from an OpenAI-compatible server."""
    import os

    import httpx

    key = api_key or os.environ.get("AYAKIT_API_KEY") or os.environ.get("OPENAI_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    base = url.rstrip("/")
    base = base if base.endswith("/v1") else base + "/v1"
    body = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature, "stream": True}
    try:
        yield from _stream_events(httpx.stream("POST", f"{base}/chat/completions", json=body, timeout=timeout,
                                               headers=headers), url)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"{url}: {exc}") from None


def _stream_events(request: object, url: str) -> Iterator[str]:
    with request as resp:  # type: ignore[attr-defined]
        if resp.status_code >= 400:
            resp.read()
            try:
                error = resp.json()["error"]
                message, code = str(error["message"]), error.get("code")
            except (ValueError, KeyError, TypeError):
                message, code = resp.text[:500], None
            if code == "context_length_exceeded":
                raise ContextTooLong(message)
            raise RuntimeError(f"{url} answered {resp.status_code}: {message}")
        for line in resp.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            event = json.loads(data)
            if "error" in event:
                raise RuntimeError(event["error"].get("message", "server error"))
            for choice in event.get("choices", []):
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece


def _local_streamer(model_dir: Path, device: str | None, max_prompt_tokens: int | None, engine_name: str = "hf",
                    compute_type: str | None = None) -> Callable[[list[dict], int, float], Iterator[str]]:
    import queue
    import threading

    from ayakit.serve.app import render_chat
    from ayakit.serve.engine import GenRequest, SamplingParams
    from ayakit.serve.schemas import Message

    engine = _serving_engine(model_dir, engine_name, None, device, None, compute_type, None, None, None)
    limit = max_prompt_tokens or engine.info.max_prompt_tokens

    def stream(messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        prompt = render_chat([Message(**m) for m in messages], engine.tokenizer)
        ids = engine.encode_prompt(prompt, 1 << 30)
        if len(ids) > limit:  # never truncated silently
            raise ContextTooLong(f"the prompt is {len(ids)} tokens; at most {limit}")
        pieces: queue.Queue = queue.Queue()
        req = GenRequest(ids, SamplingParams(max_tokens=max_tokens, temperature=temperature),
                         on_delta=lambda d: pieces.put(d.text))
        failed: list[BaseException] = []

        def work() -> None:
            try:
                engine.run([req])
            except Exception as exc:  # noqa: BLE001 - reported to the terminal below, the chat goes on
                failed.append(exc)
            finally:
                pieces.put(None)  # always: the reader below must never wait forever

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        try:
            while (piece := pieces.get()) is not None:
                if piece:
                    yield piece
        finally:
            req.cancelled.set()
            worker.join()
        if failed:
            raise RuntimeError(f"generation failed: {type(failed[0]).__name__}: {failed[0]}")

    return stream


def chat_cmd(
    model: str = typer.Argument(..., help="A model directory, or the URL of an OpenAI-compatible server "
                                          "(e.g. http://127.0.0.1:8000)."),
    system: str = typer.Option(None, help="A system message sent before the conversation."),
    max_tokens: int = typer.Option(256, min=1, help="Most tokens per answer."),
    temperature: float = typer.Option(0.7, min=0, help="Sampling temperature (0: greedy)."),
    device: str = typer.Option(None, help="torch device for a local model (default: cuda when present, else cpu)."),
    max_prompt_tokens: int = typer.Option(None, min=1, help="Longest prompt for a local model, in tokens (default: "
                                                            "as `ayakit serve`)."),
    engine: str = typer.Option("hf", "--engine", help="Who decodes a local model: hf or ctranslate2 (as `ayakit "
                                                      "serve --engine`)."),
    compute_type: str = typer.Option(None, "--compute-type", help="ctranslate2 only: float32 or int8 on CPU "
                                     "(as `ayakit serve --compute-type`)."),
) -> None:
    """Chat with a model in the terminal; answers stream token by token. /reset clears the history, /exit quits.

    When the conversation outgrows the model's prompt limit, the oldest exchanges are dropped (and the terminal
    says so); a single message over the limit is refused with the limit.
    """
    console = Console()
    if model.startswith(("http://", "https://")):
        if engine != "hf" or compute_type is not None:
            raise typer.BadParameter("a server decodes with its own engine; --engine and --compute-type are for a "
                                     "local model directory", param_hint="--engine")

        def stream(msgs: list[dict], n: int, t: float) -> Iterator[str]:
            return stream_url(model, msgs, n, t)
    else:
        stream = _local_streamer(Path(model), device, max_prompt_tokens, engine, compute_type)
    history: list[dict] = [{"role": "system", "content": system}] if system else []
    console.print("[dim]/reset clears the conversation, /exit (or Ctrl-D) quits[/]")
    while True:
        try:
            line = console.input("[bold green]you>[/] ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if line.strip() in ("/exit", "/quit"):
            return
        if line.strip() == "/reset":
            history = history[:1] if system else []
            continue
        if not line.strip():
            continue
        history.append({"role": "user", "content": line})
        answer = _answer(console, stream, history, max_tokens, temperature)
        if answer is None:
            history.pop()
            continue
        history.append({"role": "assistant", "content": answer})


def _answer(console: Console, stream: Callable[[list[dict], int, float], Iterator[str]], history: list[dict],
            max_tokens: int, temperature: float) -> str | None:
    """Stream one answer to the last user turn, dropping the oldest exchanges from `history` while it is too long.

    None when there is no answer (an error, or the last message alone is over the limit).
    """
    answer: list[str] = []
    dropped = 0
    console.print("[bold blue]model>[/] ", end="")
    while True:
        try:
            for piece in stream(history, max_tokens, temperature):
                answer.append(piece)
                console.out(piece, end="", highlight=False)
            break
        except ContextTooLong as exc:
            first = 1 if history[0]["role"] == "system" else 0
            if len(history) - first <= 1:
                console.print(f"\n[bold red]error:[/] this message is too long for the model ({exc}); /reset "
                              "clears the conversation")
                return None
            end = first + 1  # drop the oldest exchange: a user turn and the assistant's answer to it
            while end < len(history) - 1 and history[end]["role"] == "assistant":
                end += 1
            del history[first:end]
            dropped += 1
        except KeyboardInterrupt:
            console.print("[dim] (stopped)[/]", end="")
            break
        except (RuntimeError, OSError) as exc:
            console.print(f"\n[bold red]error:[/] {exc}")
            return None
    if dropped:
        what = "the oldest exchange" if dropped == 1 else f"the {dropped} oldest exchanges"
        console.print(f"\n[dim](dropped {what} to fit the model's prompt limit; /reset clears the "
                      "conversation)[/]", end="")
    console.print()
    return "".join(answer)
