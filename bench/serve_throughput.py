"""Throughput of `ayakit serve`: 16 concurrent clients (dynamic batching) vs the same requests one at a time.

Both runs talk to the same `ayakit serve` process on loopback over HTTP with the same greedy requests, so they
generate the same tokens; the script prints requests/s and tokens/s of each and their ratio (goal: >= 4x).

    .venv/bin/python bench/serve_throughput.py                 # builds an untrained demo-size ("tiny") T5
    .venv/bin/python bench/serve_throughput.py --model runs/demo/model --clients 16 --requests 64
    .venv/bin/python bench/serve_throughput.py --engine-only --device cuda   # the batching alone, no HTTP
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path

import httpx
import yaml

PROMPTS = [
    "Translate to French: The library opens at nine.", "Write a short poem about the sea.",
    "Where is the nearest train station?", "Explain why the sky is blue.", "Nenda sokoni ukanunue ndizi.",
    "¿Cuál es la capital de Kenia?", "Résume ce texte en une phrase.", "List three fruits that are red.",
]


def build_demo_model(out: Path, preset: str) -> Path:
    """An untrained T5 of the demo preset with a Unigram tokenizer trained on the language registry's names."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    from ayakit.languages import languages

    presets = yaml.safe_load(resources.files("ayakit.train").joinpath("presets.yaml").read_text(encoding="utf-8"))

    text = [f"{lang.name} {lang.native_name} {' '.join(lang.aliases)}" for lang in languages()] + PROMPTS
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    tok.train_from_iterator(text * 5, trainers.UnigramTrainer(vocab_size=2000, special_tokens=["<pad>", "</s>", "<unk>"],
                                                               unk_token="<unk>"))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(out)
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(fast), feed_forward_proj="gated-gelu", tie_word_embeddings=True,
                   pad_token_id=fast.pad_token_id, eos_token_id=fast.eos_token_id,
                   decoder_start_token_id=fast.pad_token_id, **presets["seq2seq"][preset])
    T5ForConditionalGeneration(cfg).save_pretrained(out)
    (out / "ayakit.json").write_text(json.dumps({"arch": "seq2seq", "preset": preset, "max_source_length": 256}))
    return out


def _wait_until_up(url: str, server: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"ayakit serve exited with {server.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("ayakit serve did not come up")


def one(client: httpx.Client, prompt: str, max_tokens: int) -> int:
    """Send one chat request; return its completion tokens."""
    resp = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": prompt}],
                                                     "max_tokens": max_tokens, "temperature": 0})
    resp.raise_for_status()
    return resp.json()["usage"]["completion_tokens"]


def run(url: str, prompts: list[str], max_tokens: int, clients: int) -> tuple[float, int]:
    """Seconds and completion tokens to serve every prompt with `clients` concurrent connections."""
    with httpx.Client(base_url=url, timeout=600) as client:
        start = time.perf_counter()
        if clients == 1:
            tokens = [one(client, p, max_tokens) for p in prompts]
        else:
            with cf.ThreadPoolExecutor(clients) as pool:
                tokens = list(pool.map(lambda p: one(client, p, max_tokens), prompts))
        return time.perf_counter() - start, sum(tokens)


def run_http(model: Path, prompts: list[str], args: argparse.Namespace) -> tuple[dict, tuple, tuple, int]:
    """Both modes against one `ayakit serve` process: (model info, (s, tokens) one by one, (s, tokens) batched,
    largest batch)."""
    import contextlib
    import os
    import sys

    from ayakit.serve.loopback import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "ayakit.cli", "serve", str(model), "--port", str(port), "--max-batch",
           str(args.clients), "--max-tokens", str(max(args.max_tokens, 16)), "--log-level", "warning"]
    if args.device:
        cmd += ["--device", args.device]
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}))
    server = subprocess.Popen(cmd, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, server)
        info = httpx.get(url + "/v1/models").json()["data"][0]
        run(url, prompts[: args.clients], args.max_tokens, args.clients)  # warm-up
        one_by_one = run(url, prompts, args.max_tokens, 1)
        batched = run(url, prompts, args.max_tokens, args.clients)
        return info, one_by_one, batched, httpx.get(url + "/health").json()["max_batch_seen"]
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)


def run_engine(model: Path, prompts: list[str], args: argparse.Namespace) -> tuple[dict, tuple, tuple, int]:
    """Both modes on the engine in this process (no HTTP): batches of --clients vs one request at a time."""
    import torch

    from ayakit.serve.engine import Engine, GenRequest, SamplingParams

    if args.threads:
        torch.set_num_threads(args.threads)
    engine = Engine(model, device=args.device)
    params = SamplingParams(max_tokens=args.max_tokens, temperature=0)

    def timed(batch_size: int) -> tuple[float, int]:
        start, tokens = time.perf_counter(), 0
        for i in range(0, len(prompts), batch_size):
            done = engine.run([GenRequest(engine.encode_prompt(p), params) for p in prompts[i:i + batch_size]])
            tokens += sum(c.completion_tokens for c in done)
        if engine.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start, tokens

    timed(args.clients)  # warm-up
    info = {"arch": engine.arch, "device": engine.device}
    return info, timed(1), timed(args.clients), args.clients


def main() -> None:
    """Run both modes and print the ratio."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="model dir (default: an untrained demo-size T5 built in a temp dir)")
    ap.add_argument("--preset", default="tiny", help="preset of the built model (default: tiny, the CPU demo)")
    ap.add_argument("--clients", type=int, default=16, help="concurrent clients (default: 16)")
    ap.add_argument("--requests", type=int, default=64, help="requests in each mode (default: 64)")
    ap.add_argument("--max-tokens", type=int, default=32, help="max_tokens of each request (default: 32)")
    ap.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads of the server")
    ap.add_argument("--engine-only", action="store_true",
                    help="measure the batched engine in this process (no HTTP): batches of --clients vs one by one")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_demo_model(Path(tmp) / "model", args.preset)
        prompts = [PROMPTS[i % len(PROMPTS)] + f" ({i})" for i in range(args.requests)]
        runner = run_engine if args.engine_only else run_http
        info, (seq_s, seq_tok), (bat_s, bat_tok), max_batch = runner(model, prompts, args)
    n = len(prompts)
    result = {
        "mode": "engine (in process)" if args.engine_only else "HTTP (ayakit serve on loopback)",
        "model": str(args.model or f"untrained T5 preset {args.preset}"), "arch": info.get("arch"),
        "device": info.get("device") or args.device or "default", "threads": args.threads or "default",
        "requests": n, "max_tokens": args.max_tokens, "clients": args.clients,
        "one_at_a_time": {"seconds": seq_s, "requests_per_s": n / seq_s, "tokens_per_s": seq_tok / seq_s,
                          "tokens": seq_tok},
        "batched": {"seconds": bat_s, "requests_per_s": n / bat_s, "tokens_per_s": bat_tok / bat_s,
                    "tokens": bat_tok, "max_batch_seen": max_batch},
    }
    result["ratio_requests_per_s"] = result["batched"]["requests_per_s"] / result["one_at_a_time"]["requests_per_s"]
    result["ratio_tokens_per_s"] = result["batched"]["tokens_per_s"] / result["one_at_a_time"]["tokens_per_s"]
    print(f"{result['mode']}: {result['model']} ({result['arch']}), device {result['device']}, threads "
          f"{result['threads']}; {n} requests x max_tokens {args.max_tokens}, {args.clients} clients")
    for mode in ("one_at_a_time", "batched"):
        r = result[mode]
        print(f"{mode:>14}: {r['requests_per_s']:8.2f} req/s  {r['tokens_per_s']:9.1f} tok/s  ({r['seconds']:.2f} s)")
    print(f"ratio (batched / one at a time): {result['ratio_requests_per_s']:.2f}x requests/s, "
          f"{result['ratio_tokens_per_s']:.2f}x tokens/s (goal >= 4x)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
