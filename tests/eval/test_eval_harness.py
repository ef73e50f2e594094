"""The harness: tasks from the data dir and hub layouts, summary keys, resume from the cache, bad input, compare."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.models import GenerationParams, LogLik
from ayakit.eval.harness import evaluate
from ayakit.eval.tasks import UnknownTaskError, get_task

SWA = L.tag("swa")  # swa-Latn, or swh-Latn where macrolanguages become their main individual language


class FakeBackend:
    """Deterministic, torch-free: a choice's log-likelihood is a hash of (context, continuation)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.scored = 0
        self.fail_after = fail_after

    def describe(self) -> dict:
        return {"backend": "fake"}

    def loglikelihood(self, requests):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("interrupted")
        self.scored += len(requests)
        return [[LogLik(-(zlib.crc32((c + x).encode()) % 1000) / 100, 1 + len(x) // 3, len(x.encode()), False)
                 for x in conts] for c, conts in requests]

    def generate(self, prompts, params: GenerationParams):
        self.calls += 1
        return [p.split()[-1] if p.split() else "" for p in prompts]


SUMMARY_TASK_KEYS = {"metric", "kind", "unseen_task", "score", "ci", "chance", "by_language", "by_tier"}


def test_public_tasks_summary_and_items(shared_data, tmp_path):
    out = tmp_path / "eval"
    s = evaluate(FakeBackend(), out, suite="aya-public", tasks=["xcopa", "xwinograd", "sib200", "flores-x-eng",
                                                                "xquad", "tatoeba-x-eng"],
                 languages=["zh", "fr", "sw", "th", "ja"], prompts=2, max_items=4, data_dir=shared_data)
    assert set(s) >= {"model", "fingerprint", "suite", "tasks", "by_tier", "notes"}
    for name, t in s["tasks"].items():
        assert set(t) >= SUMMARY_TASK_KEYS, name
        for lang, v in t["by_language"].items():
            assert set(v) >= {"score", "ci", "n", "tier", "by_prompt"} and len(v["by_prompt"]) == 2
        lines = (out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == sum(v["n"] for v in t["by_language"].values()) * 2
    assert s["tasks"]["xcopa"]["unseen_task"] and not s["tasks"]["sib200"]["unseen_task"]
    assert s["tasks"]["sib200"]["chance"] == pytest.approx(100 / 7, abs=1e-3)
    assert set(s["tasks"]["xcopa"]["by_language"]) == {"zho-Hans", SWA, "tha-Thai"}
    assert set(s["tasks"]["xwinograd"]["by_language"]) == {"zho-Hans", "fra-Latn", "jpn-Jpan"}
    assert s["suite"] == "custom" and s["tasks_run"] == list(s["tasks"])  # --tasks given: not the suite's name
    assert any(p.endswith("val.sw.jsonl") for p in s["data_files"])
    assert all(len(h) == 64 for h in s["data_files"].values())
    assert any("spBLEU" in n for n in s["notes"]) or "extra_metrics" in s["tasks"]["flores-x-eng"]
    row = json.loads((out / "xcopa.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(row) >= {"id", "language", "prompt_id", "prediction", "gold", "score", "loglikelihoods"}
    assert (out / "manifest.json").is_file()


def test_interrupted_run_resumes_without_recomputing_and_gives_identical_results(shared_data, tmp_path):
    kwargs = dict(suite=None, tasks=["xcopa"], prompts=2, max_items=10, data_dir=shared_data, batch_size=20)
    full = evaluate(FakeBackend(), tmp_path / "full", **kwargs)
    with pytest.raises(KeyboardInterrupt):
        evaluate(FakeBackend(fail_after=3), tmp_path / "resumed", **kwargs)
    again = FakeBackend()
    resumed = evaluate(again, tmp_path / "resumed", **kwargs)
    total = sum(v["n"] for v in full["tasks"]["xcopa"]["by_language"].values()) * 2
    assert again.scored == total - 3 * 10  # three batches of ten items (20 rows) were cached before the interruption
    assert resumed["tasks"] == full["tasks"]
    assert (tmp_path / "full" / "xcopa.jsonl").read_text() == (tmp_path / "resumed" / "xcopa.jsonl").read_text()


def test_tiny_model_on_embedded_suite(tiny_models, tmp_path):
    s2s, _ = tiny_models
    s = evaluate(str(s2s), tmp_path / "mini", suite="aya-mini", languages=["sw", "zh", "en"], prompts=2,
                 max_items=2, batch_size=8)
    assert s["tasks"] and all(t["unseen_task"] for t in s["tasks"].values())
    kinds = {t["kind"] for t in s["tasks"].values()}
    assert kinds == {"choice", "generation"}
    for name, t in s["tasks"].items():
        # same-script language fidelity needs 3 other languages sharing the script: none for Chinese
        want = {SWA, "eng-Latn"} if name == "language_pick_same" else {SWA, "zho-Hans", "eng-Latn"}
        assert set(t["by_language"]) == want
        assert {v["tier"] for v in t["by_language"].values()} == {"high", "low"}


def test_unknown_task_suite_and_language(tmp_path):
    with pytest.raises(UnknownTaskError, match="did you mean 'xcopa'"):
        get_task("xcopaa")
    with pytest.raises(UnknownTaskError, match="did you mean 'aya-mini'"):
        evaluate(FakeBackend(), tmp_path, suite="aya-mni")
    from ayakit.languages import UnknownLanguageError

    with pytest.raises(UnknownLanguageError):
        evaluate(FakeBackend(), tmp_path, tasks=["xcopa"], languages=["xx-nope"])


def test_bad_data_file_names_file_and_line(tmp_path):
    d = tmp_path / "xcopa" / "data" / "et"
    d.mkdir(parents=True)
    (d / "val.et.jsonl").write_text('{"premise": "a", "choice1": "b", "choice2": "c", "question": "cause", '
                                    '"label": 0}\n{oops\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"val\.et\.jsonl:2: not valid JSON"):
        evaluate(FakeBackend(), tmp_path / "out", suite=None, tasks=["xcopa"], data_dir=tmp_path)
    with pytest.raises(DataError, match="needs the public data dir"):
        get_task("xcopa").items(data_dir=None)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_hub_tasks_from_local_files_in_the_hub_layout(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path
    _write_jsonl(root / "facebook/xnli/fr/validation.jsonl",
                 [{"premise": f"p{i}", "hypothesis": f"h{i}", "label": i % 3} for i in range(4)])
    _write_jsonl(root / "juletxara/xstory_cloze/sw/eval.jsonl",
                 [{**{f"input_sentence_{k}": f"s{k}" for k in range(1, 5)}, "sentence_quiz1": "a",
                   "sentence_quiz2": "b", "answer_right_ending": 2}] * 3)
    mmlu = [{"instruction": f"q{i}", "option_a": "1", "option_b": "2", "option_c": "3", "option_d": "4",
             "answer": "ABCD"[i % 4]} for i in range(8)]
    (root / "alexandrainst/m_mmlu/de/test").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(mmlu), root / "alexandrainst/m_mmlu/de/test/0000.parquet")
    _write_jsonl(root / "alexandrainst/m_mmlu/de/train.jsonl", mmlu)
    _write_jsonl(root / "csebuetnlp/xlsum/amharic/validation.jsonl",
                 [{"id": "x1", "url": "u", "title": "t", "text": "ሰላም ለዓለም ዛሬ", "summary": "ሰላም"}])
    _write_jsonl(root / "google-research-datasets/tydiqa/secondary_task/validation.jsonl",
                 [{"id": "thai-1", "title": "t", "context": "กรุงเทพ เป็น เมืองหลวง", "question": "เมืองหลวง?",
                   "answers": {"text": ["กรุงเทพ"], "answer_start": [0]}}])
    _write_jsonl(root / "CohereForAI/aya_evaluation_suite/dolly_human_edited/test.jsonl",
                 [{"id": 1, "inputs": "Write a poem", "targets": "A poem", "language": "fra", "script": "Latn"}])
    s = evaluate(FakeBackend(), tmp_path / "out", suite="aya-paper",
                 tasks=["xnli", "xstorycloze", "m-mmlu", "xlsum", "tydiqa", "dolly-human-edited"],
                 prompts=5, data_dir=root)
    t = s["tasks"]
    assert set(t["xnli"]["by_language"]) == {"fra-Latn"} and t["xnli"]["by_language"]["fra-Latn"]["n"] == 4
    assert t["xstorycloze"]["by_language"][SWA]["n"] == 3 and t["xstorycloze"]["unseen_task"]
    assert t["m-mmlu"]["num_fewshot"] == 5  # the paper's suite runs M-MMLU 5-shot
    assert t["m-mmlu"]["chance"] == 25.0
    assert set(t["xlsum"]["by_language"]) == {"amh-Ethi"} and t["tydiqa"]["metric"] == "f1"
    assert set(t["tydiqa"]["by_language"]) == {"tha-Thai"}
    assert t["dolly-human-edited"]["n_prompts"] == 1
    shot = json.loads((tmp_path / "out" / "m-mmlu.jsonl").read_text().splitlines()[0])
    assert shot["id"].startswith("deu-Latn/")


def test_few_shot_prefix_comes_from_the_train_split(shared_data):
    from ayakit.eval.tasks import selection

    items, _ = get_task("sib200").items(languages=selection(["fra"]), n_prompts=1, max_items=1, num_fewshot=2,
                                        data_dir=shared_data)
    assert items[0].inputs.count("Topic classification:") == 3 and items[0].meta["fewshot"] == 2


def test_cli_runs_and_compares(tiny_models, shared_data, tmp_path):
    from typer.testing import CliRunner

    from ayakit.cli import app

    _, causal = tiny_models
    runner = CliRunner()
    res = runner.invoke(app, ["eval", str(causal), "--tasks", "xcopa", "-l", "sw", "--max-items", "2", "--prompts",
                              "1", "--out", str(tmp_path / "a"), "--data-dir", str(shared_data)])
    assert res.exit_code == 0, res.output
    assert "xcopa" in res.output and (tmp_path / "a" / "summary.json").is_file()
    res = runner.invoke(app, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "a"),
                              "--markdown", str(tmp_path / "cmp.md")])
    assert res.exit_code == 0, res.output
    assert "xcopa" in (tmp_path / "cmp.md").read_text()


def test_normalisation_is_per_utf8_byte_not_per_character():
    from ayakit.eval.harness import normalized

    thai = {"logprob": -12.0, "n_tokens": 3, "n_bytes": len("สวัสดี".encode("utf-8"))}  # 6 characters, 18 bytes
    assert normalized(thai, "byte") == pytest.approx(-12.0 / 18)
    assert normalized(thai, "token") == pytest.approx(-4.0)
    assert normalized(thai, "none") == -12.0


def test_normalisation_reuses_cached_loglikelihoods(shared_data, tmp_path):
    backend = FakeBackend()
    kwargs = dict(suite=None, tasks=["xcopa"], languages=["th"], prompts=1, max_items=6, data_dir=shared_data)
    evaluate(backend, tmp_path, **kwargs)
    scored = backend.scored
    evaluate(backend, tmp_path, normalization="byte", **kwargs)
    assert backend.scored == scored  # the raw log-likelihoods came from the cache
    rows = [json.loads(x) for x in (tmp_path / "xcopa.jsonl").read_text().splitlines()]
    for r in rows:
        assert r["normalized"] == pytest.approx([ll / max(1, b) for ll, b in zip(r["loglikelihoods"], r["n_bytes"])])


def test_sampled_generation_resumes_identically(tiny_models, tmp_path):
    from ayakit.models import load_backend

    rows = [{"id": i, "inputs": f"Write {i} words about the sea", "targets": "The sea", "language": "fra"}
            for i in range(6)]
    _write_jsonl(tmp_path / "data/CohereForAI/aya_evaluation_suite/dolly_human_edited/test.jsonl", rows)
    kwargs = dict(suite=None, tasks=["dolly-human-edited"], data_dir=tmp_path / "data", batch_size=1,
                  max_new_tokens=12)  # the paper's sampling (temperature 0.9, top-p 0.8), shorter
    causal = load_backend(str(tiny_models[1]), batch_size=1)
    full = evaluate(causal, tmp_path / "full", **kwargs)

    class Interrupted:
        def __init__(self) -> None:
            self.calls = 0

        def describe(self) -> dict:
            return causal.describe()

        def loglikelihood(self, requests):
            return causal.loglikelihood(requests)

        def generate(self, prompts, params):
            self.calls += 1
            if self.calls > 1:
                raise KeyboardInterrupt
            return causal.generate(prompts, params)

    with pytest.raises(KeyboardInterrupt):
        evaluate(Interrupted(), tmp_path / "resumed", **kwargs)
    resumed = evaluate(causal, tmp_path / "resumed", **kwargs)
    assert resumed["tasks"] == full["tasks"]
    a = (tmp_path / "full" / "dolly-human-edited.jsonl").read_text()
    assert a == (tmp_path / "resumed" / "dolly-human-edited.jsonl").read_text()
    assert len({json.loads(x)["prediction"] for x in a.splitlines()}) > 1  # really sampled text
