"""Record lm-evaluation-harness's own XCOPA log-likelihoods on the tests' tiny models (run once; needs lm-eval).

The tiny models' tokenizers add their special tokens themselves (eos after a T5 input, bos before a Llama input),
as real models' tokenizers do and as lm-eval expects.

lm-eval's XCOPA task functions (lm_eval.tasks.xcopa.utils: its prompt and connectors) on the first items of the
local XCOPA *test* split (the split lm-eval scores), its target delimiter (" "), its HFLM scoring. The result,
tests/eval/fixtures/lm_eval_xcopa.json, is what `ayakit eval MODEL --tasks xcopa --convention lm-eval` must
reproduce (tests/eval/test_eval_lm_eval_parity.py).

Usage: python tests/eval/record_lm_eval_fixture.py [--data-dir ../shared/data] [--items 12]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LANGS = ("et", "sw", "zh")
FIXTURE = HERE / "fixtures" / "lm_eval_xcopa.json"

UTILS = """
from lm_eval.tasks.xcopa.utils import doc_to_choice, doc_to_text_et, doc_to_text_sw, doc_to_text_zh  # noqa: F401
"""


def subset(data_dir: Path, out: Path, n: int) -> dict[str, Path]:
    """The first n lines of each language's XCOPA test split, in the data dir's layout."""
    files = {}
    for lang in LANGS:
        src = data_dir / "xcopa" / "data" / lang / f"test.{lang}.jsonl"
        dst = out / "xcopa" / "data" / lang / f"test.{lang}.jsonl"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text("".join(src.read_text(encoding="utf-8").splitlines(keepends=True)[:n]), encoding="utf-8")
        # ayakit's default split must exist too (the layout has both)
        (dst.parent / f"val.{lang}.jsonl").write_text(dst.read_text(encoding="utf-8"), encoding="utf-8")
        files[lang] = dst
    return files


def main() -> None:
    """Run lm-eval's XCOPA on both tiny models and write the fixture."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("AYAKIT_DATA_DIR", "../shared/data")))
    parser.add_argument("--items", type=int, default=12)
    args = parser.parse_args()
    import lm_eval
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    sys.path.insert(0, str(HERE))
    from eval_tiny_models import build_models

    torch.set_num_threads(1)
    out: dict = {"note": "lm-eval 0.4.13's log-likelihoods per choice; the XCOPA text itself is read from the data "
                         "dir, never stored here", "lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "0.4",
                 "items_per_language": args.items, "languages": list(LANGS), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = subset(args.data_dir, tmp / "data", args.items)
        tasks = tmp / "tasks"
        tasks.mkdir()
        (tasks / "xcopa_local_utils.py").write_text(UTILS)
        for lang, path in files.items():
            (tasks / f"xcopa_local_{lang}.yaml").write_text(
                f"task: xcopa_local_{lang}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {path}\n"
                "output_type: multiple_choice\ntest_split: test\n"
                f"doc_to_text: !function xcopa_local_utils.doc_to_text_{lang}\n"
                "doc_to_target: label\ndoc_to_choice: !function xcopa_local_utils.doc_to_choice\n"
                "metric_list:\n  - metric: acc\n", encoding="utf-8")
        seq2seq, causal = build_models(tmp / "models", special_tokens=True)
        for arch, path in (("seq2seq", seq2seq), ("causal", causal)):
            lm = HFLM(pretrained=str(path), backend=arch, device="cpu", dtype="float32", batch_size=8)
            res = simple_evaluate(model=lm, tasks=[f"xcopa_local_{lang}" for lang in LANGS],
                                  task_manager=TaskManager(include_path=str(tasks)), log_samples=True,
                                  verbosity="ERROR")
            scores = {}
            for lang in LANGS:
                for s in res["samples"][f"xcopa_local_{lang}"]:
                    # log-likelihoods only: the XCOPA text stays in the data dir, never in the repository
                    scores[f"{lang}-test-{s['doc']['idx']}"] = {"loglikelihoods": [float(r[0][0]) for r in s["resps"]]}
            out["models"][arch] = scores
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"written {FIXTURE}: {sum(len(v) for v in out['models'].values())} items")


if __name__ == "__main__":
    main()
