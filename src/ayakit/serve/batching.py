"""Dynamic batching: requests that arrive together share one `generate` call (an asyncio queue and one worker)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ayakit.serve.engine import Completion, Delta, Engine, GenRequest, SamplingParams


@dataclass
class BatchStats:
    """What the batcher has done so far (served on /health)."""

    batches: int = 0
    requests: int = 0
    max_batch_seen: int = 0


class Batcher:
    """Collects requests for up to `max_wait_ms` (or until `max_batch`) and runs them as one batch on one thread."""

    def __init__(self, engine: Engine, max_batch: int = 16, max_wait_ms: float = 5.0) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.stats = BatchStats()
        self._queue: asyncio.Queue[tuple[GenRequest, asyncio.Queue]] | None = None
        self._worker: asyncio.Task | None = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ayakit-generate")

    @property
    def queued(self) -> int:
        """Requests waiting for a batch."""
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        """Start the worker on the running loop."""
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="ayakit-batcher")

    async def stop(self) -> None:
        """Stop the worker and the generation thread."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def submit(self, prompt_ids: list[int], params: SamplingParams,
                     stream: bool = True) -> AsyncIterator[Delta | Completion]:
        """Queue one request; yield its Deltas as they are generated (when streaming), then its Completion."""
        if self._queue is None:
            raise RuntimeError("Batcher.start() was not awaited")
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        on_delta = (lambda d: loop.call_soon_threadsafe(events.put_nowait, d)) if stream else None
        req = GenRequest(prompt_ids, params, on_delta=on_delta)
        await self._queue.put((req, events))
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

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            batch = [(r, q) for r, q in batch if not r.cancelled.is_set()]
            if not batch:
                continue
            self.stats.batches += 1
            self.stats.requests += len(batch)
            self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(batch))
            try:
                results = await loop.run_in_executor(self.pool, self.engine.run, [r for r, _ in batch])
            except Exception as exc:  # the whole batch failed: every waiting request gets the error
                for _, q in batch:
                    q.put_nowait(exc)
                continue
            for (_, q), result in zip(batch, results):
                q.put_nowait(result)
