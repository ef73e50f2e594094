"""ayakit eval vs lm-evaluation-harness: same models, same items, rank classification.

Three groups of items: XCOPA + XWinograd (2 choices, short contexts), SIB-200 (7 choices) and a long-context task
built from XQuAD (4 choices over a shared passage: the gold answer and three other answers from the same article).
Builds a seq2seq (T5) and a causal (Llama) model locally (random weights from config, a byte-level BPE trained here;
--size mt5-small is the ~60M-parameter mT5-small shape with a 32k vocabulary, and a Llama of the same width), writes
the items as local JSONL with lm-eval task YAML beside them, runs both tools in this one process and prints:
prediction agreement (goal 100%), the largest |difference| in log-likelihood (goal <= 1e-4), items/s of each and the
ratio, median and spread over --repeats alternating runs, with the load average (goals on the long-context task:
>= 3x seq2seq, >= 2x causal). ayakit runs with convention="lm-eval" (no eos on continuations, the trailing space of a
context moved to the continuation), the prompt lm-eval uses ("lm-eval" prompts), and the same batch size. Timing
covers each tool's loglikelihood calls after a warm-up call. With ctranslate2 installed (--no-ct2 to skip), a third
column scores the same items with CTranslate2's score_batch (ayakit.models.ct2.CT2Backend, float32): it re-encodes
the context once per choice, which is why `--engine ctranslate2` leaves scoring on the HF engine.

Needs: pip install -e '.[bench]' (lm-eval) and the public data (--data-dir or $AYAKIT_DATA_DIR or ../shared/data).
Usage: python bench/eval_vs_lm_eval.py [--items 100] [--batch-size 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

CORPUS_SEED = 0
SIB_LANGUAGES = ["eng_Latn", "fra_Latn", "zho_Hans", "arb_Arab", "hin_Deva", "swh_Latn", "tha_Thai", "rus_Cyrl", "amh_Ethi",
                 "yor_Latn"]  # one variety each
XQUAD_LANGUAGES = ["en", "ar", "hi", "zh", "th", "ru"]
REPO = Path(__file__).resolve().parents[1]

LM_EVAL_UTILS = '''
def doc_to_text(doc):
    return doc["label"] if doc.get("multi") else doc["context"]


def doc_to_choice(doc):
    return doc["contexts"] if doc.get("multi") else doc["choices"]


def doc_to_target(doc):
    return doc["continuation"] if doc.get("multi") else doc["label"]
'''


def build_models(root: Path, texts: list[str], size: str, vocab: int) -> dict[str, Path]:
    """A T5 and a Llama of the given size, each with a byte-level BPE whose post-processor matches lm-eval's view.

    The models' vocabulary (`vocab` rows of embeddings and output layer) may exceed the tokenizer's: real
    multilingual models have 32k-256k entries, and the output layer is a large part of the scoring cost."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    dims = {"tiny": (64, 128, 2, 4), "small": (256, 1024, 4, 4), "mt5-small": (512, 1024, 8, 8)}[size]
    d_model, d_ff, layers, heads = dims
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=2000, special_tokens=["<pad>", "</s>", "<s>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    out = {}
    for arch, template in (("seq2seq", "$A </s>"), ("causal", "<s> $A")):
        # lm-eval encodes contexts with the tokenizer's own special tokens: T5 appends eos, Llama prepends bos,
        # which is what ayakit.models.encoding does explicitly.
        tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=[
            ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>"))])
        fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tok.to_str()), pad_token="<pad>",
                                       eos_token="</s>", bos_token="<s>")
        path = root / f"{size}-{arch}"
        fast.save_pretrained(path)
        torch.manual_seed(CORPUS_SEED)
        if arch == "seq2seq":
            mt5 = {"feed_forward_proj": "gated-gelu", "num_heads": 6, "d_kv": 64} if size == "mt5-small" else \
                {"num_heads": heads, "d_kv": d_model // heads}
            model = T5ForConditionalGeneration(T5Config(
                vocab_size=max(vocab, len(fast)), d_model=d_model, d_ff=d_ff, num_layers=layers,
                num_decoder_layers=layers, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                dropout_rate=0.0, **mt5))
        else:
            model = LlamaForCausalLM(LlamaConfig(
                vocab_size=max(vocab, len(fast)), hidden_size=d_model, intermediate_size=d_ff, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=2048, pad_token_id=0,
                bos_token_id=2, eos_token_id=1))
        print(f"  {arch}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
        # small weights: a randomly initialised model then has a peaked but not degenerate distribution
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.5)
        model.save_pretrained(path)
        (path / "ayakit.json").write_text(json.dumps({"arch": arch}))
        out[arch] = path
    return out


def write_lm_eval_tasks(task_dir: Path, items_by_task: dict) -> None:
    """One lm-eval task per dataset: local JSONL docs (the ayakit-rendered prompt) and a YAML config."""
    task_dir.mkdir(parents=True, exist_ok=True)
    (task_dir / "bench_utils.py").write_text(LM_EVAL_UTILS)
    for task, items in items_by_task.items():
        docs = []
        for it in items:
            if it.meta.get("contexts"):  # lm-eval's "multiple input": contexts differ, one shared continuation
                docs.append({"id": it.id, "multi": True, "contexts": it.meta["contexts"], "label": it.gold,
                             "continuation": it.choices[0][1:]})  # lm-eval adds the " " target delimiter back
            else:
                docs.append({"id": it.id, "context": it.inputs, "choices": [c[1:] for c in it.choices],
                             "label": it.gold})
        data = task_dir / f"{task}.jsonl"
        data.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
        (task_dir / f"bench_{task}.yaml").write_text(
            f"task: bench_{task}\n"
            "dataset_path: json\n"
            f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
            "output_type: multiple_choice\n"
            "test_split: test\n"
            "doc_to_text: !function bench_utils.doc_to_text\n"
            "doc_to_choice: !function bench_utils.doc_to_choice\n"
            "doc_to_target: !function bench_utils.doc_to_target\n"
            "metric_list:\n  - metric: acc\n", encoding="utf-8")


class Timed:
    """Wraps an object's loglikelihood to add up the seconds spent in it."""

    def __init__(self, obj) -> None:  # noqa: ANN001
        self.seconds = 0.0
        inner = obj.loglikelihood

        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        obj.loglikelihood = timed


def run_lm_eval(lm, task_dir: Path, tasks: list[str]) -> tuple[dict, float]:
    """{(task, doc id): [loglik per choice]} from lm-eval's own task pipeline, and seconds in its loglikelihood."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    timer = Timed(lm)
    res = simple_evaluate(model=lm, tasks=[f"bench_{t}" for t in tasks], task_manager=TaskManager(
        include_path=str(task_dir)), log_samples=True, verbosity="ERROR")
    out = {}
    for t in tasks:
        for s in res["samples"][f"bench_{t}"]:
            out[(t, s["doc"]["id"])] = [float(r[0]) for r in s["filtered_resps"]]
    return out, timer.seconds


def run_ayakit(backend, tasks: list[str], items_by_task: dict) -> tuple[dict, float]:  # noqa: ANN001
    """{(task, item id): [loglik per choice]} and seconds in loglikelihood."""
    from ayakit.eval.harness import _requests

    timer = Timed(backend)
    out = {}
    for t in tasks:
        items = items_by_task[t]
        reqs, spans = [], []
        for it in items:
            r = _requests(it)
            spans.append((len(reqs), len(r)))
            reqs.extend(r)
        lls = backend.loglikelihood(reqs)
        for it, (s, n) in zip(items, spans):
            out[(t, it.id)] = [ll.logprob for row in lls[s:s + n] for ll in row]
    return out, timer.seconds


def warm_up(ours, lm, items) -> None:  # noqa: ANN001
    """One small call each, so neither tool's timing includes torch's first-call costs."""
    from lm_eval.api.instance import Instance

    from ayakit.eval.harness import _requests

    reqs = [r for it in items[:8] for r in _requests(it)]
    ours.loglikelihood(reqs)
    lm.loglikelihood([Instance("loglikelihood", {}, (c, x), i) for i, (c, xs) in enumerate(reqs) for x in xs],
                     disable_tqdm=True)


def xquad_mc_items(data_dir: Path, languages: list[str], n: int, seed: int = 0) -> list:
    """4-way multiple choice over a shared XQuAD passage: the gold answer and three other answers of the same
    article (deterministic for a seed), lm-eval style (the choices follow the context after a space)."""
    import random

    from ayakit import languages as L
    from ayakit.records import EvalItem

    out = []
    for code in languages:
        path = data_dir / "xquad" / f"xquad.{code}.json"
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        rng = random.Random(f"{seed}/{code}")
        items = []
        for article in data:
            answers = list(dict.fromkeys(qa["answers"][0]["text"] for p in article["paragraphs"] for qa in p["qas"]))
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    gold = qa["answers"][0]["text"]
                    others = [a for a in answers if a != gold]
                    if len(others) < 3:
                        continue
                    choices = [gold, *rng.sample(others, 3)]
                    rng.shuffle(choices)
                    items.append(EvalItem(id=f"{code}/{qa['id']}", task="xquad-mc4", language=L.tag(code),
                                          prompt_id="lm-eval",
                                          inputs=f"{para['context']}\nQuestion: {qa['question']}\nAnswer:",
                                          choices=[f" {c}" for c in choices], gold=choices.index(gold)))
        out.extend(items[:n])
    return out


def main() -> None:
    """Run both tools on both models and print agreement, max |diff| and speed ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--items", type=int, default=100, help="items per (task, language)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", choices=["tiny", "small", "mt5-small"], default="small",
                        help="mt5-small: the ~60M-parameter mT5-small shape (d512, 8+8 layers) and a Llama as wide")
    parser.add_argument("--groups", default="short,sib200,long",
                        help="which item groups: short (XCOPA + XWinograd), sib200, long (XQuAD 4-way)")
    parser.add_argument("--vocab", type=int, default=32000,
                        help="the models' vocabulary size (real multilingual models: 32k-256k)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per tool (alternating)")
    parser.add_argument("--ct2", action=argparse.BooleanOptionalAction, default=None,
                        help="a third column: CTranslate2 scoring (default: when ctranslate2 is installed)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.ct2 is None:
        import importlib.util

        args.ct2 = importlib.util.find_spec("ctranslate2") is not None
    data_dir = args.data_dir or Path(os.environ.get("AYAKIT_DATA_DIR", REPO.parent / "shared" / "data"))
    from ayakit.eval.harness import _requests
    from ayakit.eval.tasks import get_task, selection

    all_groups = {"short": ("xcopa+xwinograd, 2 choices", ["xcopa", "xwinograd"]),
                  "sib200": ("sib200, 7 choices", ["sib200"]),
                  "long": ("xquad-mc4, 4 choices over a shared passage (goals: 3x seq2seq, 2x causal)", ["xquad-mc4"])}
    groups = dict(all_groups[g] for g in args.groups.split(","))
    tasks = [t for ts in groups.values() for t in ts]
    items_by_task = {}
    for t in tasks:
        if t == "xquad-mc4":
            items_by_task[t] = xquad_mc_items(data_dir, XQUAD_LANGUAGES, args.items)
            continue
        langs = selection(SIB_LANGUAGES) if t == "sib200" else None
        items, _ = get_task(t).items(languages=langs, prompt_ids=["lm-eval"], max_items=args.items, data_dir=data_dir,
                                     convention="lm-eval")
        items_by_task[t] = items
    texts = [it.inputs + " ".join(it.choices or []) for its in items_by_task.values() for it in its]
    n_items = sum(len(v) for v in items_by_task.values())
    print(f"items: {n_items} ({', '.join(f'{t} {len(v)}' for t, v in items_by_task.items())}); "
          f"batch size {args.batch_size}; torch threads {torch.get_num_threads()}; model size {args.size}, "
          f"vocabulary {args.vocab}")
    with tempfile.TemporaryDirectory(prefix="ayakit-bench-") as tmp:
        tmp = Path(tmp)
        models = build_models(tmp, texts, args.size, args.vocab)
        write_lm_eval_tasks(tmp / "lm_eval_tasks", items_by_task)
        for arch in ("seq2seq", "causal"):
            from lm_eval.models.huggingface import HFLM

            from ayakit.models import load_backend

            ours = load_backend(str(models[arch]), batch_size=args.batch_size, convention="lm-eval")
            lm = HFLM(pretrained=str(models[arch]), backend=arch, device="cpu", dtype="float32",
                      batch_size=args.batch_size)
            ct2 = None
            if args.ct2:
                from ayakit.models.ct2 import CT2Backend

                ct2 = CT2Backend(models[arch], batch_size=args.batch_size, convention="lm-eval", device="cpu",
                                 compute_type="float32", threads=torch.get_num_threads())
                ct2.loglikelihood([r for it in next(iter(items_by_task.values()))[:8] for r in _requests(it)])
            warm_up(ours, lm, next(iter(items_by_task.values())))
            print(f"\n[{arch}] {models[arch].name}")
            for group, group_tasks in groups.items():
                # alternate the tools; each repeat gives one ratio (the machine may be shared)
                ratios, ours_s, theirs_s, ct2_s, ct2_ratios = [], [], [], [], []
                for _ in range(args.repeats):
                    ours_ll, t = run_ayakit(ours, group_tasks, items_by_task)
                    theirs, u = run_lm_eval(lm, tmp / "lm_eval_tasks", group_tasks)
                    ours_s.append(t)
                    theirs_s.append(u)
                    ratios.append(u / t)
                    if ct2 is not None:
                        ct2_ll, c = run_ayakit(ct2, group_tasks, items_by_task)
                        ct2_s.append(c)
                        ct2_ratios.append(u / c)
                keys = sorted(ours_ll)
                missing = [k for k in keys if k not in theirs]
                if missing:
                    sys.exit(f"lm-eval has no result for {len(missing)} items, e.g. {missing[:3]}")
                agree = sum(max(range(len(ours_ll[k])), key=ours_ll[k].__getitem__) ==
                            max(range(len(theirs[k])), key=theirs[k].__getitem__) for k in keys)
                diff = max(abs(a - b) for k in keys for a, b in zip(ours_ll[k], theirs[k]))
                n = len(keys)
                med = statistics.median(ratios)
                print(f"  {group}: {n} items")
                print(f"    prediction agreement: {agree}/{n} = {100 * agree / n:.2f}%  (goal 100%)")
                print(f"    max |loglik difference|: {diff:.2e}  (goal <= 1e-4)")
                print(f"    batch {args.batch_size} both: ayakit {n / min(ours_s):7.1f} items/s   lm-eval "
                      f"{n / min(theirs_s):7.1f} items/s   ratio {med:.2f}x (median of {len(ratios)} alternating "
                      f"repeats: {', '.join(f'{r:.2f}' for r in ratios)})   load average "
                      f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
                if ct2 is not None:
                    c_agree = sum(max(range(len(ct2_ll[k])), key=ct2_ll[k].__getitem__) ==
                                  max(range(len(theirs[k])), key=theirs[k].__getitem__) for k in keys)
                    c_diff = max(abs(a - b) for k in keys for a, b in zip(ct2_ll[k], theirs[k]))
                    c_med = sorted(ct2_ratios)[len(ct2_ratios) // 2]
                    print(f"    ctranslate2 float32 scoring: agreement {c_agree}/{n}, max |loglik difference| "
                          f"{c_diff:.2e}, {n / min(ct2_s):7.1f} items/s, vs lm-eval {c_med:.2f}x (spread "
                          f"{min(ct2_ratios):.2f}-{max(ct2_ratios):.2f}), vs ayakit hf "
                          f"{sorted(o / c for o, c in zip(ours_s, ct2_s))[len(ct2_s) // 2]:.2f}x")
            del ours, lm, ct2


if __name__ == "__main__":
    main()
