"""Tokenizer training and loading, fertility, model presets and init."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import sentencepiece as spm
import torch

from ayakit.models.encoding import encode
from ayakit.recipe import RecipeError, recipe_from_dict


def test_tokenizer_loads_with_autotokenizer_and_encodes_like_sentencepiece(tokenizer_dir: Path, examples) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_dir / "spiece.model"))
    assert len(tok) == sp.get_piece_size() > 300  # not the 4-token trap of T5Tokenizer(vocab_file=...)
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, tok.bos_token_id) == (0, 1, 2, 3)
    for ex in examples[::7]:
        for text in (ex.inputs, ex.targets):
            ids = tok(text, add_special_tokens=False)["input_ids"]
            assert ids == sp.encode(text)
            assert tok.decode(ids) == text
    manifest = json.loads((tokenizer_dir / "manifest.json").read_text())
    assert manifest["stage"] == "tokenizer" and manifest["vocab_size"] == len(tok)


def test_bpe_tokenizer_encodes_like_sentencepiece(tmp_path: Path, th, examples) -> None:
    """tokenizer.model_type=bpe: the HF tokenizer is a BPE with SentencePiece's merges (built from (piece, score)
    pairs it was a Unigram over merge ranks and split most texts into shorter pieces)."""
    from transformers import AutoTokenizer

    from ayakit.train.tokenizer import build_tokenizer

    run = th.write_mixture(tmp_path / "run", examples)
    recipe = th.micro_recipe()
    recipe.tokenizer.model_type = "bpe"
    out = build_tokenizer(recipe, run)
    tok = AutoTokenizer.from_pretrained(out)
    sp = spm.SentencePieceProcessor(model_file=str(out / "spiece.model"))
    texts = sorted({t for ex in examples for t in (ex.inputs, ex.targets)})
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    assert ids == sp.encode(texts)
    assert tok.decode(ids[0]) == texts[0]


def test_max_piece_length_caps_every_learned_piece(tmp_path: Path, th, examples) -> None:
    """tokenizer.max_piece_length reaches SentencePiece: no learned piece is longer (the demo uses 4)."""
    from ayakit.train.tokenizer import build_tokenizer

    run = th.write_mixture(tmp_path / "run", examples)
    recipe = th.micro_recipe()
    recipe.tokenizer.max_piece_length = 3
    sp = spm.SentencePieceProcessor(model_file=str(build_tokenizer(recipe, run) / "spiece.model"))
    learned = [sp.id_to_piece(i) for i in range(sp.get_piece_size())
               if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i))]
    assert learned and max(map(len, learned)) == 3
    default = spm.SentencePieceProcessor(model_file=str(build_tokenizer(th.micro_recipe(), tmp_path / "run")
                                                        / "spiece.model"))
    assert max(len(default.id_to_piece(i)) for i in range(default.get_piece_size())) > 3
    with pytest.raises(ValueError, match="max_piece_length"):
        recipe_from_dict({"name": "x", "tokenizer": {"max_piece_length": 0}})


def test_unseen_script_falls_back_to_bytes_and_round_trips(tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    text = "ሰላም ዓለም"  # Amharic: not in the small mixture
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids
    assert any(tok.convert_ids_to_tokens(i).startswith("<0x") for i in ids)
    assert tok.decode(ids) == text


def test_every_mixture_language_avoids_byte_fallback_and_fertility_is_written(tokenizer_dir: Path) -> None:
    from ayakit.train.tokenizer import fertility

    run = tokenizer_dir.parent
    result = fertility(tokenizer_dir, run)
    assert set(result["languages"]) == {"eng", "fra", "deu", "rus", "swh", "hin"}
    for code, row in result["languages"].items():
        assert row["byte_fallback_fraction"] == 0.0, code
        assert 0 < row["tokens_per_char"] <= 1 and row["tokens_per_word"] >= 1
    assert result["languages"]["hin"]["tier"] == "high" and "low" in result["tiers"]
    assert json.loads((run / "tokenizer" / "fertility.json").read_text()) == result


def test_script_aware_words() -> None:
    from ayakit.train.tokenizer import words

    assert words("Hello big world", "eng") == 3
    assert words("你好，世界", "zho") == 4  # characters, punctuation excluded
    assert words("สวัสดีครับ", "tha") == 10


def test_pretrained_tokenizer_is_copied_and_a_missing_one_is_one_line(tmp_path: Path, tokenizer_dir: Path, th,
                                                                      examples) -> None:
    from ayakit.train.tokenizer import build_tokenizer

    run = th.write_mixture(tmp_path / "run", examples[:20])
    recipe = th.micro_recipe().model_copy(update={"tokenizer": th.micro_recipe().tokenizer.model_copy(
        update={"pretrained": str(tokenizer_dir)})})
    out = build_tokenizer(recipe, run)
    assert json.loads((out / "tokenizer.json").read_text()) == json.loads((tokenizer_dir / "tokenizer.json").read_text())
    bad = recipe.model_copy(update={"tokenizer": recipe.tokenizer.model_copy(update={"pretrained": str(tmp_path / "no")})})
    with pytest.raises(RecipeError, match="cannot be loaded"):
        build_tokenizer(bad, run)


def test_too_small_vocabulary_is_a_recipe_error(tmp_path: Path, th, examples) -> None:
    from ayakit.train.tokenizer import build_tokenizer

    run = th.write_mixture(tmp_path / "run", examples)
    recipe = th.micro_recipe()
    recipe.tokenizer.vocab_size = 200
    with pytest.raises(RecipeError, match="vocab_size=200"):
        build_tokenizer(recipe, run)
    assert not (run / "tokenizer").exists()


@pytest.mark.parametrize("arch", ["seq2seq", "causal"])
def test_init_model_micro_saves_a_loadable_generating_model(arch: str, tmp_path: Path, tokenizer_dir: Path,
                                                            th) -> None:
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    from ayakit.train.model import init_model, model_info

    out = init_model(th.micro_recipe(arch), tokenizer_dir, tmp_path / "init")
    info = model_info(out)
    assert info["arch"] == arch and info["preset"] == "micro" and info["max_source_length"] == 24
    assert info["parameters"] < 1_000_000
    cls = AutoModelForSeq2SeqLM if arch == "seq2seq" else AutoModelForCausalLM
    model = cls.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    enc = encode(tok, "Name month number 3 in French.", "mars", arch, 24, 8)
    gen = model.generate(torch.tensor([enc.source]), max_new_tokens=4, do_sample=False)
    assert gen.shape[1] > (1 if arch == "seq2seq" else len(enc.source))
    # the same recipe initialises the same weights (the run stage's baseline is what training starts from)
    again = cls.from_pretrained(init_model(th.micro_recipe(arch), tokenizer_dir, tmp_path / "again"))
    for (n, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), n


def test_tiny_preset_is_5_to_10m_parameters_and_starts_near_uniform_loss() -> None:
    from transformers import T5Config, T5ForConditionalGeneration

    from ayakit.train.model import preset_config

    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(vocab_size=8000, feed_forward_proj="gated-gelu",
                                                tie_word_embeddings=True, decoder_start_token_id=0,
                                                **preset_config("seq2seq", "tiny")))
    n = sum(p.numel() for p in model.parameters())
    assert 5e6 <= n <= 10e6, n
    ids = torch.randint(4, 8000, (4, 16))
    loss = model(input_ids=ids, labels=ids[:, :8].contiguous()).loss.item()
    assert abs(loss - math.log(8000)) < 1.5, loss  # not mT5's default ~25


def test_unknown_preset_lists_the_known_ones_and_missing_model_path_is_one_line(tokenizer_dir: Path, th,
                                                                                tmp_path: Path) -> None:
    from ayakit.train.model import init_model

    with pytest.raises(RecipeError, match=r"known presets: \['micro', 'small', 'tiny'\]"):
        init_model(recipe_from_dict(th.micro_recipe().model_dump() | {"model": {"preset": "huge"}}), tokenizer_dir,
                   tmp_path / "m")
    with pytest.raises(RecipeError, match="no such directory"):
        init_model(recipe_from_dict(th.micro_recipe().model_dump() | {"model": {"name_or_path": str(tmp_path / "x")}}),
                   tokenizer_dir, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_pretrained_model_path_is_loaded(tokenizer_dir: Path, th, tmp_path: Path) -> None:
    from ayakit.train.model import init_model, model_info

    first = init_model(th.micro_recipe("causal"), tokenizer_dir, tmp_path / "first")
    recipe = recipe_from_dict(th.micro_recipe().model_dump() | {"model": {"name_or_path": str(first)}})
    out = init_model(recipe, tokenizer_dir, tmp_path / "second")
    info = model_info(out)
    assert info["arch"] == "causal" and info["name_or_path"] == str(first) and info["preset"] is None
