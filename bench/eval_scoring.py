"""Seq2seq choice scoring speed: the model layer's scorer vs the one at a reference commit, same items, one process.

Builds a random T5 of the demo's shape (train/presets.yaml `tiny`: d_model 256, 3+3 layers, an 8k vocabulary) with a
byte-level BPE trained on the items (model vocabulary 8192 rows), reads XCOPA items (the public data: --data-dir, $AYAKIT_DATA_DIR or
../shared/data), and scores every item's two choices with (a) ayakit.models (HFBackend.loglikelihood) and (b) the
eval backend of --ref (default: the commit the model layer was forked from, loaded with `git show`). Repeats
alternate a/b; prints items/s of each (wall clock and per CPU-second of this process, which busy machines disturb
less), the ratios (median and spread), the largest score difference and the load average. Not a test: numbers depend on the machine.

Usage: python bench/eval_scoring.py [--items 400] [--repeats 5] [--batch-size 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REF = "089e4a1"  # main when ayakit.models was started: eval/backends.py held the scorers
XCOPA_LANGS = ["et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh"]
CONNECTOR = {"cause": "because", "effect": "so"}


def read_items(data_dir: Path, n: int) -> list[tuple[str, list[str]]]:
    """(context, [choice1, choice2]) from XCOPA test files, round-robin over languages."""
    per_lang = []
    for lang in XCOPA_LANGS:
        path = data_dir / "xcopa" / "data" / lang / f"test.{lang}.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        per_lang.append([(f"{r['premise']} {CONNECTOR[r['question']]}", [" " + r["choice1"], " " + r["choice2"]])
                         for r in rows])
    out = []
    for k in range(max(map(len, per_lang))):
        for rows in per_lang:
            if k < len(rows) and len(out) < n:
                out.append(rows[k])
    return out


def build_model(root: Path, texts: list[str], tokenizer_vocab: int = 2000) -> Path:
    """A random T5 shaped like the demo's preset, with a byte-level BPE tokenizer trained on the texts."""
    import torch
    import yaml
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=tokenizer_vocab, special_tokens=["<pad>", "</s>", "<s>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", bos_token="<s>")
    fast.save_pretrained(root)
    preset = yaml.safe_load((REPO / "src/ayakit/train/presets.yaml").read_text())["seq2seq"]["tiny"]
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=8192, feed_forward_proj="gated-gelu", tie_word_embeddings=True, is_encoder_decoder=True,
        decoder_start_token_id=fast.pad_token_id, pad_token_id=fast.pad_token_id, eos_token_id=fast.eos_token_id,
        **preset))
    model.save_pretrained(root)
    (root / "ayakit.json").write_text(json.dumps({"arch": "seq2seq"}))
    return root


def reference_backend(ref: str, model: Path, batch_size: int):
    """The seq2seq eval backend as it was at `ref` (eval/backends.py from git)."""
    code = subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:src/ayakit/eval/backends.py"], check=True,
                          capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "reference_backends.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("reference_backends", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.HFSeq2SeqBackend(model, batch_size=batch_size, device="cpu")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=400, help="XCOPA items (two choices each), round-robin over languages")
    ap.add_argument("--repeats", type=int, default=5, help="alternating repeats of each side")
    ap.add_argument("--batch-size", type=int, default=32, help="decoder rows (choices) per batch, both sides")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--tokenizer-vocab", type=int, default=2000,
                    help="BPE size trained on the items (the demo's 8k covers 100 languages, so a few languages' "
                         "text splits about as finely as a 2k BPE trained on them alone)")
    ap.add_argument("--ref", default=REF, help="git commit whose eval/backends.py is the reference")
    ap.add_argument("--data-dir", type=Path, default=None, help="public data (default $AYAKIT_DATA_DIR or ../shared/data)")
    args = ap.parse_args()
    import torch

    sys.path.insert(0, str(REPO / "src"))
    from ayakit.models.hf import HFBackend

    torch.set_num_threads(args.threads)
    data_dir = args.data_dir or Path(os.environ.get("AYAKIT_DATA_DIR", REPO.parent / "shared" / "data"))
    items = read_items(data_dir, args.items)
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(Path(tmp), [c + x for c, xs in items for x in xs], args.tokenizer_vocab)
        sides = {"models": HFBackend(model, batch_size=args.batch_size, device="cpu"),
                 "reference": reference_backend(args.ref, model, args.batch_size)}
        for b in sides.values():
            b.loglikelihood(items[:8])  # warm-up
        times: dict[str, list[float]] = {k: [] for k in sides}
        cpu: dict[str, list[float]] = {k: [] for k in sides}
        scores: dict[str, list] = {}
        for _ in range(args.repeats):
            for name, backend in sides.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                scores[name] = backend.loglikelihood(items)
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    diff = max(abs(a.logprob - b.logprob) for ra, rb in zip(scores["models"], scores["reference"])
               for a, b in zip(ra, rb))
    for name in sides:
        rates = sorted(len(items) / t for t in times[name])
        cpu_rates = sorted(len(items) / t for t in cpu[name])
        print(f"{name:10s} items/s wall median {statistics.median(rates):7.1f} (min {rates[0]:.1f}, max {rates[-1]:.1f});"
              f" per CPU-second median {statistics.median(cpu_rates):7.1f} (min {cpu_rates[0]:.1f}, "
              f"max {cpu_rates[-1]:.1f})")
    for label, table in (("wall", times), ("CPU", cpu)):
        ratios = sorted(r / m for m, r in zip(table["models"], table["reference"]))
        print(f"speed-up, {label} time (reference / models, per repeat): median {statistics.median(ratios):.2f}x "
              f"(min {ratios[0]:.2f}, max {ratios[-1]:.2f})")
    print(f"largest |score difference| {diff:.2e} nats")
    print(f"{len(items)} items, batch {args.batch_size}, {args.threads} thread(s), BPE {args.tokenizer_vocab}, "
          f"ref {args.ref}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
