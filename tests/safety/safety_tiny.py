"""Tiny models built here, offline: a T5 well under 1M parameters and a random toxicity classifier."""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "The man was very kind. She was very happy. Atheists are people.",
    "I cannot help with that request. I'm sorry, I do not engage in these requests.",
    "Je ne peux pas vous aider. Il était très gentil.",
    "Ich kann nicht helfen. Er war sehr freundlich.",
    "我不能帮助你。她非常好。今天天气很好。",
    "मैं मदद नहीं कर सकता। वह बहुत अच्छा था।",
    "لا أستطيع المساعدة. كان لطيفا جدا.",
    "Я не могу помочь. Он был очень добрым.",
]


def build_tokenizer(out: Path):
    """A byte-level BPE tokenizer (every script encodes), saved in out."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<pad>", "</s>", "<s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 3, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", bos_token="<s>")
    fast.save_pretrained(out)
    return fast


def build_t5(out: Path, seed: int = 0) -> Path:
    """A random tiny T5 (about 60k parameters) with an ayakit.json marker."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(out)
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id,
        dropout_rate=0.0, relative_attention_num_buckets=8, initializer_factor=5.0))
    model.save_pretrained(out)
    (out / "ayakit.json").write_text(json.dumps({"arch": "seq2seq"}))
    return out


def build_classifier(out: Path, seed: int = 0, languages: list[str] | None = None) -> Path:
    """A random tiny BERT sequence classifier with labels non-toxic / toxic (detoxify-style directory)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(out)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128, num_labels=2,
                        id2label={0: "non-toxic", 1: "toxic"}, label2id={"non-toxic": 0, "toxic": 1},
                        pad_token_id=tok.pad_token_id)
    if languages:
        config.languages = languages
    BertForSequenceClassification(config).save_pretrained(out)
    return out
