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
    max_batch: int = typer.Option(16, min=1, help="Most requests generated together in one batch."),
    max_wait_ms: float = typer.Option(5.0, min=0, help="How long the first request of a batch waits for others."),
    max_prompt_tokens: int = typer.Option(None, min=1, help="Longest prompt accepted (default: the model's limit)."),
    max_tokens: int = typer.Option(512, min=1, help="Largest max_tokens a request may ask for."),
    max_body_bytes: int = typer.Option(1_000_000, min=1, help="Largest request body, in bytes (413 above)."),
    name: str = typer.Option(None, help="Model id shown by /v1/models and in responses (default: the folder name)."),
    device: str = typer.Option(None, help="torch device (default: cuda when present, else cpu)."),
    dtype: str = typer.Option(None, help="Weights dtype, e.g. bfloat16 (default: as saved)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    api_key: str = typer.Option(None, envvar="AYAKIT_API_KEY", help="Require `Authorization: Bearer <key>` on "
                                                                    "/v1/* (default: $AYAKIT_API_KEY; none: open)."),
) -> None:
    """Serve a model over an OpenAI-compatible HTTP API, batching concurrent requests dynamically."""
    import uvicorn

    from ayakit.serve.app import ServeLimits, create_app
    from ayakit.serve.engine import Engine

    engine = Engine(model_dir, device=device, dtype=dtype, name=name)
    limits = ServeLimits(max_batch=max_batch, max_wait_ms=max_wait_ms, max_prompt_tokens=max_prompt_tokens,
                         max_tokens=max_tokens, max_body_bytes=max_body_bytes)
    Console(stderr=True).print(f"serving [bold]{engine.info.name}[/] ({engine.arch}) on http://{host}:{port}/v1")
    uvicorn.run(create_app(engine, limits, api_key=api_key), host=host, port=port, log_level=log_level)


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
            raise RuntimeError(f"{url} answered {resp.status_code}: {resp.text[:500]}")
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


def _local_streamer(model_dir: Path, device: str | None) -> Callable[[list[dict], int, float], Iterator[str]]:
    import queue
    import threading

    from ayakit.serve.app import render_chat
    from ayakit.serve.engine import Engine, GenRequest, SamplingParams
    from ayakit.serve.schemas import Message

    engine = Engine(model_dir, device=device)

    def stream(messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        prompt = render_chat([Message(**m) for m in messages], engine.tokenizer)
        pieces: queue.Queue = queue.Queue()
        req = GenRequest(engine.encode_prompt(prompt), SamplingParams(max_tokens=max_tokens, temperature=temperature),
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
) -> None:
    """Chat with a model in the terminal; answers stream token by token. /reset clears the history, /exit quits."""
    console = Console()
    if model.startswith(("http://", "https://")):
        def stream(msgs: list[dict], n: int, t: float) -> Iterator[str]:
            return stream_url(model, msgs, n, t)
    else:
        stream = _local_streamer(Path(model), device)
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
        console.print("[bold blue]model>[/] ", end="")
        answer = []
        try:
            for piece in stream(history, max_tokens, temperature):
                answer.append(piece)
                console.out(piece, end="", highlight=False)
        except KeyboardInterrupt:
            console.print("[dim] (stopped)[/]", end="")
        except (RuntimeError, OSError) as exc:
            console.print(f"\n[bold red]error:[/] {exc}")
            history.pop()
            continue
        console.print()
        history.append({"role": "assistant", "content": "".join(answer)})
