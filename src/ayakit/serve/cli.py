"""`ayakit serve` (the OpenAI-compatible server) and `ayakit chat` (a streaming terminal chat)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import typer
from rich.console import Console


def serve_cmd(
    model_dir: Path = typer.Argument(..., help="An HF model directory (save_pretrained + tokenizer), e.g. runs/demo/model."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, help="TCP port."),
    max_batch: int = typer.Option(16, min=1, help="Most requests decoded together in one batch."),
    max_wait_ms: float = typer.Option(5.0, min=0, help="How long the first request of an idle server waits for "
                                                       "others before decoding starts."),
    batching: str = typer.Option("continuous", help="continuous: a new request joins the running batch at the "
                                                   "next decoding step; static: it waits until the whole running "
                                                   "batch is finished (the old behaviour, for comparison)."),
    max_prompt_tokens: int = typer.Option(None, min=1, help="Longest prompt accepted, in tokens. Default: the "
                                          "model's position table, or 1024 (or the training length, if longer) "
                                          "for models with relative positions such as T5, which have no hard "
                                          "limit. A value over a position table is refused, never lowered."),
    max_tokens: int = typer.Option(512, min=1, help="Largest max_tokens a request may ask for."),
    max_body_bytes: int = typer.Option(1_000_000, min=1, help="Largest request body, in bytes (413 above)."),
    name: str = typer.Option(None, help="Model id shown by /v1/models and in responses (default: the folder name)."),
    device: str = typer.Option(None, help="torch device (default: cuda when present, else cpu)."),
    dtype: str = typer.Option(None, help="Weights dtype, e.g. bfloat16 (default: as saved)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    api_key: str = typer.Option(None, envvar="AYAKIT_API_KEY", help="Require `Authorization: Bearer <key>` on "
                                                                    "/v1/* (default: $AYAKIT_API_KEY; none: open)."),
    engine: str = typer.Option("hf", "--engine", help="hf (the only engine the server runs today). ctranslate2 "
                                                      "is not supported by the server yet (it needs CTranslate2's "
                                                      "asynchronous batching wired to streaming and per-request "
                                                      "errors); it runs eval, translate, judge and safety."),
) -> None:
    """Serve a model over an OpenAI-compatible HTTP API, batching concurrent requests continuously.

    Each request is decoded in its own row: a new request joins the running batch at the next step, a finished one
    leaves it at once, and a request that fails (its parameters, its client) fails alone with its own error.
    """
    import uvicorn

    from ayakit.serve.app import ServeLimits, create_app, prompt_limit
    from ayakit.serve.batching import MODES
    from ayakit.serve.engine import Engine

    console = Console(stderr=True)
    if engine != "hf":
        from ayakit.models import ENGINES

        why = "is not supported by `ayakit serve` yet" if engine in ENGINES else "is not an engine"
        raise typer.BadParameter(f"{engine!r} {why}: the server runs the hf engine (continuous batching); "
                                 "ctranslate2 runs `ayakit eval`, `translate`, `judge` and `safety`",
                                 param_hint="--engine")
    if batching not in MODES:
        raise typer.BadParameter(f"{batching!r}: use one of {', '.join(MODES)}", param_hint="--batching")
    engine = Engine(model_dir, device=device, dtype=dtype, name=name)
    try:
        limit = prompt_limit(engine, max_prompt_tokens)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--max-prompt-tokens") from None
    limits = ServeLimits(max_batch=max_batch, max_wait_ms=max_wait_ms, max_prompt_tokens=max_prompt_tokens,
                         max_tokens=max_tokens, max_body_bytes=max_body_bytes, batching=batching)
    trained = engine.info.trained_prompt_tokens
    console.print(f"serving [bold]{engine.info.name}[/] ({engine.arch}) on http://{host}:{port}/v1: prompts up "
                  f"to {limit} tokens, {batching} batching of up to {max_batch} requests")
    if trained is not None and limit > trained:
        console.print(f"[yellow]note:[/] the model was trained on prompts of at most {trained} tokens; longer "
                      "prompts are served, with quality the model was not trained for")
    uvicorn.run(create_app(engine, limits, api_key=api_key), host=host, port=port, log_level=log_level)


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


def _local_streamer(model_dir: Path, device: str | None,
                    max_prompt_tokens: int | None) -> Callable[[list[dict], int, float], Iterator[str]]:
    import queue
    import threading

    from ayakit.serve.app import render_chat
    from ayakit.serve.engine import Engine, GenRequest, SamplingParams
    from ayakit.serve.schemas import Message

    engine = Engine(model_dir, device=device)
    limit = max_prompt_tokens or engine.info.max_prompt_tokens

    def stream(messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        prompt = render_chat([Message(**m) for m in messages], engine.tokenizer)
        ids = engine.encode_prompt(prompt, 1 << 30)
        if len(ids) > limit:  # never truncated silently
            raise ContextTooLong(f"the prompt is {len(ids)} tokens; at most {limit}")
        pieces: queue.Queue = queue.Queue()
        req = GenRequest(ids, SamplingParams(max_tokens=max_tokens, temperature=temperature),
                         on_delta=lambda d: pieces.put(d.text))
        worker = threading.Thread(target=lambda: (engine.run([req]), pieces.put(None)), daemon=True)
        worker.start()
        try:
            while (piece := pieces.get()) is not None:
                if piece:
                    yield piece
        finally:
            req.cancelled.set()
            worker.join()

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
) -> None:
    """Chat with a model in the terminal; answers stream token by token. /reset clears the history, /exit quits.

    When the conversation outgrows the model's prompt limit, the oldest exchanges are dropped (and the terminal
    says so); a single message over the limit is refused with the limit.
    """
    console = Console()
    if model.startswith(("http://", "https://")):
        def stream(msgs: list[dict], n: int, t: float) -> Iterator[str]:
            return stream_url(model, msgs, n, t)
    else:
        stream = _local_streamer(Path(model), device, max_prompt_tokens)
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
