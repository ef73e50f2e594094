"""Greedy generation speed: HF batched `generate` (ayakit's HF engine) vs CTranslate2 float32 and int8, in one run.

The same prompts, the same model and the same batch size for every engine; repeats alternate the engines' order
(HF, ct2 float32, ct2 int8, then reversed). Prints, per model and engine, generated tokens per second (median and
range over repeats), the speed ratio against HF measured within each repeat (median and range), the share of
outputs identical to HF's (token ids and text), and the load average around every timed call. With --score N
(default 128), also loglikelihood of N prompts x 4 choices on the demo model: pairs/s, ratio, the largest
log-probability difference and the share of items whose best choice is the same.

Models: the demo-size model (preset `tiny`, ~6.7M parameters with an 8k vocabulary; random weights unless
--model gives a trained one) and a ~60M-parameter mT5-small-shaped model (d_model 512, 8+8 layers, 6 heads,
unscaled output layer, 40k embedding rows of which the tokenizer's 8k are used), both with a SentencePiece
tokenizer trained here on CLDR text (babel). Random weights are redrawn (see build_model) so that greedy outputs
vary (a freshly initialised T5 repeats <pad>, which would make "identical outputs" vacuous) while activations stay
well-conditioned, as a trained model's are. A random model never stops early: every engine decodes all
--max-new-tokens for every prompt. Goal: >= 3x for the demo model in float32 with 100% identical outputs.

    python bench/generate.py                       # both models, 3 repeats, 1 thread
    python bench/generate.py --model runs/demo/model --threads 2 --skip-large
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from importlib import resources
from pathlib import Path

import yaml

INSTRUCTIONS = ["Translate to English:", "Summarise in one sentence:", "Answer the question:",
                "Write a short story about", "Which language is this?", "Continue the text:"]
LARGE_VOCAB = 40000  # mT5-small's body (~40M) + a 40k x 512 embedding: ~60M parameters
EMBED_STD = 1.0  # T5's own initialisation of the embeddings
MT5_SMALL_BODY = {"d_model": 512, "d_ff": 1024, "d_kv": 64, "num_heads": 6, "num_layers": 8,
                  "num_decoder_layers": 8, "dropout_rate": 0.0}


def cldr_texts() -> dict[str, list[str]]:
    """Per language of the registry, CLDR display names (languages, territories) in that language (babel)."""
    from babel import Locale, UnknownLocaleError

    from ayakit.languages import languages

    out = {}
    for lang in languages():
        try:
            loc = Locale.parse(lang.iso1 or lang.code)
        except (UnknownLocaleError, ValueError):
            continue
        names = [n for n in list(loc.languages.values()) + list(loc.territories.values()) if n]
        if names:
            out[lang.code] = names
    return out


def build_tokenizer(texts: dict[str, list[str]], vocab: int, out: Path):
    """A SentencePiece unigram model with byte fallback and ayakit's special ids, saved as an HF tokenizer."""
    import sentencepiece as spm

    from ayakit.train.tokenizer import hf_tokenizer_from_spm

    lines = [" ".join(names[i:i + 12]) for names in texts.values() for i in range(0, len(names), 12)]
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=proto, vocab_size=vocab, model_type="unigram", byte_fallback=True,
        hard_vocab_limit=False, character_coverage=0.9995, pad_id=0, eos_id=1, unk_id=2, bos_id=3,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>", bos_piece="<s>", num_threads=1, minloglevel=2)
    tok = hf_tokenizer_from_spm(proto.getvalue())
    tok.save_pretrained(out)
    return tok


def build_model(out: Path, tok, fields: dict, vocab: int, tie: bool, std: float, seed: int = 0) -> Path:
    """A random T5 (gated-gelu, as ayakit's presets), vocabulary padded to vocab: weight matrices redrawn from
    N(0, std), embeddings from N(0, EMBED_STD) (rows past the tokenizer near 0), norms left at 1.

    Freshly initialised, a T5 repeats <pad>; with every weight from N(0, 0.3), next-token distributions are so flat
    that top-2 logits 1e-5 apart occur (2-5 in 128-256 prompts) and float32 rounding picks either; with N(0, 4)
    embeddings, activations grow until the engines' rounding differs by tenths of a logit. These settings give
    varied text and well-conditioned sums, as a trained model has."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=max(vocab, len(tok)), feed_forward_proj="gated-gelu", tie_word_embeddings=tie,
                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                   decoder_start_token_id=tok.pad_token_id, **fields)
    model = T5ForConditionalGeneration(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "shared" in name or "lm_head" in name:
                p.normal_(0.0, EMBED_STD)
                p[len(tok):].normal_(0.0, 1e-3)  # rows past the tokenizer (padding, as mT5's) never win argmax
            elif p.dim() > 1:
                p.normal_(0.0, std)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "ayakit.json").write_text(json.dumps({"arch": "seq2seq", "max_source_length": 64,  # as recipes/demo.yaml
                                                 "max_target_length": 32}))
    return out


def make_prompts(texts: dict[str, list[str]], n: int, seed: int = 0) -> list[str]:
    """n prompts of 3-30 CLDR words in one language each, after an English instruction."""
    rng = random.Random(seed)
    codes = sorted(texts)
    out = []
    for i in range(n):
        names = texts[codes[i % len(codes)]]
        words = rng.sample(names, min(len(names), rng.randint(3, 30)))
        out.append(f"{rng.choice(INSTRUCTIONS)} {' '.join(words)}")
    return out


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


class Counted:
    """Wraps an engine's generate and counts generated token ids (HF: non-pad output ids; ct2: decoded ids)."""

    def __init__(self, name: str, backend) -> None:  # noqa: ANN001
        self.name, self.backend, self.tokens = name, backend, 0
        if hasattr(backend, "_decode"):
            inner = backend._decode

            def decode(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
                ids = inner(*args, **kwargs)
                self.tokens += sum(len(s) for s in ids)
                self.ids.extend(ids)
                return ids
            backend._decode = decode
        else:
            model, eos = backend.model, backend.tokenizer.eos_token_id
            inner = model.generate

            def generate(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
                out = inner(*args, **kwargs)
                for row in out.tolist():
                    ids = row[1:]  # after the decoder start token, up to eos (padding follows it)
                    ids = ids[: ids.index(eos)] if eos in ids else ids
                    self.tokens += len(ids)
                    self.ids.append(ids)
                return out
            model.generate = generate
        self.ids: list[list[int]] = []

    def run(self, prompts: list[str], max_new: int) -> tuple[list[str], float, int, str]:
        from ayakit.models import GenerationParams

        self.tokens, self.ids = 0, []
        before = load()
        t = time.perf_counter()
        texts = self.backend.generate(prompts, GenerationParams(max_new_tokens=max_new))
        return texts, time.perf_counter() - t, self.tokens, f"{before} -> {load()}"


def bench_model(label: str, path: Path, prompts: list[str], args: argparse.Namespace) -> dict:
    import torch

    from ayakit.models import load_backend
    from ayakit.models.ct2 import CT2Backend

    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    engines = [Counted("hf", load_backend(str(path), batch_size=args.batch_size, threads=args.threads))]
    for ct in args.compute_types:
        t = time.perf_counter()
        backend = CT2Backend(path, batch_size=args.batch_size, threads=args.threads, compute_type=ct)
        print(f"  ct2 {ct}: conversion (or cache hit) + load {time.perf_counter() - t:.1f} s", flush=True)
        engines.append(Counted(f"ct2-{ct}", backend))
    for e in engines:  # warm-up, untimed
        e.run(prompts[:4], 4)
    rows: dict[str, list] = {e.name: [] for e in engines}
    for rep in range(args.repeats):
        order = engines if rep % 2 == 0 else engines[::-1]
        for e in order:
            texts, secs, tokens, loads = e.run(prompts, args.max_new_tokens)
            rows[e.name].append({"seconds": secs, "tokens": tokens, "texts": texts, "ids": e.ids, "load": loads})
            print(f"  repeat {rep + 1} {e.name:>12}: {secs:7.2f} s  {tokens / secs:8.1f} tok/s  load {loads}",
                  flush=True)
    hf = rows["hf"]
    summary: dict = {"model": label, "path": str(path), "prompts": len(prompts), "threads": args.threads,
                     "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens, "engines": {}}
    for name, runs in rows.items():
        speed = [r["tokens"] / r["seconds"] for r in runs]
        ratio = [h["seconds"] / r["seconds"] for h, r in zip(hf, runs)]
        same_text = statistics.mean(a == b for a, b in zip(hf[0]["texts"], runs[0]["texts"]))
        # engines return ids in their own batch order: the share of HF's id sequences that this engine also produced
        common = Counter(map(tuple, hf[0]["ids"])) & Counter(map(tuple, runs[0]["ids"]))
        same_ids = sum(common.values()) / max(1, len(hf[0]["ids"]))
        summary["engines"][name] = {
            "tokens_per_s_median": statistics.median(speed), "tokens_per_s_range": [min(speed), max(speed)],
            "seconds": [r["seconds"] for r in runs], "tokens": runs[0]["tokens"],
            "ratio_vs_hf_median": statistics.median(ratio), "ratio_vs_hf_range": [min(ratio), max(ratio)],
            "identical_text": same_text, "identical_ids": same_ids, "load": [r["load"] for r in runs]}
    return summary


def bench_scoring(label: str, path: Path, prompts: list[str], args: argparse.Namespace) -> dict:
    """loglikelihood of 4 choices per prompt (the choice tasks' call): HF vs CTranslate2 float32, alternating."""
    from ayakit.models import load_backend
    from ayakit.models.ct2 import CT2Backend

    rng = random.Random(2)
    words = [w for p in prompts for w in p.split()[4:]]
    requests = [(p, [" " + " ".join(rng.sample(words, rng.randint(1, 4))) for _ in range(4)]) for p in prompts]
    engines = {"hf": load_backend(str(path), batch_size=args.batch_size, threads=args.threads),
               "ct2-float32": CT2Backend(path, batch_size=args.batch_size, threads=args.threads,
                                         compute_type="float32")}
    for b in engines.values():
        b.loglikelihood(requests[:4])
    times: dict[str, list[float]] = {k: [] for k in engines}
    out: dict[str, list] = {}
    for rep in range(args.repeats):
        for name in (list(engines) if rep % 2 == 0 else list(engines)[::-1]):
            before = load()
            t = time.perf_counter()
            out[name] = engines[name].loglikelihood(requests)
            times[name].append(time.perf_counter() - t)
            print(f"  scoring repeat {rep + 1} {name:>12}: {times[name][-1]:7.2f} s  load {before} -> {load()}",
                  flush=True)
    hf, ct = out["hf"], out["ct2-float32"]
    pairs = [(a, b) for ra, rb in zip(hf, ct) for a, b in zip(ra, rb)]
    ratio = [h / c for h, c in zip(times["hf"], times["ct2-float32"])]
    best = statistics.mean(max(range(4), key=lambda j: ra[j].logprob) == max(range(4), key=lambda j: rb[j].logprob)
                           for ra, rb in zip(hf, ct))
    return {"model": label, "requests": len(requests), "pairs": len(pairs), "seconds": times,
            "ratio_median": statistics.median(ratio), "ratio_range": [min(ratio), max(ratio)],
            "max_abs_logprob_diff": max(abs(a.logprob - b.logprob) for a, b in pairs),
            "max_rel_logprob_diff": max(abs(a.logprob - b.logprob) / max(1e-9, abs(a.logprob)) for a, b in pairs),
            "mean_abs_logprob": statistics.mean(abs(a.logprob) for a, _ in pairs),
            "same_is_greedy": statistics.mean(a.is_greedy == b.is_greedy for a, b in pairs),
            "same_best_choice": best}


def report_scoring(s: dict) -> None:
    hf, ct = (statistics.median(s["seconds"][k]) for k in ("hf", "ct2-float32"))
    print(f"\n{s['model']}: loglikelihood of {s['requests']} prompts x 4 choices ({s['pairs']} pairs)")
    print(f"  hf {s['pairs'] / hf:.1f} pairs/s, ct2-float32 {s['pairs'] / ct:.1f} pairs/s (medians): "
          f"{s['ratio_median']:.2f}x (range {s['ratio_range'][0]:.2f}-{s['ratio_range'][1]:.2f}x)")
    print(f"  max |logprob difference| {s['max_abs_logprob_diff']:.2e} nats (relative {s['max_rel_logprob_diff']:.1e}; "
          f"mean |logprob| {s['mean_abs_logprob']:.1f}); same best choice "
          f"{100 * s['same_best_choice']:.1f}%; same is_greedy {100 * s['same_is_greedy']:.1f}%")


def report(summary: dict) -> None:
    print(f"\n{summary['model']}: {summary['prompts']} prompts, greedy, {summary['max_new_tokens']} new tokens, "
          f"batch {summary['batch_size']}, {summary['threads']} thread(s)")
    print(f"  {'engine':>12} {'tok/s median':>13} {'range':>19} {'x HF median':>12} {'range':>15} "
          f"{'same text':>10} {'same ids':>9}")
    for name, e in summary["engines"].items():
        lo, hi = e["tokens_per_s_range"]
        rlo, rhi = e["ratio_vs_hf_range"]
        print(f"  {name:>12} {e['tokens_per_s_median']:13.1f} {f'{lo:.1f}-{hi:.1f}':>19} "
              f"{e['ratio_vs_hf_median']:11.2f}x {f'{rlo:.2f}-{rhi:.2f}x':>15} {100 * e['identical_text']:9.1f}% "
              f"{100 * e['identical_ids']:8.1f}%")


def main() -> None:
    """Build (or take) the models, time every engine with alternating repeats, print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="a trained demo model dir (default: a random demo-size T5)")
    ap.add_argument("--prompts", type=int, default=256, help="prompts for the demo model (default: 256)")
    ap.add_argument("--prompts-large", type=int, default=64, help="prompts for the 60M model (default: 64)")
    ap.add_argument("--max-new-tokens", type=int, default=32, help="greedy new tokens per prompt (default: 32)")
    ap.add_argument("--batch-size", type=int, default=32, help="batch size of every engine (default: 32)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads of every engine (default: 1)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating repeats (default: 3)")
    ap.add_argument("--compute-types", nargs="+", default=["float32", "int8"],
                    help="CTranslate2 compute types to time (default: float32 int8)")
    ap.add_argument("--skip-large", action="store_true", help="only the demo-size model")
    ap.add_argument("--score", type=int, default=128, metavar="N",
                    help="also time loglikelihood (N prompts x 4 choices) on the demo model; 0 to skip "
                         "(default: 128)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()

    presets = yaml.safe_load(resources.files("ayakit.train").joinpath("presets.yaml").read_text(encoding="utf-8"))
    results = []
    print(f"load average at start: {load()} (1/5/15 min); {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        texts = cldr_texts()
        tok = build_tokenizer(texts, 8000, root / "tokenizer")
        print(f"tokenizer: {len(tok)} pieces from CLDR text of {len(texts)} languages", flush=True)
        if args.model:
            demo, label = args.model, f"demo model {args.model}"
            prompts = make_prompts(texts, args.prompts)
        else:
            demo = build_model(root / "demo", tok, presets["seq2seq"]["tiny"], 8000, tie=True, std=0.1)
            label = "demo-size T5 (preset tiny, random weights)"
            prompts = make_prompts(texts, args.prompts)
        print(f"\n== {label}", flush=True)
        results.append(bench_model(label, demo, prompts, args))
        scoring = bench_scoring(label, demo, prompts[: args.score], args) if args.score else None
        if not args.skip_large:
            large = build_model(root / "large", tok, MT5_SMALL_BODY, LARGE_VOCAB, tie=False, std=0.05)
            import torch
            from transformers import T5ForConditionalGeneration

            n = sum(p.numel() for p in T5ForConditionalGeneration.from_pretrained(large, dtype=torch.float32)
                    .parameters())
            label = f"mT5-small-shaped T5 ({n / 1e6:.0f}M parameters, random weights)"
            print(f"\n== {label}", flush=True)
            results.append(bench_model(label, large, make_prompts(texts, args.prompts_large, seed=1), args))
    for summary in results:
        report(summary)
    if scoring:
        report_scoring(scoring)
    print(f"\nload average at end: {load()}")
    if args.json:
        args.json.write_text(json.dumps({"generation": results, "scoring": scoring}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
