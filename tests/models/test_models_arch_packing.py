"""What each architecture module says about packing: row capacities, what an example takes of them, the decoder
start id and how a prompt's ids are framed (train/ asks these instead of comparing architecture names)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ayakit.models import arch_impl


def test_row_capacity_per_architecture():
    seq2seq, causal = arch_impl("seq2seq"), arch_impl("causal")
    assert causal.row_capacity(64, 32, None, None, 0.5) == (96, None)  # prompt and target in one row
    assert causal.row_capacity(64, 32, 128, 40, 0.5) == (128, None)
    assert seq2seq.row_capacity(64, 32, 128, None, 0.5) == (128, 72)  # ceil(128 * 0.5 * 1.1) = 71, padded to 72
    assert seq2seq.row_capacity(64, 32, None, 48, 0.5) == (64, 48)
    assert seq2seq.row_capacity(64, 32, None, None, 0.1) == (64, 32)  # never below max_target_length


def test_pack_lengths_and_decoder_start():
    src, tgt = np.array([5, 7]), np.array([2, 3])
    first, second = arch_impl("seq2seq").pack_lengths(src, tgt)
    assert first.tolist() == [5, 7] and second.tolist() == [2, 3]
    first, second = arch_impl("causal").pack_lengths(src, tgt)
    assert first.tolist() == [7, 10] and second is None
    model = SimpleNamespace(config=SimpleNamespace(decoder_start_token_id=None))
    assert arch_impl("seq2seq").decoder_start(model, 0) == 0
    model.config.decoder_start_token_id = 3
    assert arch_impl("seq2seq").decoder_start(model, 0) == 3
    assert arch_impl("causal").decoder_start(model, 0) is None


def test_frame_source_truncates_and_adds_the_special_tokens():
    tok = SimpleNamespace(eos_token_id=1, bos_token_id=2)
    ids = [10, 11, 12, 13, 14]
    assert arch_impl("seq2seq").frame_source(tok, ids, 4) == [10, 11, 12, 1]  # the start kept, then eos
    assert arch_impl("causal").frame_source(tok, ids, 4) == [2, 12, 13, 14]  # bos, then the end kept
    assert arch_impl("causal").frame_source(SimpleNamespace(eos_token_id=1, bos_token_id=None), ids, 2) == [13, 14]
