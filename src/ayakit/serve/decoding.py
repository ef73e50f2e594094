"""Continuous batching on an HF model: rows join a running batch between decoding steps and leave when they finish.

Each row's caches are computed alone by a prefill, then merged into the running batch, and a finished row is
dropped from every tensor at once; how an architecture lays out its caches, masks and positions is its module's
business (`Arch.prefill`, `step`, `merge_rows`, `select_rows` in ayakit.models), so this loop never branches on
it. Sampling is per row, so one row's bad parameters or failing callback finish that row with an error and never
touch the others.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from ayakit.serve.engine import Completion, Delta, GenRequest, TokenInfo

log = logging.getLogger("ayakit.serve")


class RowState:
    """One request's decoding state: its tokens, streamed text, finish reason and result."""

    def __init__(self, req: GenRequest, tokenizer: Any, eos_ids: set[int]) -> None:
        import torch

        self.req = req
        self.tok = tokenizer
        self.eos_ids = eos_ids
        self.ids: list[int] = []
        self.infos: list[TokenInfo] = []
        self.pending: list[TokenInfo] = []  # infos not yet sent in a Delta
        self.text = ""
        self.sent = 0  # characters of text already streamed
        self.done = False
        self.finish_reason = "length"
        self.result: Completion | BaseException | None = None
        self.last: TokenInfo | None = None
        seed = req.params.seed if req.params.seed is not None else random.getrandbits(62)
        self.gen = torch.Generator().manual_seed(seed % (1 << 63))
        self.holdback = max((len(s) for s in req.params.stop), default=1) - 1

    def choose(self, logp: Any) -> int:
        """This row's next token from its log-probabilities (greedy, or temperature / top-p with its own seed).

        The distribution is computed from logp minus its maximum in float64, so any temperature > 0, however
        small, gives a valid distribution (a tiny one samples among the tied best tokens: greedy in effect).
        """
        import torch

        p = self.req.params
        if p.temperature <= 0:
            choice = int(torch.argmax(logp))
        else:
            z = (logp.double() - logp.max().double()) / p.temperature  # <= 0, the best token exactly 0
            probs = torch.softmax(z, dim=-1)
            if p.top_p < 1.0:
                sorted_p, order = torch.sort(probs, descending=True)
                keep = torch.cumsum(sorted_p, 0) - sorted_p < p.top_p
                keep[0] = True  # the most likely token always stays, however small top_p is
                probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
            choice = int(torch.multinomial(probs.cpu(), 1, generator=self.gen))
        self.last = TokenInfo(choice, "", float(logp[choice]), self.top_tokens(logp))
        return choice

    def top_tokens(self, logp: Any) -> list[tuple[str, float]]:
        """The request's `logprobs` most likely tokens of a step's log-probabilities (none when it asks for none)."""
        import torch

        k = self.req.params.logprobs
        if not k:
            return []
        values, idx = torch.topk(logp, min(k, logp.shape[-1]))
        return [(self.tok.convert_ids_to_tokens(int(t)), float(v)) for v, t in zip(values, idx)]

    def push(self, token_id: int) -> None:
        """Take the chosen token; decide whether the row is finished; stream what is safe."""
        if self.done:
            return
        if self.req.cancelled.is_set():
            self._finish("cancelled")
            return
        if token_id in self.eos_ids:
            self._finish("stop")
            return
        self.ids.append(token_id)
        info = self.last if self.last is not None and self.last.id == token_id else TokenInfo(token_id, "", 0.0)
        info.text = self.tok.convert_ids_to_tokens(token_id)
        info.offset = len(self.text)
        self.infos.append(info)
        self.pending.append(info)
        self.text = self.tok.decode(self.ids, skip_special_tokens=True)
        for stop in self.req.params.stop:
            at = self.text.find(stop)
            if stop and at >= 0:
                self.text = self.text[:at]
                self._finish("stop")
                return
        if len(self.ids) >= self.req.params.max_tokens:
            self._finish("length")
            return
        safe = len(self.text) - self.holdback
        while safe > self.sent and self.text[safe - 1] == "\ufffd":  # an incomplete multi-byte character
            safe -= 1
        self._emit(safe)

    def fail(self, exc: BaseException) -> None:
        """Finish this row with an error (the others go on)."""
        if self.done and self.result is not None:
            return
        self.done = True
        self.result = exc
        self._notify()

    def end(self) -> None:
        """Finish a row whose decoder stopped on its own: "length" at max_tokens, else "stop" (an end token)."""
        if not self.done:
            self._finish("length" if len(self.ids) >= self.req.params.max_tokens else "stop")

    def _finish(self, reason: str) -> None:
        self.done = True
        self.finish_reason = reason
        self._emit(len(self.text))
        self.result = Completion(self.text, reason, len(self.req.prompt_ids), len(self.ids), self.infos)
        self._notify()

    def _notify(self) -> None:
        if self.req.on_finish is not None:
            try:
                self.req.on_finish(self.result)
            except Exception:  # noqa: BLE001 - a listener that went away must not stop the batch
                log.debug("on_finish of a request failed", exc_info=True)

    def _emit(self, upto: int) -> None:
        if self.req.on_delta is None or (upto <= self.sent and not self.pending):
            return
        piece = self.text[self.sent:upto] if upto > self.sent else ""
        self.sent = max(self.sent, upto)
        self.req.on_delta(Delta(piece, self.pending))
        self.pending = []


def completed(rows: list[RowState]) -> list[Completion]:
    """The rows' completions, in order; the first row's error is raised when any row failed."""
    errors = [row.result for row in rows if isinstance(row.result, BaseException)]
    if errors:
        raise errors[0]
    return [row.result for row in rows]  # type: ignore[misc]


class RunningBatch:
    """The rows being decoded together: `admit` adds rows (one prefill), `step` advances every row by one token."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.impl = engine.impl  # the architecture's module: prefill, step, merge and select rows
        self.rows: list[RowState] = []
        self._clear()

    def __len__(self) -> int:
        return len(self.rows)

    def _clear(self) -> None:
        self.state: Any = None  # the architecture's Rows: caches and masks of the running rows
        self.next_ids: Any = None  # (B,) the token each row feeds at the next step

    def can_join(self) -> bool:
        """Whether new rows can be merged into the running rows (caches of plain dynamic layers)."""
        return not self.rows or self.impl.mergeable(self.state)

    def admit(self, requests: list[GenRequest]) -> list[RowState]:
        """Prefill the requests together and merge them into the batch; a request whose prefill fails fails alone."""
        rows = [RowState(r, self.engine.tokenizer, self.engine.eos_ids) for r in requests]
        self._admit_rows([r for r in rows if not self._cancelled(r)])
        return rows

    def step(self) -> None:
        """Advance every row by one token; finished rows leave the batch. A failing forward fails every row."""
        import torch

        if not self.rows:
            return
        for row in self.rows:
            self._cancelled(row)
        self._evict()
        if not self.rows:
            return
        try:
            with self.engine._lock, torch.inference_mode():
                state, logits = self.impl.step(self.engine.model, self.state, self.next_ids)
        except Exception as exc:  # noqa: BLE001 - the rows share this forward: each gets the error, the server lives
            log.exception("a decoding step failed; its %d rows fail", len(self.rows))
            for row in self.rows:
                row.fail(exc)
            self.rows = []
            self._clear()
            return
        self.state = state
        self.next_ids = self._sample(logits, self.rows).to(self.engine.device)
        self._evict()

    # --- internals ----------------------------------------------------------------------------------------------

    @staticmethod
    def _cancelled(row: RowState) -> bool:
        if not row.done and row.req.cancelled.is_set():
            row._finish("cancelled")
        return row.done

    def _admit_rows(self, rows: list[RowState]) -> None:
        import torch

        if not rows:
            return
        eng = self.engine
        try:
            with eng._lock, torch.inference_mode():
                part, logits = self.impl.prefill(eng.model, [r.req.prompt_ids for r in rows], eng.pad_id)
        except Exception as exc:  # noqa: BLE001 - find the row that fails: the others are served
            if len(rows) == 1:
                log.exception("prefill of one request failed")
                rows[0].fail(exc)
                return
            for row in rows:
                self._admit_rows([row])
            return
        next_ids = self._sample(logits, rows).to(eng.device)
        if not self.rows:
            self._clear()
            self.state, self.next_ids = part, next_ids
        else:
            if not self.can_join():
                raise RuntimeError("this model's cache cannot be merged; wait for the running batch to finish")
            self.state = self.impl.merge_rows(self.state, part)
            self.next_ids = torch.cat([self.next_ids, next_ids])
        self.rows += rows
        self._evict()

    def _sample(self, logits: Any, rows: list[RowState]) -> Any:
        """Each row's next token, chosen and pushed row by row; a row that fails finishes alone with the error."""
        import torch

        logp = torch.log_softmax(logits.float(), dim=-1)  # stays on the device: rows read only what they pick
        chosen = []
        for i, row in enumerate(rows):
            token = self.engine.pad_id
            if not row.done:
                try:
                    token = row.choose(logp[i])
                    row.push(token)
                except Exception as exc:  # noqa: BLE001 - this row's parameters or listener: only it fails
                    log.warning("a request failed while decoding: %s: %s", type(exc).__name__, exc)
                    row.fail(exc)
            chosen.append(token)
        return torch.tensor(chosen, dtype=torch.long)

    def _evict(self) -> None:
        """Drop finished rows from every tensor, then the padding columns no remaining row needs."""
        keep = [i for i, row in enumerate(self.rows) if not row.done]
        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self._clear()
            return
        self.state = self.impl.select_rows(self.state, keep)
        self.next_ids = self.next_ids[keep]
