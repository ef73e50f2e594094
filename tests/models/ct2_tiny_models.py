"""Tiny T5 and Llama models with a SentencePiece tokenizer (as ayakit trains one), built locally from config."""

from __future__ import annotations

import io
import json
from pathlib import Path

# a few sentences in ten languages and scripts (shared with the other tiny-model builder)
CORPUS = (Path(__file__).parent.parent / "tiny_corpus.txt").read_text(encoding="utf-8").splitlines()


def build_tokenizer(vocab_size: int = 400):
    """A SentencePiece unigram model with byte fallback and ayakit's special ids, as an HF fast tokenizer."""
    import sentencepiece as spm

    from ayakit.train.tokenizer import hf_tokenizer_from_spm

    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 5), model_writer=proto, vocab_size=vocab_size, model_type="unigram",
        byte_fallback=True, hard_vocab_limit=False, pad_id=0, eos_id=1, unk_id=2, bos_id=3, pad_piece="<pad>",
        eos_piece="</s>", unk_piece="<unk>", bos_piece="<s>", num_threads=1, minloglevel=2)
    return hf_tokenizer_from_spm(proto.getvalue())


def _spread(model, std: float = 0.4) -> None:
    """Redraw every weight from N(0, std): an initialised tiny model repeats one token, which would make the
    greedy comparisons vacuous; these weights give varied continuations."""
    import torch

    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)


def build_t5(out: Path, seed: int = 0, tie: bool = True, extra_vocab: int = 3) -> Path:
    """A tiny mT5-style model (gated-gelu; tied embeddings as ayakit's presets), vocabulary padded past the
    tokenizer's as mT5's is."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tok = build_tokenizer()
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=len(tok) + extra_vocab, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
        num_heads=4, feed_forward_proj="gated-gelu", tie_word_embeddings=tie, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id, dropout_rate=0.0,
        relative_attention_num_buckets=8))
    _spread(model)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "ayakit.json").write_text(json.dumps({"arch": "seq2seq", "max_source_length": 128,
                                                 "max_target_length": 64}))
    return out


def build_llama(out: Path, seed: int = 1) -> Path:
    """A tiny Llama (grouped-query attention) with the same tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tokenizer()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False))
    _spread(model)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "ayakit.json").write_text(json.dumps({"arch": "causal", "max_source_length": 128,
                                                 "max_target_length": 64}))
    return out
