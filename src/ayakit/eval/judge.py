"""LLM-judge win rates of two models per language (the paper's simulated win rates, Aya-101 section 4.3.2).

Both models answer the same prompts; a judge behind any OpenAI-compatible endpoint compares each pair twice, with
the answers swapped. A pair's outcome is the model both orders prefer; disagreement is a tie; a verdict the parser
cannot read makes the pair "invalid" (counted and reported, left out of the rates). Outputs in --out:

- pairs.jsonl: one line per prompt: id, language, prompt, model_a, model_b, answer_a, answer_b,
  verdict_ab (judge saw model_a's answer first), verdict_ba (model_b's first), outcome ("a" | "b" | "tie" |
  "invalid"), plus judge_ab / judge_ba (the judge's raw replies). Verdicts are "A", "B", "tie" or null.
- summary.json: per language and overall: win / tie / loss shares of valid pairs with bootstrap 95% CIs,
  win rate with ties as half, invalid pairs, unparseable verdicts, position-flip rate, how often the first-shown
  answer is preferred, and the share of decisive outcomes won by the longer answer (in characters).
- cache/: every answer and every judge reply, keyed by what decides it, so a rerun sends no request twice.

Prompts and verdicts: ayakit.eval.verdicts; the win rates and bias measures: ayakit.eval.win_rates.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.eval.verdicts import JudgePrompt, load_judge_prompt, pair_outcome, parse_verdict, render_judge
from ayakit.eval.win_rates import summarize
from ayakit.io import fingerprint, iter_jsonl, write_json_atomic, write_manifest, write_text_atomic
from ayakit.records import example_id

# The paper's simulated win-rate languages ([P] 4.3.2).
PAPER_LANGUAGES = ("eng", "zho", "tur", "tel", "srp", "spa", "rus", "hin", "fra", "arb")


@dataclass
class PromptItem:
    """One prompt both models answer."""

    id: str
    language: str
    prompt: str


# --- prompts ---------------------------------------------------------------------------------------------------


def load_prompt_file(path: Path, default_language: str | None = None) -> list[PromptItem]:
    """Prompts from JSONL: each line has `prompt` (or `inputs`), `language` (or a default) and an optional `id`."""
    if not path.is_file():
        raise FileNotFoundError(f"prompt file {path} does not exist")
    items = []
    for n, row in iter_jsonl(path):
        text = row.get("prompt", row.get("inputs"))
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}:{n}: no `prompt` (or `inputs`) text")
        lang = row.get("language") or default_language
        if not lang:
            raise DataError(f"{path}:{n}: no `language` (or pass a single --languages code)")
        try:
            code = L.tag(str(lang))
        except Exception as exc:  # noqa: BLE001 - UnknownLanguageError names the closest codes
            raise DataError(f"{path}:{n}: {exc}") from None
        items.append(PromptItem(str(row.get("id") or example_id("judge", code, text)), code, text))
    if not items:
        raise DataError(f"{path}: no prompts")
    return items


def cap_per_language(items: list[PromptItem], max_items: int) -> list[PromptItem]:
    """The first max_items prompts of each language, in file order."""
    counts: dict[str, int] = {}
    kept = []
    for it in items:
        counts[it.language] = counts.get(it.language, 0) + 1
        if counts[it.language] <= max_items:
            kept.append(it)
    return kept


def embedded_prompts(languages: Iterable[str], max_items: int | None, seed: int) -> list[PromptItem]:
    """Held-out embedded prompts (one prompt per item), generation items first."""
    from ayakit.data.sources.embedded import heldout_items

    out = []
    for lang in languages:
        items = heldout_items(lang, 1, None, seed)
        items.sort(key=lambda it: (it.choices is not None, it.task, it.id))
        seen: set[str] = set()
        picked = [it for it in items if not (it.id in seen or seen.add(it.id))]
        if max_items is not None:
            picked = picked[:max_items]
        out += [PromptItem(it.id, it.language, it.inputs) for it in picked]
    return out


# --- clients and caches ---------------------------------------------------------------------------------------


class JsonlCache:
    """An append-only key -> value store in a JSONL file; thread safe; survives interruption."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        self._lock = threading.Lock()
        if path.is_file():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):  # a line cut short by an interruption: drop it
                data = data[: data.rfind(b"\n") + 1]
                path.write_bytes(data)
            for line in data.decode("utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.data[row["key"]] = row["value"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut short by an interruption
        path.parent.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> Any:
        """The cached value or None."""
        return self.data.get(key)

    def put(self, key: str, value: Any) -> None:
        """Store and append to disk at once."""
        with self._lock:
            self.data[key] = value
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n")


class ChatJudge:
    """A judge behind an OpenAI-compatible /v1/chat/completions (system + user messages), with retries."""

    def __init__(self, url: str, model: str | None = None, api_key: str | None = None, temperature: float = 0.0,
                 max_tokens: int = 256, timeout: float = 120.0, retries: int = 4,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        import os

        import httpx

        base = url.rstrip("/")
        self.base = base if base.endswith("/v1") else base + "/v1"
        key = api_key or os.environ.get("OPENAI_API_KEY")
        self.client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {key}"} if key else {})
        self.temperature, self.max_tokens, self.retries, self.sleep = temperature, max_tokens, retries, sleep
        self.model = model or self._first_model()

    def _first_model(self) -> str:
        import httpx

        try:
            data = self.client.get(self.base + "/models").json()
            return str(data["data"][0]["id"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            return "default"

    def describe(self) -> dict:
        """What decides the judge's replies (the cache key's judge part)."""
        return {"url": self.base, "model": self.model, "temperature": self.temperature,
                "max_tokens": self.max_tokens}

    def complete(self, system: str, user: str) -> str:
        """The judge's reply text."""
        import httpx

        body = {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens, "seed": 0,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
        last = ""
        for attempt in range(self.retries + 1):
            try:
                resp = self.client.post(self.base + "/chat/completions", json=body)
                if resp.status_code < 400:
                    return resp.json()["choices"][0]["message"]["content"] or ""
            except (httpx.TransportError, ValueError, KeyError, IndexError, TypeError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                last = f"HTTP {resp.status_code}: {resp.text[:300]}"
                if resp.status_code < 500 and resp.status_code != 429:  # the request itself is wrong: no retry
                    raise DataError(f"judge {self.base}: {last}")
            if attempt < self.retries:
                self.sleep(min(30.0, 2.0 ** attempt))
        raise DataError(f"judge {self.base}: failed after {self.retries + 1} attempts ({last})")


def model_key(spec: str) -> str:
    """What identifies a model's answers without loading it: a URL, or a directory's files (names, sizes, mtimes)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted((str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns)
                       for f in path.rglob("*") if f.is_file() and "checkpoints" not in f.parts)
        return fingerprint({"dir": str(path.resolve()), "files": files})
    return fingerprint({"spec": spec})


def model_label(spec: str) -> str:
    """A readable model name: a directory's name (its parent's when it is a run's `model/`), or the URL."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return f"{path.resolve().parent.name}/{path.name}" if path.name == "model" else path.name
    return spec


def answers_for(spec: str, items: list[PromptItem], params: Any, cache_dir: Path, batch_size: int,
                progress: Callable[[int], None] | None = None, engine: str = "hf",
                compute_type: str | None = None) -> list[str]:
    """One answer per prompt from a model dir or endpoint; cached, and the model is loaded only when needed.

    A local model runs on `engine`; answers are cached per engine (sampled answers differ between engines)."""
    from ayakit.models import engine_key

    remote = spec.startswith(("http://", "https://"))
    store = JsonlCache(cache_dir / f"answers-{model_key(spec)}.jsonl")
    settings = {"max_new_tokens": params.max_new_tokens, "temperature": params.temperature, "top_p": params.top_p,
                "seed": params.seed, "stop": list(params.stop),
                **({} if remote else engine_key(engine, compute_type))}
    keys = [fingerprint({"prompt": it.prompt, **settings}) for it in items]
    missing = [i for i, k in enumerate(keys) if store.get(k) is None]
    if progress:
        progress(len(items) - len(missing))
    if missing:
        from ayakit.models import load_backend

        backend = load_backend(spec, engine=engine, batch_size=batch_size, compute_type=compute_type)
        for start in range(0, len(missing), batch_size):
            chunk = missing[start:start + batch_size]
            prompts = [items[i].prompt for i in chunk]
            if remote:  # one request per prompt, in flight together, so a batching server batches them
                with ThreadPoolExecutor(len(prompts)) as pool:
                    texts = [t for out in pool.map(lambda p: backend.generate([p], params), prompts) for t in out]
            else:
                texts = backend.generate(prompts, params)
            for i, text in zip(chunk, texts):
                store.put(keys[i], text)
            if progress:
                progress(len(chunk))
    return [store.get(k) for k in keys]


def judge_pairs(items: list[PromptItem], answers_a: list[str], answers_b: list[str], judge: ChatJudge,
                prompt: JudgePrompt, cache_dir: Path, concurrency: int = 8,
                progress: Callable[[int], None] | None = None) -> list[tuple[str, str]]:
    """Judge replies (ab, ba) per pair; every reply cached by (judge, messages)."""
    store = JsonlCache(cache_dir / "judge.jsonl")
    jobs = []
    for it, a, b in zip(items, answers_a, answers_b):
        jobs.append(render_judge(prompt, it.language, it.prompt, a, b))
        jobs.append(render_judge(prompt, it.language, it.prompt, b, a))
    keys = [fingerprint({"judge": judge.describe(), "system": s, "user": u}) for s, u in jobs]

    def one(i: int) -> str:
        hit = store.get(keys[i])
        if hit is None:
            hit = judge.complete(*jobs[i])
            store.put(keys[i], hit)
        if progress:
            progress(1)
        return hit

    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        replies = list(pool.map(one, range(len(jobs))))
    return [(replies[2 * k], replies[2 * k + 1]) for k in range(len(items))]


def run_judge(model_a: str, model_b: str, judge: ChatJudge, items: list[PromptItem], out_dir: Path,
              params: Any, prompt: JudgePrompt, batch_size: int = 16, concurrency: int = 8, n_boot: int = 1000,
              seed: int = 0, progress: Any = None, engine: str = "hf",
              compute_type: str | None = None) -> dict[str, Any]:
    """Answers, judgments, pairs.jsonl, summary.json and manifest.json in out_dir; returns the summary."""
    cache_dir = out_dir / "cache"
    tick = (lambda task: (lambda n: progress.advance(task, n))) if progress is not None else (lambda task: None)
    task_a = progress.add_task(f"answers {model_label(model_a)}", total=len(items)) if progress else None
    answers_a = answers_for(model_a, items, params, cache_dir, batch_size, tick(task_a), engine, compute_type)
    task_b = progress.add_task(f"answers {model_label(model_b)}", total=len(items)) if progress else None
    answers_b = answers_for(model_b, items, params, cache_dir, batch_size, tick(task_b), engine, compute_type)
    task_j = progress.add_task("judging (both orders)", total=2 * len(items)) if progress else None
    replies = judge_pairs(items, answers_a, answers_b, judge, prompt, cache_dir, concurrency, tick(task_j))
    pairs = []
    for it, a, b, (raw_ab, raw_ba) in zip(items, answers_a, answers_b, replies):
        v_ab, v_ba = parse_verdict(raw_ab, prompt), parse_verdict(raw_ba, prompt)
        pairs.append({"id": it.id, "language": it.language, "prompt": it.prompt, "model_a": model_label(model_a),
                      "model_b": model_label(model_b), "answer_a": a, "answer_b": b, "verdict_ab": v_ab,
                      "verdict_ba": v_ba, "outcome": pair_outcome(v_ab, v_ba), "judge_ab": raw_ab,
                      "judge_ba": raw_ba})
    summary = {"model_a": model_label(model_a), "model_b": model_label(model_b), "judge": judge.describe(),
               "judge_prompt": prompt.name, "generation": {"max_new_tokens": params.max_new_tokens,
                                                          "temperature": params.temperature,
                                                          "top_p": params.top_p, "seed": params.seed,
                                                          "engine": engine, "compute_type": compute_type},
               **summarize(pairs, n_boot, seed)}
    write_text_atomic(out_dir / "pairs.jsonl", "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
    write_json_atomic(out_dir / "summary.json", summary)
    write_manifest(out_dir, "judge", {"model_a": model_key(model_a), "model_b": model_key(model_b),
                                      "judge": judge.describe(), "prompts": fingerprint([vars(i) for i in items]),
                                      "generation": summary["generation"], "judge_prompt": prompt.name},
                   {"pairs.jsonl": len(pairs), "summary.json": 1})
    return summary


def _fmt(value: float | None, ci: list[float] | None = None) -> str:
    if value is None:
        return "-"
    text = f"{100 * value:.1f}"
    return text + (f" [{100 * ci[0]:.0f}-{100 * ci[1]:.0f}]" if ci else "")


def judge_cmd(
    model_a: str = typer.Argument(..., help="Model A: a model directory (HF save_pretrained) or an endpoint URL "
                                            "(http://host:port, optionally ending in /v1 and #model-name)."),
    model_b: str = typer.Argument(..., help="Model B, the same kinds as model A."),
    judge: str = typer.Option(..., "--judge", help="URL of an OpenAI-compatible endpoint that judges "
                                                   "(e.g. one started with `ayakit serve`)."),
    judge_model: str = typer.Option(None, help="Model name sent to the judge (default: the first in its /v1/models)."),
    prompts: Path = typer.Option(None, "--prompts", help="JSONL of prompts ({prompt, language, id}); default: the "
                                                         "embedded held-out prompts."),
    languages: str = typer.Option(",".join(PAPER_LANGUAGES), help="Comma-separated languages (default: the "
                                                                  "paper's 10); filters --prompts too."),
    max_items: int = typer.Option(50, min=1, help="Most prompts per language."),
    out: Path = typer.Option(Path("runs/judge"), "--out", help="Output folder (pairs.jsonl, summary.json, cache/)."),
    max_new_tokens: int = typer.Option(256, min=1, help="Answer length limit."),
    temperature: float = typer.Option(0.9, min=0, help="Answer sampling temperature (paper: 0.9)."),
    top_p: float = typer.Option(0.8, min=0, max=1, help="Answer nucleus sampling (paper: 0.8)."),
    judge_max_tokens: int = typer.Option(256, min=1, help="Judge reply length limit."),
    judge_prompt: str = typer.Option("default", help="Packaged judge prompt name, or a YAML file of that shape."),
    concurrency: int = typer.Option(8, min=1, help="Judge requests in flight at once."),
    batch_size: int = typer.Option(16, min=1, help="Answer generation batch size."),
    bootstrap: int = typer.Option(1000, min=10, help="Bootstrap resamples for the confidence intervals."),
    seed: int = typer.Option(0, help="Seed of prompt selection, sampling and the bootstrap."),
    engine: str = typer.Option("hf", "--engine", help="Engine that answers for a local model A / B: hf or "
                                                      "ctranslate2 (CTranslate2 generation: converted once, cached "
                                                      "in <model>/.ct2). Endpoints answer as they are."),
    compute_type: str = typer.Option(None, "--compute-type",
                                     help="ctranslate2 only: float32 or int8 on CPU; float16, int8_float16 or "
                                          "float32 on GPU (default: float32 on CPU, float16 on GPU)."),
) -> None:
    """LLM-judge win rates of MODEL_A against MODEL_B per language, each pair judged in both orders."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from ayakit.models import GenerationParams, check_engine

    check_engine(engine, compute_type)
    codes = [L.tag(c.strip()) for c in languages.split(",") if c.strip()]
    if prompts is not None:
        items = load_prompt_file(prompts, codes[0] if len(codes) == 1 else None)
        items = cap_per_language([it for it in items if it.language in codes], max_items)
    else:
        items = embedded_prompts(codes, max_items, seed)
    if not items:
        raise DataError(f"no prompts in the languages {codes}")
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
    client = ChatJudge(judge, judge_model, max_tokens=judge_max_tokens)
    with Progress(transient=True) as progress:
        summary = run_judge(model_a, model_b, client, items, out, params, load_judge_prompt(judge_prompt),
                            batch_size, concurrency, bootstrap, seed, progress, engine, compute_type)
    table = Table(title=f"{summary['model_a']} vs {summary['model_b']} (judge: {client.model}); % with 95% CI")
    for col in ("language", "pairs", "win", "tie", "loss", "invalid", "flip", "longer wins"):
        table.add_column(col)
    rows = [*summary["languages"].items(), ("overall", summary["overall"])]
    for lang, s in rows:
        table.add_row(lang, str(s["pairs"]), _fmt(s["win"], s["win_ci95"]), _fmt(s["tie"], s["tie_ci95"]),
                      _fmt(s["loss"], s["loss_ci95"]), str(s["invalid"]), _fmt(s["position_flip_rate"]),
                      _fmt(s["longer_answer_wins"]))
    console = Console()
    console.print(table)
    console.print(f"unparseable verdicts: {summary['overall']['unparseable_verdicts']} of {2 * len(items)}; "
                  f"wrote {out / 'pairs.jsonl'} and {out / 'summary.json'}")
