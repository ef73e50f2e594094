"""A short bf16 check of the training loop on one GPU (not a test: CI has no GPU).

Runs, on a synthetic multilingual mixture: (1) packed-vs-unpacked loss parity on the GPU in fp32 and bf16,
(2) `train()` of the tiny seq2seq and causal presets in bf16 (loss must fall, no NaN), (3) the same seq2seq run
under `accelerate launch` with recipes/accelerate/fsdp.yaml on one process. Prints one JSON summary line.

    python bench/gpu_bf16_check.py [--out DIR] [--steps 60]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

ALPHABETS = {"eng": "abcdefghijklmnopqrstuvwxyz", "rus": "абвгдежзийклмнопрстуфхцчшщыэюя",
             "hin": "कखगघचछजझटठडढतथदधनपफबभमयरलवशसह", "ell": "αβγδεζηθικλμνξοπρστυφχψω",
             "amh": "ሀለሐመሠረሰሸቀበተቸኀነኘአከኸወዐዘዠየደጀገጠጨጰጸፀፈፐ"}


def synthetic_examples(n: int, seed: int = 0) -> list:
    """Learnable instruction pairs in 5 scripts: reverse, copy or sort a few made-up words."""
    from ayakit.records import Example

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        lang, letters = rng.choice(list(ALPHABETS.items()))
        words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 6))) for _ in range(rng.randint(1, 5))]
        task = rng.choice(["reverse", "copy", "sort"])
        target = {"reverse": words[::-1], "copy": words, "sort": sorted(words)}[task]
        out.append(Example(inputs=f"{task.capitalize()} the words: {' '.join(words)}", targets=" ".join(target),
                           language=lang, source="synthetic", dataset=task, task=task, kind="synthetic"))
    return out


def write_run(root: Path, examples: list, recipe: dict) -> Path:
    """A run directory with the mixture and recipe.yaml."""
    import pyarrow.parquet as pq
    import yaml

    from ayakit.records import examples_to_table

    (root / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(examples_to_table(examples), root / "data" / "shards-00000.parquet")
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return root


def recipe_dict(arch: str, steps: int, precision: str) -> dict:
    """A recipe for the tiny preset in `precision`."""
    return {"name": f"gpu-{arch}", "seed": 3, "data": {"sources": [{"name": "synthetic", "type": "files"}]},
            "tokenizer": {"vocab_size": 1000},
            "model": {"arch": arch, "preset": "tiny"},
            "train": {"max_source_length": 64, "max_target_length": 48, "pack_source_length": 256,
                      "batch_size": 32, "steps": steps, "optimizer": "adamw", "lr": 2e-3, "warmup_steps": 10,
                      "schedule": "cosine", "precision": precision, "checkpoint_every": 1000, "eval_every": 1000,
                      "log_every": 5, "validation_fraction": 0.02}}


def parity(device: str) -> dict:
    """Max |packed - unpacked| per-example loss on the device, fp32 and bf16 autocast, both architectures."""
    import torch
    import torch.nn.functional as F
    from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

    from ayakit.models.packed import collate
    from ayakit.models.packed_lm import PackedLM
    from ayakit.train.packing import pack_rows

    rng = random.Random(1)
    src = [[rng.randrange(4, 200) for _ in range(rng.randint(2, 30))] + [1] for _ in range(64)]
    tgt = [[rng.randrange(4, 200) for _ in range(rng.randint(1, 20))] + [1] for _ in range(64)]
    result = {}
    for arch in ("seq2seq", "causal"):
        torch.manual_seed(0)
        if arch == "seq2seq":
            model = T5ForConditionalGeneration(T5Config(vocab_size=200, d_model=64, d_ff=128, d_kv=16, num_heads=4,
                                                        num_layers=2, dropout_rate=0.0, decoder_start_token_id=0,
                                                        feed_forward_proj="gated-gelu"))
            sources = src
        else:
            model = LlamaForCausalLM(LlamaConfig(vocab_size=200, hidden_size=64, intermediate_size=128,
                                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2))
            sources = [[3] + s[:-1] for s in src]
        model.to(device).eval()
        order = list(range(64))
        rows = pack_rows([len(s) + (len(t) if arch == "causal" else 0) for s, t in zip(sources, tgt)],
                         [len(t) for t in tgt] if arch == "seq2seq" else None, 128, 64 if arch == "seq2seq" else None,
                         order)
        for dtype in (torch.float32, torch.bfloat16):
            with torch.no_grad(), torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
                ref = []
                for s, t in zip(sources, tgt):
                    if arch == "seq2seq":
                        logits = model(input_ids=torch.tensor([s], device=device),
                                       labels=torch.tensor([t], device=device)).logits[0]
                    else:
                        logits = model(input_ids=torch.tensor([s + t], device=device)).logits[0][len(s) - 1:-1]
                    ref.append(F.cross_entropy(logits.float(), torch.tensor(t, device=device)).item())
                batch, _ = collate(rows, sources, tgt, arch, 0, 0, "sequence")
                batch = {k: v.to(device) for k, v in batch.items()}
                packed = PackedLM(model, arch, mask_dtype=dtype)(batch).item()
            result[f"{arch}_{str(dtype).split('.')[-1]}_abs_diff_sum_of_losses"] = abs(packed - sum(ref))
    return result


def main() -> None:
    """Run the checks and print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--only-fsdp", action="store_true", help="run only the FSDP launch check")
    args = parser.parse_args()
    import torch

    from ayakit.recipe import load_recipe
    from ayakit.train.loop import train

    summary: dict = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                     "torch": torch.__version__}
    import transformers

    summary["transformers"] = transformers.__version__
    examples = synthetic_examples(20000)
    root = Path(tempfile.mkdtemp())
    if not args.only_fsdp:
        summary["parity"] = parity("cuda" if torch.cuda.is_available() else "cpu")
    for arch in (("seq2seq",) if args.only_fsdp else ("seq2seq", "causal")):
        run = write_run(root / arch, examples, recipe_dict(arch, args.steps, "bf16"))
        t0 = time.time()
        out = train(load_recipe(run / "recipe.yaml"), run)
        manifest = json.loads((out / "manifest.json").read_text())
        losses = [json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines()
                  if json.loads(x)["split"] == "train"]
        summary[arch] = {"first_loss": losses[0], "final_loss": losses[-1], "val_loss": manifest["final_val_loss"],
                         "finite": all(math.isfinite(x) for x in losses), "falls": losses[-1] < 0.5 * losses[0],
                         "tokens_per_s": manifest["tokens_per_s"], "fill_rate": manifest["packing"]["fill_rate"],
                         "examples_per_row": manifest["packing"]["examples_per_row"], "wall_s": time.time() - t0}
    run = write_run(root / "fsdp", examples, recipe_dict("seq2seq", 20, "bf16"))
    (run / "tokenizer").symlink_to(root / "seq2seq" / "tokenizer")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(REPO / "recipes" / "accelerate" / "fsdp.yaml"), "--num_processes", "1", "-m", "ayakit.cli", "train",
           str(run)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400)
    errors = [line for line in (proc.stdout + proc.stderr).splitlines()
              if "Error" in line or "error" in line or "raise" in line]
    fsdp = {"returncode": proc.returncode, "errors": errors[:12], "tail": (proc.stdout + proc.stderr)[-600:]}
    if proc.returncode == 0:
        m = json.loads((run / "model" / "manifest.json").read_text())
        fsdp.update(final_loss=m["final_train_loss"], tokens_per_s=m["tokens_per_s"])
        fsdp["tail"] = fsdp["tail"][-300:]
    summary["fsdp_1proc"] = fsdp
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_bf16_check.json").write_text(text)


if __name__ == "__main__":
    main()
