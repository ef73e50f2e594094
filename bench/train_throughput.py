"""Training throughput: ayakit (exact packing) vs HF Seq2SeqTrainer + DataCollatorForSeq2Seq (dynamic padding).

Same tiny seq2seq model (same preset, same seed, same initial weights), same mixture, same examples, one epoch
each, same optimiser and learning rate, same threads, in one process. Prints target tokens per second for both,
their ratio, the final training loss each tool logs, the held-out loss of both models measured the same way
(token-mean cross-entropy over unpacked held-out examples), and ayakit's model-FLOPs utilisation against a
matmul peak measured in the same run.

    python bench/train_throughput.py [--run-dir DIR] [--examples 4000] [--threads 2]

--run-dir: a run whose data/ holds a mixture (e.g. from `ayakit data build recipes/demo.yaml`); without it the
demo mixture is built into a temporary directory (embedded sources; synthetic examples if that fails).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def demo_mixture(work: Path, n: int) -> Path:
    """A run dir with n examples of the demo mixture (or synthetic multilingual ones if it cannot be built)."""
    import pyarrow.parquet as pq

    from ayakit.records import examples_to_table, table_to_examples

    src = work / "demo"
    cmd = [sys.executable, "-m", "ayakit.cli", "data", "build", str(REPO / "recipes" / "demo.yaml"), "--run-dir",
           str(src), f"data.budget={max(n, 2000)}"]
    built = subprocess.run(cmd, capture_output=True, text=True).returncode == 0
    if built:
        tables = [pq.read_table(p) for p in sorted((src / "data").glob("shards-*.parquet"))]
        examples = [e for t in tables for e in table_to_examples(t)]
    else:
        sys.path.insert(0, str(REPO / "bench"))
        from gpu_bf16_check import synthetic_examples

        examples = synthetic_examples(n)
    random.Random(0).shuffle(examples)
    run = work / "run"
    (run / "data").mkdir(parents=True)
    pq.write_table(examples_to_table(examples[:n]), run / "data" / "shards-00000.parquet")
    print(f"mixture: {min(n, len(examples))} examples ({'demo, embedded sources' if built else 'synthetic'})")
    return run


def matmul_peak(threads: int, size: int = 1024, seconds: float = 3.0) -> float:
    """Measured fp32 matmul FLOP/s on this machine with these threads (best of repeated products)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - t))
    return best


def model_flops(model, src_tokens: int, tgt_tokens: int) -> float:
    """Training FLOPs (6 per weight per token: forward + backward) of an encoder-decoder, embeddings excluded,
    the tied output layer included, attention score FLOPs ignored (small at these lengths)."""
    enc = sum(p.numel() for n, p in model.encoder.named_parameters() if "embed_tokens" not in n)
    dec = sum(p.numel() for n, p in model.decoder.named_parameters() if "embed_tokens" not in n)
    head = model.config.d_model * model.config.vocab_size
    return 6 * (enc * src_tokens + (dec + head) * tgt_tokens)


def heldout_loss(model_dir: Path, pairs: list[tuple[list[int], list[int]]]) -> float:
    """Token-mean cross-entropy of a saved model on held-out (source, target) pairs, one example at a time."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for s, t in pairs:
            out = model(input_ids=torch.tensor([s]), labels=torch.tensor([t]))
            total += out.loss.item() * len(t)
            count += len(t)
    return total / count


def main() -> None:
    """Run both trainers and print the comparison."""
    parser = argparse.ArgumentParser(description="ayakit packing vs HF Seq2SeqTrainer, target tokens/s.")
    parser.add_argument("--run-dir", type=Path, help="run with a mixture in data/ (default: build the demo one)")
    parser.add_argument("--examples", type=int, default=4000, help="examples trained on by both (one epoch)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for both")
    parser.add_argument("--batch", type=int, default=32, help="HF examples per batch; ayakit rows sized to match")
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()

    import pyarrow.parquet as pq
    import torch
    from transformers import (AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq, Seq2SeqTrainer,
                              Seq2SeqTrainingArguments)

    from ayakit.models.encoding import encode
    from ayakit.recipe import recipe_from_dict
    from ayakit.train.dataset import is_validation
    from ayakit.train.loop import train
    from ayakit.train.model import init_model
    from ayakit.train.tokenizer import build_tokenizer, load_tokenizer

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    work = Path(tempfile.mkdtemp(prefix="ayakit-bench-"))
    try:
        if args.run_dir:
            run = work / "run"
            (run / "data").mkdir(parents=True)
            table = pq.read_table(sorted((args.run_dir / "data").glob("shards-*.parquet"))[0]).slice(0, args.examples)
            pq.write_table(table, run / "data" / "shards-00000.parquet")
        else:
            run = demo_mixture(work, args.examples)
        src_len, tgt_len = 64, 32
        base = {"name": "bench", "seed": 11, "data": {"sources": [{"name": "mix", "type": "files"}]},
                "tokenizer": {"vocab_size": 8000}, "model": {"arch": "seq2seq", "preset": "tiny"},
                "train": {"max_source_length": src_len, "max_target_length": tgt_len, "pack_source_length": 128,
                          "epochs": 1, "optimizer": "adamw", "lr": args.lr, "schedule": "constant",
                          "validation_fraction": 0.05, "checkpoint_every": 100000, "eval_every": 100000,
                          "log_every": 10, "threads": args.threads, "clip": 1.0}}
        tok_dir = build_tokenizer(recipe_from_dict(base), run)
        tok = load_tokenizer(tok_dir)
        rows = pq.read_table(run / "data" / "shards-00000.parquet").to_pylist()
        train_rows = [r for r in rows if not is_validation(r["id"], 0.05)]
        held = [r for r in rows if is_validation(r["id"], 0.05)][:300]
        enc_train = [encode(tok, r["inputs"], r["targets"], "seq2seq", src_len, tgt_len) for r in train_rows]
        enc_held = [encode(tok, r["inputs"], r["targets"], "seq2seq", src_len, tgt_len) for r in held]
        tgt_tokens = sum(len(e.target) for e in enc_train)
        src_tokens = sum(len(e.source) for e in enc_train)
        mean_per_row = 128 / (src_tokens / len(enc_train))  # examples a 128-token encoder row holds
        rows_per_step = max(1, round(args.batch / mean_per_row))
        base["train"]["batch_size"] = rows_per_step
        recipe = recipe_from_dict(base)
        peak = matmul_peak(args.threads)

        # (1) ayakit: packing, exact masks, per-sequence loss
        out = train(recipe, run)
        m = json.loads((out / "manifest.json").read_text())
        ay_tps = m["target_tokens_seen"] / m["train_seconds"]
        model = AutoModelForSeq2SeqLM.from_pretrained(out)
        ay_mfu = model_flops(model, m["tokens_seen"] - m["target_tokens_seen"], m["target_tokens_seen"]) \
            / m["train_seconds"] / peak

        # (2) HF: the same initial weights, DataCollatorForSeq2Seq dynamic padding, one epoch, same batch in examples
        init = init_model(recipe, tok_dir, work / "init")
        hf_model = AutoModelForSeq2SeqLM.from_pretrained(init)
        data = [{"input_ids": e.source, "labels": e.target} for e in enc_train]  # a map-style dataset
        hf_args = Seq2SeqTrainingArguments(
            output_dir=str(work / "hf"), per_device_train_batch_size=args.batch, num_train_epochs=1,
            learning_rate=args.lr, lr_scheduler_type="constant", optim="adamw_torch", weight_decay=0.0,
            max_grad_norm=1.0, logging_steps=10, save_strategy="no", report_to=[], use_cpu=True,
            dataloader_num_workers=0, seed=11, disable_tqdm=True)
        trainer = Seq2SeqTrainer(model=hf_model, args=hf_args, train_dataset=data,
                                 data_collator=DataCollatorForSeq2Seq(tok, model=hf_model, padding=True),
                                 processing_class=tok)
        t0 = time.perf_counter()
        result = trainer.train()
        hf_seconds = time.perf_counter() - t0
        hf_tps = tgt_tokens / hf_seconds
        hf_model.save_pretrained(work / "hf-final")
        hf_losses = [x["loss"] for x in trainer.state.log_history if "loss" in x]

        pairs = [(e.source, e.target) for e in enc_held]
        ay_held = heldout_loss(out, pairs)
        hf_held = heldout_loss(work / "hf-final", pairs)
        print(f"examples: {len(enc_train)} train, {len(pairs)} held out; threads {args.threads}; "
              f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")
        print(f"ayakit : {ay_tps:10,.0f} target tokens/s  ({m['train_seconds']:.1f} s, {m['steps']} steps of "
              f"{rows_per_step} packed rows, fill {100 * m['packing']['fill_rate']:.1f}%, "
              f"{m['packing']['examples_per_row']:.2f} examples/row)  final train loss {m['final_train_loss']:.4f}"
              f"  held-out loss {ay_held:.4f}")
        print(f"HF     : {hf_tps:10,.0f} target tokens/s  ({hf_seconds:.1f} s, {result.global_step} steps of "
              f"{args.batch} padded examples)  final train loss {hf_losses[-1] if hf_losses else float('nan'):.4f}"
              f"  held-out loss {hf_held:.4f}")
        print(f"ratio ayakit / HF: {ay_tps / hf_tps:.2f}x target tokens/s")
        print(f"ayakit model-FLOPs utilisation: {100 * ay_mfu:.1f}% of a measured fp32 matmul peak of "
              f"{peak / 1e9:.1f} GFLOP/s ({args.threads} threads)")
        if not math.isfinite(ay_held) or not math.isfinite(hf_held):
            raise SystemExit("a loss is not finite")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
