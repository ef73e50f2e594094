"""Tiny seq2seq (T5) and causal (Llama) models with a byte-level BPE tokenizer, built locally (no downloads)."""

from __future__ import annotations

import json
from pathlib import Path

# a few sentences in ten languages and scripts (shared with the other tiny-model builder)
CORPUS = (Path(__file__).parent.parent / "tiny_corpus.txt").read_text(encoding="utf-8").splitlines()


def build_tokenizer(out: Path, template: str | None = None):
    """A byte-level BPE (any text encodes). No post-processor by default (ayakit.models.encoding adds the special tokens);
    `template` ("$A </s>" as T5's, "<s> $A" as Llama's) adds one, as real models' tokenizers have, which is what
    other harnesses (lm-eval) rely on."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "</s>", "<s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 3, trainer)
    if template:
        tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=[
            ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", bos_token="<s>")
    fast.save_pretrained(out)
    return fast


def build_models(root: Path, seed: int = 0, special_tokens: bool = False) -> tuple[Path, Path]:
    """Save a tiny T5 and a tiny Llama (random weights, fixed seed) under root; returns their directories.
    special_tokens: their tokenizers add eos (T5) / bos (Llama) themselves, as real models' do."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

    seq2seq, causal = root / "tiny-t5", root / "tiny-llama"
    tok = build_tokenizer(seq2seq, "$A </s>" if special_tokens else None)
    build_tokenizer(causal, "<s> $A" if special_tokens else None)
    torch.manual_seed(seed)
    t5 = T5ForConditionalGeneration(T5Config(
        vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id,
        dropout_rate=0.0, relative_attention_num_buckets=8, tie_word_embeddings=False))
    t5.save_pretrained(seq2seq)
    torch.manual_seed(seed + 1)
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False))
    llama.save_pretrained(causal)
    for path, arch in ((seq2seq, "seq2seq"), (causal, "causal")):
        (path / "ayakit.json").write_text(json.dumps({"arch": arch}))
    return seq2seq, causal
