"""Scheduling requests onto the engine: one decoding thread, fed from a queue, in one of two modes.

- continuous (default): a request joins the running batch at the next decoding step; finished rows leave at once.
- static: requests that arrive together form a batch that runs until its last row is finished; later requests
  wait for it (ayakit's scheduling before continuous batching; kept for comparison: `--batching static`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ayakit.serve.engine import Completion, Delta, Engine, GenRequest, SamplingParams

MODES = ("continuous", "static")
log = logging.getLogger("ayakit.serve")


@dataclass
class BatchStats:
    """What the batcher has done so far (served on /health)."""

    batches: int = 0  # admissions: groups of requests prefilled together
    requests: int = 0
    max_batch_seen: int = 0  # most rows decoded together
    running: int = 0  # rows in the batch right now


async def request_events(enqueue: Callable[[GenRequest], None], prompt_ids: list[int], params: SamplingParams,
                         stream: bool = True) -> AsyncIterator[Delta | Completion]:
    """Hand one request to a decoding thread through `enqueue`; yield its Deltas (when streaming), then its Completion.

    A row's error is raised here; a client that goes away marks its request cancelled.
    """
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def deliver(event: object) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(events.put_nowait, event)

    req = GenRequest(prompt_ids, params, on_delta=deliver if stream else None, on_finish=deliver)
    enqueue(req)
    try:
        while True:
            event = await events.get()
            if isinstance(event, BaseException):
                raise event
            yield event
            if isinstance(event, Completion):
                return
    finally:
        req.cancelled.set()  # a client that went away frees its row at the next step


class Batcher:
    """Feeds requests to one decoding thread: up to `max_batch` rows decode together, each stopping on its own."""

    def __init__(self, engine: Engine, max_batch: int = 16, max_wait_ms: float = 5.0,
                 mode: str = "continuous") -> None:
        if mode not in MODES:
            raise ValueError(f"batching mode {mode!r}: use one of {', '.join(MODES)}")
        self.engine = engine
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.mode = mode
        self.stats = BatchStats()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ayakit-score")  # prompt scoring
        self._pending: queue.Queue[GenRequest | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def queued(self) -> int:
        """Requests waiting to join the batch."""
        return self._pending.qsize()

    async def start(self) -> None:
        """Start the decoding thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ayakit-decode", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop the decoding thread (rows still running are cancelled) and the scoring thread."""
        self._stop.set()
        self._pending.put(None)
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 30)
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def submit(self, prompt_ids: list[int], params: SamplingParams,
                     stream: bool = True) -> AsyncIterator[Delta | Completion]:
        """Queue one request; yield its Deltas as they are generated (when streaming), then its Completion."""
        if self._thread is None:
            raise RuntimeError("Batcher.start() was not awaited")
        async for event in request_events(self._pending.put, prompt_ids, params, stream):
            yield event

    # --- the decoding thread -----------------------------------------------------------------------------------

    def _take(self, limit: int, wait: bool) -> list[GenRequest]:
        """Up to `limit` queued requests; with `wait`, block for the first one and gather others for max_wait."""
        out: list[GenRequest] = []
        deadline = None
        while len(out) < limit and not self._stop.is_set():
            try:
                if wait and not out:
                    item = self._pending.get(timeout=0.5)
                    deadline = time.monotonic() + self.max_wait
                elif wait and deadline is not None and deadline > time.monotonic():
                    item = self._pending.get(timeout=deadline - time.monotonic())
                else:
                    item = self._pending.get_nowait()
            except queue.Empty:
                if wait and not out:
                    continue
                break
            if item is not None and not item.cancelled.is_set():
                out.append(item)
        return out

    def _loop(self) -> None:
        from ayakit.serve.decoding import RunningBatch

        batch = RunningBatch(self.engine)
        while not self._stop.is_set():
            try:
                idle = not batch
                if idle or (self.mode == "continuous" and batch.can_join()):
                    new = self._take(self.max_batch - len(batch), wait=idle)
                    if new:
                        self.stats.batches += 1
                        self.stats.requests += len(new)
                        batch.admit(new)
                if batch:
                    self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(batch))
                    batch.step()
                self.stats.running = len(batch)
            except Exception:  # noqa: BLE001 - the batch already failed its rows; the thread must live on
                log.exception("the decoding loop failed")
                batch = RunningBatch(self.engine)
        for row in batch.rows:  # shutting down
            row.fail(RuntimeError("the server is shutting down"))
