"""Scheduling requests onto CTranslate2: waiting requests start at once as a new asynchronous batch on a free worker.

CTranslate2 cannot add a row to a batch that is decoding, so continuous batching is not possible; instead the model
has `workers` worker threads (its inter_threads), each decoding one batch, and this scheduler:

- asynchronous (default): as soon as a worker is free, every waiting request that shares decoding options (greedy,
  or the same temperature / top-p) is submitted as one batch (`asynchronous=True`), so a short request that arrives
  while long ones decode starts on another worker instead of waiting for them. With two workers or more, one is kept
  for short requests (max_tokens <= `short_tokens`): long ones never take the last free worker, so a steady stream
  of long requests cannot make a short one wait for them. A row leaves its batch when it finishes (its callback
  tells CTranslate2 to stop decoding it).
- static: one batch at a time, which runs until its last row is finished (for comparison).

A seeded sampling request runs alone on an instance of its own (see ct2_engine.SEED_LOCK). When a batch fails, its
rows that have produced nothing yet are retried one by one, so a request that breaks the model fails alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ayakit.serve.batching import BatchStats, request_events
from ayakit.serve.ct2_engine import CT2Engine, decode_key
from ayakit.serve.decoding import RowState
from ayakit.serve.engine import Completion, Delta, GenRequest, SamplingParams

MODES = ("asynchronous", "static")
log = logging.getLogger("ayakit.serve")


@dataclass
class _Waiting:
    """A queued request: when it arrived, and whether it must run alone (its batch failed)."""

    req: GenRequest
    arrived: float
    alone: bool = False

    def key(self, short_tokens: int) -> tuple:
        """Requests with equal keys share a batch: the same decoding options, and both short or both long."""
        if self.alone:
            return ("alone", id(self))
        return (*decode_key(self.req), self.short(short_tokens))

    def short(self, short_tokens: int) -> bool:
        return self.req.params.max_tokens <= short_tokens


class CT2Batcher:
    """Feeds requests to CTranslate2's workers, up to `max_batch` rows per batch, one batch per free worker."""

    def __init__(self, engine: CT2Engine, max_batch: int = 16, max_wait_ms: float = 5.0,
                 mode: str | None = None, short_tokens: int = 64) -> None:
        mode = mode or "asynchronous"
        if mode not in MODES:
            raise ValueError(f"batching mode {mode!r} with the ctranslate2 engine: use one of {', '.join(MODES)} "
                             "(CTranslate2 cannot add requests to a running batch, so there is no continuous mode)")
        self.engine = engine
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.mode = mode
        self.slots = engine.workers if mode == "asynchronous" else 1
        self.short_tokens = short_tokens
        self.reserved = 1 if self.slots > 1 and short_tokens > 0 else 0  # workers only short requests may take
        self.stats = BatchStats()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ayakit-score")  # prompt scoring
        self._pending: deque[_Waiting] = deque()
        self._cond = threading.Condition()
        self._free = self.slots
        self._live: set[int] = set()  # ids of rows decoding now
        self._batches: set[threading.Thread] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def queued(self) -> int:
        """Requests waiting for a worker."""
        return len(self._pending)

    async def start(self) -> None:
        """Start the scheduling thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ayakit-ct2-schedule", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop scheduling; running rows and waiting requests fail with 'shutting down'."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        loop = asyncio.get_running_loop()
        if self._thread is not None:
            await loop.run_in_executor(None, self._thread.join, 30)
        for thread in list(self._batches):
            await loop.run_in_executor(None, thread.join, 30)
        with self._cond:
            waiting, self._pending = list(self._pending), deque()
        for item in waiting:
            RowState(item.req, self.engine.tokenizer, self.engine.eos_ids).fail(
                RuntimeError("the server is shutting down"))
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def submit(self, prompt_ids: list[int], params: SamplingParams,
                     stream: bool = True) -> AsyncIterator[Delta | Completion]:
        """Queue one request; yield its Deltas as they are generated (when streaming), then its Completion."""
        if self._thread is None:
            raise RuntimeError("CT2Batcher.start() was not awaited")
        async for event in request_events(self._enqueue, prompt_ids, params, stream):
            yield event

    def _enqueue(self, req: GenRequest) -> None:
        with self._cond:
            self._pending.append(_Waiting(req, time.monotonic()))
            self._cond.notify_all()

    # --- the scheduling thread ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                group = None
                while group is None:
                    if self._stop.is_set():
                        return
                    if any(item.req.cancelled.is_set() for item in self._pending):  # clients that went away
                        self._pending = deque(item for item in self._pending if not item.req.cancelled.is_set())
                    if not self._pending or self._free == 0:
                        self._cond.wait(0.5)
                        continue
                    gather = self._pending[0].arrived + self.max_wait - time.monotonic()
                    if gather > 0 and len(self._pending) < self.max_batch:
                        self._cond.wait(gather)  # let requests that arrive together share the batch
                        continue
                    group = self._take()
                    if group is None:  # only long requests wait, and the free worker is kept for short ones
                        self._cond.wait(0.5)
                        continue
                    self._free -= 1
            self._launch(group)

    def _take(self) -> list[_Waiting] | None:
        """The oldest waiting request that may start now and, up to max_batch, the others that can share its batch;
        None when none may start (long requests, and only kept workers free)."""
        long_ok = self._free > self.reserved
        first = next((item for item in self._pending if long_ok or item.short(self.short_tokens)), None)
        if first is None:
            return None
        key = first.key(self.short_tokens)
        group, rest = [], deque()
        for item in self._pending:
            if len(group) < self.max_batch and item.key(self.short_tokens) == key:
                group.append(item)
            else:
                rest.append(item)
        self._pending = rest
        return group

    def _launch(self, group: list[_Waiting]) -> None:
        rows = [RowState(item.req, self.engine.tokenizer, self.engine.eos_ids) for item in group]
        self.stats.batches += 1
        self.stats.requests += sum(not item.alone for item in group)  # a retried request was counted once
        self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(rows))
        self._track(rows)
        thread = threading.Thread(target=self._run, args=(group, rows), name="ayakit-ct2-batch", daemon=True)
        self._batches.add(thread)
        thread.start()

    def _run(self, group: list[_Waiting], rows: list[RowState]) -> None:
        """One batch on a worker, from submission to its end (a thread of its own while CTranslate2 decodes)."""
        try:
            self._watch(rows)
            self.engine.decode(rows, self._stop.is_set)
        except Exception as exc:  # noqa: BLE001 - the batch failed: decide which rows fail, the server lives on
            self._failed(group, rows, exc)
        finally:
            with self._cond:
                self._free += 1
                self._live.difference_update(id(r) for r in rows)
                self.stats.running = len(self._live)
                self._batches.discard(threading.current_thread())
                self._cond.notify_all()

    def _failed(self, group: list[_Waiting], rows: list[RowState], exc: BaseException) -> None:
        """Rows that have produced nothing are retried alone (when the batch had others); the rest fail."""
        retry, failed = [], 0
        for item, row in zip(group, rows):
            if row.done:
                continue
            if len(rows) > 1 and not row.ids and not self._stop.is_set():
                item.alone = True
                retry.append(item)
            else:
                row.fail(exc)
                failed += 1
        log.error("a CTranslate2 batch of %d rows failed (%s: %s); %d retried alone, %d failed", len(rows),
                  type(exc).__name__, exc, len(retry), failed)
        if retry:
            with self._cond:
                self._pending.extendleft(reversed(retry))
                self._cond.notify_all()

    def _track(self, rows: list[RowState]) -> None:
        with self._cond:
            self._live.update(id(r) for r in rows)
            self.stats.running = len(self._live)

    def _watch(self, rows: list[RowState]) -> None:
        """Count a row out of /health's `running` as soon as it finishes, not when its batch ends."""
        for row in rows:
            notify = row.req.on_finish

            def finished(result: object, row: RowState = row, notify: object = notify) -> None:
                with self._cond:
                    self._live.discard(id(row))
                    self.stats.running = len(self._live)
                if notify is not None:
                    notify(result)  # type: ignore[operator]

            row.req.on_finish = finished
