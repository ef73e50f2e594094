"""The OpenAI-compatible engine: any endpoint with /v1/completions (and /v1/chat/completions), for remote models."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from ayakit.models.backend import BackendError, GenerationParams, LogLik, apply_stop


class OpenAIBackend:
    """Any OpenAI-compatible endpoint: /v1/completions (and /v1/chat/completions for generation with chat=True).

    Log-likelihood needs a server that echoes prompt logprobs (`echo: true, logprobs: 1, max_tokens: 0`).
    Failures are retried with exponential backoff, then reported as one BackendError.
    """

    engine = "openai"

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
        self.name = self.model
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
