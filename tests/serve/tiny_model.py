"""Build a tiny seq2seq model and tokenizer from scratch, offline (shared by the serve, judge and translate tests)."""

from __future__ import annotations

import json
from pathlib import Path

SENTENCES = [
    "The cat sits on the mat.", "Where is the library?", "I like green tea and rice.",
    "Le chat dort sur le lit.", "Où est la gare ?", "J'aime le thé vert.",
    "Paka anakaa kwenye mkeka.", "Maktaba iko wapi?", "Ninapenda chai ya kijani.",
    "El gato duerme en la cama.", "¿Dónde está la biblioteca?", "Me gusta el té verde.",
    "Answer (A) is better.", "Preferred: Answer (B)", "Comparison: both answers are fine. TIE",
    "Translate the following text into French.", "Write a short poem about the sea.",
]


def build_tiny_model(out_dir: Path, extra_tokens: list[str] = (), arch: str = "seq2seq", seed: int = 0) -> Path:
    """A T5 (seq2seq) or GPT-2 (causal) model well under 1M parameters, with a Unigram tokenizer trained here."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "</s>", "<unk>", "<s>", *extra_tokens]
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=200, special_tokens=specials, unk_token="<unk>")
    tok.train_from_iterator(SENTENCES * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   bos_token="<s>", additional_special_tokens=list(extra_tokens) or None)
    fast.save_pretrained(out_dir)
    torch.manual_seed(seed)
    vocab = len(fast)
    if arch == "seq2seq":
        config = T5Config(vocab_size=vocab, d_model=32, d_ff=64, d_kv=8, num_layers=2, num_decoder_layers=2,
                          num_heads=2, pad_token_id=fast.pad_token_id, eos_token_id=fast.eos_token_id,
                          decoder_start_token_id=fast.pad_token_id, initializer_factor=5.0)
        model = T5ForConditionalGeneration(config)
    else:
        config = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=2, n_positions=1024,
                            bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                            pad_token_id=fast.pad_token_id)
        model = GPT2LMHeadModel(config)
    model.save_pretrained(out_dir)
    (out_dir / "ayakit.json").write_text(json.dumps({"arch": arch, "max_source_length": 1024}))
    return out_dir
