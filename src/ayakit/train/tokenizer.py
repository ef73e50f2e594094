"""A SentencePiece tokenizer trained on the mixture (or the pretrained model's), and fertility per language."""

from __future__ import annotations

import collections
import io
import random
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ayakit import languages as L
from ayakit.io import manifest_matches, write_json_atomic, write_manifest
from ayakit.recipe import Recipe, RecipeError
from ayakit.train.dataset import mixture_fingerprint, read_mixture

SPECIALS = {"pad": (0, "<pad>"), "eos": (1, "</s>"), "unk": (2, "<unk>"), "bos": (3, "<s>")}
PER_LANGUAGE_COVERAGE = 0.9995  # each language's common characters become pieces, not bytes
TEXT_VERSION = 2  # how training_text selects the text; a new version retrains tokenizers of existing runs
BPE_CONVERSION = 2  # how a BPE model becomes a transformers tokenizer (1 was a Unigram over merge ranks)


def tokenizer_dir(run_dir: Path) -> Path:
    """Where a run keeps its tokenizer."""
    return Path(run_dir) / "tokenizer"


def build_tokenizer(recipe: Recipe, run_dir: Path, progress: Any = None) -> Path:
    """Train a SentencePiece tokenizer on the mixture into run_dir/tokenizer (or copy the pretrained one); its path."""
    run_dir = Path(run_dir)
    out = tokenizer_dir(run_dir)
    pretrained = recipe.tokenizer.pretrained or recipe.model.name_or_path
    inputs: dict[str, Any] = {"tokenizer": recipe.tokenizer.model_dump(mode="json"), "pretrained": pretrained}
    if not pretrained:
        inputs["mixture"] = mixture_fingerprint(run_dir)
        inputs["text"] = TEXT_VERSION
        if recipe.tokenizer.model_type == "bpe":
            inputs["bpe_conversion"] = BPE_CONVERSION
    if manifest_matches(out, inputs) and (out / "tokenizer_config.json").is_file():
        return out
    task = progress.add_task("tokenizer", total=None) if progress is not None else None
    with tempfile.TemporaryDirectory(dir=run_dir, prefix=".tokenizer.") as tmp:
        staging = Path(tmp) / "tokenizer"
        if pretrained:
            tok = load_pretrained(pretrained)
            tok.save_pretrained(staging)
            stats: dict[str, Any] = {"pretrained": pretrained, "vocab_size": len(tok)}
        else:
            stats = _train_spm(recipe, run_dir, staging)
        _replace_dir(staging, out)
    write_manifest(out, "tokenizer", inputs, {"files": sorted(p.name for p in out.iterdir())}, **stats)
    if task is not None:
        progress.update(task, total=1, completed=1)
    return out


def load_pretrained(name_or_path: str) -> Any:
    """AutoTokenizer for a local path or hub id; a RecipeError (one line) when it cannot be found."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as exc:
        raise RecipeError(f"tokenizer {name_or_path!r} cannot be loaded: {str(exc).splitlines()[0]}") from None


def load_tokenizer(path: Path) -> Any:
    """The tokenizer saved in `path` (always through from_pretrained, never a vocab_file constructor)."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not (path / "tokenizer_config.json").is_file():
        raise FileNotFoundError(f"no tokenizer in {path} (run `ayakit tokenizer train` first)")
    return AutoTokenizer.from_pretrained(path)


@dataclass
class TrainingText:
    """The sentences a tokenizer trains on, the mixture's character counts per language, and what was left out."""

    texts: list[str]
    chars: dict[str, collections.Counter]
    mixture_texts: int  # inputs and targets in the mixture, repeats included
    distinct: int  # distinct texts among them; those beyond tokenizer.max_sentences are left out


def training_text(recipe: Recipe, run_dir: Path) -> TrainingText:
    """Distinct sentences to train on (the mixture's inputs and targets) and character counts per language.

    Only text the model trains on: a piece that no training text contains would keep its initial embedding.
    Each distinct text counts once, so how often the mixture repeats an example (weights, variants) does not
    steer the vocabulary. Beyond tokenizer.max_sentences, languages take turns, so every language is seen.
    """
    table = read_mixture(run_dir, ("inputs", "targets", "language"))
    cols = table.to_pydict()
    chars: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    per_language: dict[str, set[str]] = collections.defaultdict(set)
    for inputs, targets, lang in zip(cols["inputs"], cols["targets"], cols["language"]):
        for text in (inputs, targets):
            chars[lang].update(ch for ch in unicodedata.normalize("NFKC", text) if not ch.isspace())
            per_language[lang].add(text)
    # sorted before the seeded shuffle: the text depends on the set of texts, not on the order of the shards
    rng = random.Random(0)
    taken: set[str] = set()
    queues = []
    for lang in sorted(per_language):
        rows = sorted(per_language[lang] - taken)
        taken.update(rows)
        rng.shuffle(rows)
        queues.append(rows)
    texts: list[str] = []
    limit = recipe.tokenizer.max_sentences
    for depth in range(max((len(q) for q in queues), default=0)):
        texts.extend(q[depth] for q in queues if depth < len(q))
        if len(texts) >= limit:
            break
    return TrainingText(texts[:limit], chars, 2 * table.num_rows, len(taken))


def required_chars(chars: dict[str, collections.Counter], budget: int) -> str:
    """Characters that cover PER_LANGUAGE_COVERAGE of each language's text, most frequent first, at most `budget`."""
    need: dict[str, float] = collections.defaultdict(float)
    for lang in sorted(chars):  # ties broken by the character: the result does not depend on the rows' order
        counts = chars[lang]
        total = sum(counts.values())
        covered = 0
        for ch, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if covered >= PER_LANGUAGE_COVERAGE * total:
                break
            covered += n
            need[ch] += n / total  # weight by share within the language, so small languages count
    return "".join(sorted(need, key=lambda ch: (-need[ch], ch))[:budget])


def _train_spm(recipe: Recipe, run_dir: Path, out: Path) -> dict[str, Any]:
    import sentencepiece as spm

    cfg = recipe.tokenizer
    text = training_text(recipe, run_dir)
    texts, chars = text.texts, text.chars
    meta = len(SPECIALS) + 256  # special pieces and the 256 byte-fallback pieces
    if cfg.vocab_size <= meta + 16:
        raise RecipeError(f"tokenizer.vocab_size={cfg.vocab_size} is too small: byte fallback alone needs {meta} "
                          f"pieces; use at least {meta + 64}")
    required = required_chars(chars, budget=max(0, (cfg.vocab_size - meta) // 2))
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, vocab_size=cfg.vocab_size,
            model_type=cfg.model_type, byte_fallback=True, character_coverage=cfg.character_coverage,
            required_chars=required, split_digits=True, hard_vocab_limit=False,
            input_sentence_size=cfg.max_sentences, shuffle_input_sentence=False,
            max_sentencepiece_length=cfg.max_piece_length,
            pad_id=SPECIALS["pad"][0], eos_id=SPECIALS["eos"][0], unk_id=SPECIALS["unk"][0],
            bos_id=SPECIALS["bos"][0], pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>", bos_piece="<s>",
            num_threads=2, minloglevel=2, max_sentence_length=1 << 14,
        )
    except RuntimeError as exc:
        raise RecipeError(f"tokenizer: SentencePiece training failed ({str(exc).split(']')[-1].strip()}); "
                          f"change tokenizer.vocab_size (now {cfg.vocab_size}) or tokenizer.character_coverage") \
            from None
    tok = hf_tokenizer_from_spm(model.getvalue())
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(out)
    (out / "spiece.model").write_bytes(model.getvalue())  # the raw model, for tools that want SentencePiece
    return {"vocab_size": len(tok), "requested_vocab_size": cfg.vocab_size, "sentences": len(texts),
            "mixture_texts": text.mixture_texts,
            "distinct_texts": text.distinct, "left_out_by_max_sentences": text.distinct - len(texts),
            "required_chars": len(required), "languages": len(chars)}


def hf_tokenizer_from_spm(proto_bytes: bytes) -> Any:
    """A transformers fast tokenizer that encodes exactly like the SentencePiece model (byte fallback kept)."""
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import SpmConverter, import_protobuf

    proto = import_protobuf().ModelProto()
    proto.ParseFromString(proto_bytes)
    # transformers picks the model from the vocabulary's form: (piece, score) pairs build a Unigram model, a
    # piece -> id map a BPE with merges ranked by score. A BPE model given pairs would segment by Viterbi over
    # its merge ranks (80% of the demo's texts split otherwise than SentencePiece splits them).
    if proto.trainer_spec.model_type == proto.trainer_spec.BPE:
        vocab: Any = {p.piece: i for i, p in enumerate(proto.pieces)}
    else:
        vocab = [(p.piece, p.score) for p in proto.pieces]
    backend = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab)
    names = {k: v[1] for k, v in SPECIALS.items()}
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=names["pad"], eos_token=names["eos"],
                                   unk_token=names["unk"], bos_token=names["bos"])


def _replace_dir(src: Path, dest: Path) -> None:
    """Move a finished directory into place; the previous one is removed only after the new one is complete."""
    old = dest.with_name(dest.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        dest.rename(old)
    src.rename(dest)
    if old.exists():
        shutil.rmtree(old)


def words(text: str, language: str) -> int:
    """Word count, script-aware: characters for languages written without spaces."""
    if L.unspaced(language):  # written without spaces between words: a "word" is a character
        return sum(1 for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P"))
    return len(text.split())


def fertility(tokenizer_path: Path, run_dir: Path, per_language: int = 2000) -> dict:
    """Tokens per character and per word for each language and tier; written to run_dir/tokenizer/fertility.json."""
    tok = load_tokenizer(Path(tokenizer_path))
    table = read_mixture(run_dir, ("inputs", "targets", "language"))
    cols = table.to_pydict()
    texts: dict[str, list[str]] = collections.defaultdict(list)
    for inp, tgt, lang in zip(cols["inputs"], cols["targets"], cols["language"]):
        if len(texts[lang]) < per_language:
            texts[lang].append(tgt)
            texts[lang].append(inp)
    byte_ids = {i for tokn, i in tok.get_vocab().items() if tokn.startswith("<0x") and tokn.endswith(">")}
    result: dict[str, Any] = {"languages": {}, "tiers": {}}
    for lang in sorted(texts):
        sample = texts[lang]
        ids = tok(sample, add_special_tokens=False)["input_ids"]
        n_tok = sum(len(x) for x in ids)
        n_bytes_tok = sum(1 for x in ids for i in x if i in byte_ids)
        n_char = sum(sum(1 for ch in t if not ch.isspace()) for t in sample)
        n_word = sum(words(t, lang) for t in sample)
        try:
            tier = L.tier(lang)
        except ValueError:
            tier = "unknown"
        result["languages"][lang] = {
            "tokens_per_char": n_tok / max(n_char, 1), "tokens_per_word": n_tok / max(n_word, 1),
            "byte_fallback_fraction": n_bytes_tok / max(n_tok, 1), "tier": tier, "n": len(sample),
        }
    by_tier: dict[str, list[dict]] = collections.defaultdict(list)
    for row in result["languages"].values():
        by_tier[row["tier"]].append(row)
    for tier, rows in sorted(by_tier.items()):
        result["tiers"][tier] = {
            key: sum(r[key] for r in rows) / len(rows)
            for key in ("tokens_per_char", "tokens_per_word", "byte_fallback_fraction")
        } | {"languages": len(rows), "n": sum(r["n"] for r in rows)}
    out = Path(run_dir) / "tokenizer" / "fertility.json"
    write_json_atomic(out, result)
    return result
