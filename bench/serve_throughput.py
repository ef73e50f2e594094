"""Throughput and latency of `ayakit serve`, on the hf engine, the ctranslate2 engine, or both side by side.

Throughput (default): 16 concurrent clients (batching) vs the same requests one at a time, against the same
`ayakit serve` process on loopback with the same greedy requests; prints requests/s, tokens/s and the ratio (goal
>= 4x). With `--engine both`, one server per engine, repeats alternating between them; also prints the
ctranslate2 / hf ratio of batched tokens/s with its spread.

Latency (--latency): short requests arriving one by one while long ones keep the server busy, against two
`ayakit serve` processes of the same model, the same load on each, repeats alternating between them; prints the
short requests' p50 / p95 latency per server, the ratio of the p50s with its spread over repeats, and the load
average. One engine: its own batching (hf: continuous; ctranslate2: asynchronous) against `--batching static`
(goal >= 2x). `--engine both`: hf continuous against ctranslate2 asynchronous.

    .venv/bin/python bench/serve_throughput.py                 # builds an untrained demo-size ("tiny") T5
    .venv/bin/python bench/serve_throughput.py --model runs/demo/model --clients 16 --requests 64
    .venv/bin/python bench/serve_throughput.py --engine both --threads 1 --repeats 3
    .venv/bin/python bench/serve_throughput.py --engine-only --device cuda   # the batching alone, no HTTP
    .venv/bin/python bench/serve_throughput.py --latency --engine ctranslate2 --repeats 3 --threads 1
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
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


DYNAMIC = {"hf": "continuous", "ctranslate2": "asynchronous"}  # each engine's own batching


@contextlib.contextmanager
def serve(model: Path, args: argparse.Namespace, batching: str | None = None, max_tokens: int = 16,
          max_batch: int | None = None, engine: str = "hf") -> Iterator[str]:
    """`ayakit serve` of the model in a subprocess while the block runs; yields its URL."""
    from ayakit.serve.loopback import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "ayakit.cli", "serve", str(model), "--port", str(port), "--max-batch",
           str(max_batch or args.clients), "--max-tokens", str(max_tokens), "--log-level", "warning",
           "--batching", batching or DYNAMIC[engine], "--engine", engine]
    if args.device:
        cmd += ["--device", args.device]
    if engine == "ctranslate2":
        cmd += ["--workers", str(args.workers)]
        if args.compute_type:
            cmd += ["--compute-type", args.compute_type]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}))
    server = subprocess.Popen(cmd, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, server)
        yield url
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)


def run_http(model: Path, prompts: list[str], args: argparse.Namespace, engine: str = "hf"
             ) -> tuple[dict, tuple, tuple, int]:
    """Both modes against one `ayakit serve` process: (model info, (s, tokens) one by one, (s, tokens) batched,
    largest batch)."""
    with serve(model, args, max_tokens=max(args.max_tokens, 16), engine=engine) as url:
        info = httpx.get(url + "/v1/models").json()["data"][0]
        run(url, prompts[: args.clients], args.max_tokens, args.clients)  # warm-up
        one_by_one = run(url, prompts, args.max_tokens, 1)
        batched = run(url, prompts, args.max_tokens, args.clients)
        return info, one_by_one, batched, httpx.get(url + "/health").json()["max_batch_seen"]


def run_engines_http(model: Path, prompts: list[str], args: argparse.Namespace) -> dict:
    """hf and ctranslate2 servers side by side, repeats alternating: per engine and repeat, (s, tokens) one by one
    and batched; the largest batch each server saw."""
    engines = ("hf", "ctranslate2")
    out: dict = {e: {"one_at_a_time": [], "batched": []} for e in engines}
    with contextlib.ExitStack() as stack:
        urls = {e: stack.enter_context(serve(model, args, max_tokens=max(args.max_tokens, 16), engine=e))
                for e in engines}
        for e in engines:  # warm-up
            run(urls[e], prompts[: args.clients], args.max_tokens, args.clients)
        for r in range(args.repeats):
            for e in (engines if r % 2 == 0 else engines[::-1]):
                out[e]["one_at_a_time"].append(run(urls[e], prompts, args.max_tokens, 1))
                out[e]["batched"].append(run(urls[e], prompts, args.max_tokens, args.clients))
                b_s, b_tok = out[e]["batched"][-1]
                o_s, o_tok = out[e]["one_at_a_time"][-1]
                print(f"repeat {r + 1} {e:>11}: one at a time {o_tok / o_s:8.1f} tok/s, batched {b_tok / b_s:8.1f} "
                      f"tok/s; load {os.getloadavg()[0]:.2f}", flush=True)
        for e in engines:
            out[e]["max_batch_seen"] = httpx.get(urls[e] + "/health").json()["max_batch_seen"]
    return out


def short_latencies(url: str, args: argparse.Namespace) -> dict:
    """Latencies (s) of short requests sent one every --short-interval s while --long-clients keep long ones going."""
    stop = threading.Event()
    long_tokens: list[int] = []

    def keep_busy(i: int) -> None:
        with httpx.Client(base_url=url, timeout=600) as client:
            while not stop.is_set():
                long_tokens.append(one(client, PROMPTS[i % len(PROMPTS)], args.long_tokens))

    def short(i: int) -> float:
        time.sleep(i * args.short_interval)
        with httpx.Client(base_url=url, timeout=600) as client:
            start = time.perf_counter()
            one(client, PROMPTS[(i + 3) % len(PROMPTS)] + f" ({i})", args.short_tokens)
            return time.perf_counter() - start

    with cf.ThreadPoolExecutor(args.long_clients + args.short_requests) as pool:
        busy = [pool.submit(keep_busy, i) for i in range(args.long_clients)]
        deadline = time.monotonic() + 60
        while _in_flight(url) < args.long_clients and time.monotonic() < deadline:
            time.sleep(0.05)  # the long requests are in the server (decoding, or waiting for a ctranslate2 worker)
        latencies = list(pool.map(short, range(args.short_requests)))
        stop.set()
        for f in busy:
            f.result()
    return {"latencies": latencies, "long_tokens_mean": statistics.mean(long_tokens) if long_tokens else 0,
            "long_requests": len(long_tokens)}


def _in_flight(url: str) -> int:
    health = httpx.get(url + "/health").json()
    return health["running"] + health["queued"]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_servers(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The (engine, batching) pairs --latency compares: the first is the reference of the ratios."""
    if args.engine == "both":
        return [("hf", "continuous"), ("ctranslate2", "asynchronous")]
    return [(args.engine, DYNAMIC[args.engine]), (args.engine, "static")]


def run_latency(model: Path, args: argparse.Namespace) -> dict:
    """Two servers under the same load, repeats alternating; returns per-server percentiles and p50 ratios."""
    servers = latency_servers(args)
    names = [f"{e}/{b}" for e, b in servers]
    results: dict[str, list[dict]] = {n: [] for n in names}
    with contextlib.ExitStack() as stack:
        urls = {n: stack.enter_context(serve(model, args, b, max_tokens=max(args.long_tokens, args.short_tokens),
                                             max_batch=args.long_clients + args.short_requests, engine=e))
                for n, (e, b) in zip(names, servers)}
        for n in names:  # warm-up
            run(urls[n], PROMPTS, args.short_tokens, len(PROMPTS))
        for r in range(args.repeats):
            for n in (names if r % 2 == 0 else names[::-1]):
                out = short_latencies(urls[n], args)
                out["p50"], out["p95"] = _pct(out["latencies"], 0.5), _pct(out["latencies"], 0.95)
                results[n].append(out)
                print(f"repeat {r + 1} {n:>24}: short p50 {out['p50']:.3f} s  p95 {out['p95']:.3f} s  "
                      f"(long requests done: {out['long_requests']}, mean {out['long_tokens_mean']:.0f} tokens; "
                      f"load {os.getloadavg()[0]:.2f})", flush=True)
    ratios = [b["p50"] / a["p50"] for a, b in zip(results[names[0]], results[names[1]])]
    return {"modes": results, "p50_ratio": ratios, "ratio_of": f"{names[1]} / {names[0]}"}


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
    ap.add_argument("--latency", action="store_true",
                    help="measure short-request latency under long-request load, continuous vs static batching")
    ap.add_argument("--long-clients", type=int, default=4, help="--latency: clients sending long requests (4)")
    ap.add_argument("--long-tokens", type=int, default=128, help="--latency: max_tokens of a long request (128)")
    ap.add_argument("--short-requests", type=int, default=12, help="--latency: short requests per repeat (12)")
    ap.add_argument("--short-tokens", type=int, default=8, help="--latency: max_tokens of a short request (8)")
    ap.add_argument("--short-interval", type=float, default=0.25,
                    help="--latency: seconds between short requests (0.25)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats per server, alternating (3)")
    ap.add_argument("--engine", default="hf", choices=("hf", "ctranslate2", "both"),
                    help="who decodes: hf, ctranslate2, or both side by side (default: hf)")
    ap.add_argument("--compute-type", default=None, help="ctranslate2: compute type (default: float32 on CPU)")
    ap.add_argument("--workers", type=int, default=2, help="ctranslate2: batches decoded at the same time (2)")
    args = ap.parse_args()
    if args.latency:
        main_latency(args)
        return

    if args.engine == "both":
        if args.engine_only:
            raise SystemExit("--engine-only measures the hf engine in this process; drop --engine both")
        main_engines(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_demo_model(Path(tmp) / "model", args.preset)
        prompts = [PROMPTS[i % len(PROMPTS)] + f" ({i})" for i in range(args.requests)]
        if args.engine_only:
            info, (seq_s, seq_tok), (bat_s, bat_tok), max_batch = run_engine(model, prompts, args)
        else:
            info, (seq_s, seq_tok), (bat_s, bat_tok), max_batch = run_http(model, prompts, args, args.engine)
    n = len(prompts)
    result = {
        "mode": "engine (in process)" if args.engine_only else f"HTTP (ayakit serve --engine {args.engine})",
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


def main_latency(args: argparse.Namespace) -> None:
    """The --latency run: print and (with --json) write the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_demo_model(Path(tmp) / "model", args.preset)
        print(f"latency: {args.model or f'untrained T5 preset {args.preset}'}, engine {args.engine}, threads "
              f"{args.threads or 'default'}; "
              f"{args.long_clients} clients keep {args.long_tokens}-token requests going, {args.short_requests} "
              f"short requests ({args.short_tokens} tokens) one every {args.short_interval} s; load "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        result = run_latency(model, args)
    for m, runs in result["modes"].items():
        p50 = [r["p50"] for r in runs]
        p95 = [r["p95"] for r in runs]
        print(f"{m:>10}: short p50 median {statistics.median(p50):.3f} s (range {min(p50):.3f}-{max(p50):.3f}), "
              f"p95 median {statistics.median(p95):.3f} s (range {min(p95):.3f}-{max(p95):.3f})")
    ratios = result["p50_ratio"]
    goal = "" if args.engine == "both" else "; goal >= 2x"
    print(f"p50 {result['ratio_of']}: median {statistics.median(ratios):.2f}x (range {min(ratios):.2f}-"
          f"{max(ratios):.2f}x over {len(ratios)} repeats{goal}); load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps({**result, "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))


def main_engines(args: argparse.Namespace) -> None:
    """Throughput of both engines side by side: print per-engine medians and the ctranslate2 / hf ratios."""
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_demo_model(Path(tmp) / "model", args.preset)
        prompts = [PROMPTS[i % len(PROMPTS)] + f" ({i})" for i in range(args.requests)]
        print(f"throughput: {args.model or f'untrained T5 preset {args.preset}'}, threads {args.threads or 'default'}, "
              f"ctranslate2 {args.compute_type or 'float32'} x {args.workers} workers; {len(prompts)} requests x "
              f"max_tokens {args.max_tokens}, {args.clients} clients; load "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        out = run_engines_http(model, prompts, args)
    rates = {e: {m: [tok / sec for sec, tok in out[e][m]] for m in ("one_at_a_time", "batched")} for e in out}
    for e, by_mode in rates.items():
        print(f"{e:>11}: one at a time median {statistics.median(by_mode['one_at_a_time']):.1f} tok/s, batched "
              f"median {statistics.median(by_mode['batched']):.1f} tok/s (largest batch {out[e]['max_batch_seen']})")
    for m in ("one_at_a_time", "batched"):
        ratio = [c / h for c, h in zip(rates["ctranslate2"][m], rates["hf"][m])]
        print(f"ctranslate2 / hf, {m}: median {statistics.median(ratio):.2f}x (range {min(ratio):.2f}-"
              f"{max(ratio):.2f}x over {len(ratio)} repeats)")
    print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps({"runs": out, "tokens_per_s": rates,
                                         "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))


if __name__ == "__main__":
    main()
