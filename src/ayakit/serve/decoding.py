"""Continuous batching on an HF model: rows join a running batch between decoding steps and leave when they finish.

Each row's KV cache (and, for seq2seq, its encoder output and cross-attention cache) is computed alone by a
prefill, then merged into the running batch: self-attention caches are left-padded to a common length (the
attention mask hides the padding; T5's relative positions and explicit causal position ids are unchanged by it),
encoder states right-padded. A finished row is dropped from every tensor at once. Sampling is per row, so one
row's bad parameters or failing callback finish that row with an error and never touch the others.
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
        top: list[tuple[str, float]] = []
        if p.logprobs:
            values, idx = torch.topk(logp, min(p.logprobs, logp.shape[-1]))
            top = [(self.tok.convert_ids_to_tokens(int(t)), float(v)) for v, t in zip(values, idx)]
        self.last = TokenInfo(choice, "", float(logp[choice]), top)
        return choice

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


class RunningBatch:
    """The rows being decoded together: `admit` adds rows (one prefill), `step` advances every row by one token."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.seq2seq = engine.arch == "seq2seq"
        self.rows: list[RowState] = []
        self._clear()

    def __len__(self) -> int:
        return len(self.rows)

    def _clear(self) -> None:
        self.cache: Any = None
        self.mask: Any = None  # (B, L) self-attention mask over the cached positions, left-padded
        self.next_ids: Any = None  # (B,) the token each row feeds at the next step
        self.positions: Any = None  # (B,) causal: position id of that token
        self.enc: Any = None  # seq2seq: (B, S, d) encoder states, right-padded
        self.enc_mask: Any = None  # seq2seq: (B, S)

    def can_join(self) -> bool:
        """Whether new rows can be merged into the running rows (caches of plain dynamic layers)."""
        from transformers.cache_utils import DynamicLayer

        return not self.rows or all(type(layer) is DynamicLayer for layer in self._layers())

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
            ones = torch.ones((len(self.rows), 1), dtype=self.mask.dtype, device=self.mask.device)
            mask = torch.cat([self.mask, ones], dim=1)
            with self.engine._lock, torch.inference_mode():
                if self.seq2seq:
                    from transformers.modeling_outputs import BaseModelOutput

                    out = self.engine.model(encoder_outputs=BaseModelOutput(last_hidden_state=self.enc),
                                            attention_mask=self.enc_mask, decoder_input_ids=self.next_ids[:, None],
                                            decoder_attention_mask=mask, cache=self.cache, use_cache=True)
                else:
                    out = self.engine.model(input_ids=self.next_ids[:, None], attention_mask=mask,
                                            position_ids=self.positions[:, None], cache=self.cache, use_cache=True)
        except Exception as exc:  # noqa: BLE001 - the rows share this forward: each gets the error, the server lives
            log.exception("a decoding step failed; its %d rows fail", len(self.rows))
            for row in self.rows:
                row.fail(exc)
            self.rows = []
            self._clear()
            return
        self.cache = out.cache if getattr(out, "cache", None) is not None else self.cache
        self.mask = mask
        if self.positions is not None:
            self.positions = self.positions + 1
        self.next_ids = self._sample(out.logits[:, -1], self.rows).to(self.mask.device)
        self._evict()

    # --- internals ----------------------------------------------------------------------------------------------

    @staticmethod
    def _cancelled(row: RowState) -> bool:
        if not row.done and row.req.cancelled.is_set():
            row._finish("cancelled")
        return row.done

    def _admit_rows(self, rows: list[RowState]) -> None:
        if not rows:
            return
        try:
            part = self._prefill(rows)
        except Exception as exc:  # noqa: BLE001 - find the row that fails: the others are served
            if len(rows) == 1:
                log.exception("prefill of one request failed")
                rows[0].fail(exc)
                return
            for row in rows:
                self._admit_rows([row])
            return
        logits = part.pop("logits")
        part["next_ids"] = self._sample(logits, rows).to(part["mask"].device)
        self._merge(part)
        self.rows += rows
        self._evict()

    def _prefill(self, rows: list[RowState]) -> dict[str, Any]:
        """One forward over the new rows' prompts alone: their caches, masks and first-token logits."""
        import torch
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        eng = self.engine
        seqs = [r.req.prompt_ids for r in rows]
        ids, attn = eng._pad(seqs)
        ids, attn = ids.to(eng.device), attn.to(eng.device)
        config = eng.model.config
        with eng._lock, torch.inference_mode():
            if self.seq2seq:
                from transformers.modeling_outputs import BaseModelOutput

                enc = eng.model.get_encoder()(input_ids=ids, attention_mask=attn).last_hidden_state
                start = eng.model.generation_config.decoder_start_token_id
                start = eng.pad_id if start is None else start
                dec = torch.full((len(rows), 1), start, dtype=torch.long, device=eng.device)
                cache = EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))
                out = eng.model(encoder_outputs=BaseModelOutput(last_hidden_state=enc), attention_mask=attn,
                                decoder_input_ids=dec, cache=cache, use_cache=True)
                mask = torch.ones((len(rows), 1), dtype=torch.long, device=eng.device)
                part = {"enc": enc, "enc_mask": attn, "positions": None}
            else:
                positions = (attn.cumsum(-1) - 1).clamp(min=0)
                cache = DynamicCache(config=config)
                out = eng.model(input_ids=ids, attention_mask=attn, position_ids=positions, cache=cache,
                                use_cache=True)
                mask = attn
                part = {"enc": None, "enc_mask": None, "positions": attn.sum(-1)}
        part.update(cache=out.cache if getattr(out, "cache", None) is not None else cache, mask=mask,
                    logits=out.logits[:, -1])
        return part

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

    def _layers(self, cross: bool = False) -> list[Any]:
        if self.cache is None:
            return []
        if self.seq2seq:
            return list((self.cache.cross_attention_cache if cross else self.cache.self_attention_cache).layers)
        return [] if cross else list(self.cache.layers)

    def _merge(self, part: dict[str, Any]) -> None:
        """Append a prefilled part to the batch: self-attention left-padded, encoder states right-padded."""
        import torch

        if not self.rows:
            self._clear()
            self.cache, self.mask, self.next_ids = part["cache"], part["mask"], part["next_ids"]
            self.positions, self.enc, self.enc_mask = part["positions"], part["enc"], part["enc_mask"]
            return
        if not self.can_join():
            raise RuntimeError("this model's cache cannot be merged; wait for the running batch to finish")
        new = part["cache"]
        width = max(self.mask.shape[1], part["mask"].shape[1])
        theirs = new.self_attention_cache.layers if self.seq2seq else new.layers
        for mine, other in zip(self._layers(), theirs):
            mine.keys = torch.cat([_pad(mine.keys, width, -2, left=True), _pad(other.keys, width, -2, left=True)])
            mine.values = torch.cat([_pad(mine.values, width, -2, left=True),
                                     _pad(other.values, width, -2, left=True)])
        self.mask = torch.cat([_pad(self.mask, width, 1, left=True), _pad(part["mask"], width, 1, left=True)])
        self.next_ids = torch.cat([self.next_ids, part["next_ids"]])
        if self.seq2seq:
            span = max(self.enc.shape[1], part["enc"].shape[1])
            for mine, other in zip(self._layers(cross=True), new.cross_attention_cache.layers):
                mine.keys = torch.cat([_pad(mine.keys, span, -2), _pad(other.keys, span, -2)])
                mine.values = torch.cat([_pad(mine.values, span, -2), _pad(other.values, span, -2)])
            self.enc = torch.cat([_pad(self.enc, span, 1), _pad(part["enc"], span, 1)])
            self.enc_mask = torch.cat([_pad(self.enc_mask, span, 1), _pad(part["enc_mask"], span, 1)])
        else:
            self.positions = torch.cat([self.positions, part["positions"]])

    def _evict(self) -> None:
        """Drop finished rows from every tensor, then the padding columns no remaining row needs."""
        import torch

        keep = [i for i, row in enumerate(self.rows) if not row.done]
        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self._clear()
            return
        idx = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        first = int(self.mask[idx].any(0).nonzero()[0])  # leading columns that are padding in every row
        for layer in self._layers():
            layer.keys, layer.values = layer.keys[idx, :, first:], layer.values[idx, :, first:]
        self.mask = self.mask[idx, first:]
        self.next_ids = self.next_ids[idx]
        if self.positions is not None:
            self.positions = self.positions[idx]
        if self.seq2seq:
            end = int(self.enc_mask[idx].any(0).nonzero()[-1]) + 1  # trailing encoder padding no row needs
            for layer in self._layers(cross=True):
                layer.keys, layer.values = layer.keys[idx, :, :end], layer.values[idx, :, :end]
            self.enc = self.enc[idx, :end]
            self.enc_mask = self.enc_mask[idx, :end]


def _pad(t: Any, size: int, dim: int, left: bool = False) -> Any:
    """`t` zero-padded along `dim` to `size` (on the left or the right)."""
    import torch

    missing = size - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    filler = torch.zeros(shape, dtype=t.dtype, device=t.device)
    return torch.cat([filler, t] if left else [t, filler], dim=dim)
