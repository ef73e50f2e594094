"""Task files: a maths word-problem task from TSV files alone, schema errors, choice tasks from JSONL, suites that
skip missing data, language varieties kept apart, the CLI's task listing and --strict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_eval_harness import FakeBackend

from ayakit import languages as L
from ayakit.errors import DataError
from ayakit.models import GenerationParams, LogLik
from ayakit.eval.harness import evaluate
from ayakit.eval.tasks import load_task_file
from ayakit.eval.tasks.spec import TaskFileError

SWA = L.tag("swa")  # swa-Latn, or swh-Latn where macrolanguages become their main individual language

MATHS_TASK = """\
name: maths-word-problems
kind: generation
data: {path: maths}            # one TSV per language: maths/swa.tsv, maths/hin.tsv, ...
language: {from_filename: true}
prompts:
  - id: direct
    inputs: "{{ question }}\\nAnswer:"
    per_language: {hin: "{{ question }}\\nउत्तर:"}
target: "{{ answer }}"
metric: numeric_match
generation: {max_new_tokens: 16, stop: ["\\n"]}
"""

QUESTIONS = {
    "swa": [("Juma ana machungwa 3 na ananunua 4 zaidi. Ana mangapi?", "7"),
            ("Amina ana shilingi 10 na anatumia 6. Amebaki na ngapi?", "4")],
    "hin": [("राम के पास 5 आम हैं और वह 2 और खरीदता है। कितने आम?", "7"),
            ("सीता के पास 9 पेन हैं, 3 खो गए। कितने बचे?", "6")],
    "tha": [("มีแมว 2 ตัว และมาอีก 2 ตัว มีแมวกี่ตัว", "4")],
    "kin": [("Mfite inka 1 nongeraho 1. Mfite zingahe?", "2")],
}


def write_maths(root: Path) -> Path:
    (root / "maths").mkdir(parents=True)
    for lang, rows in QUESTIONS.items():
        lines = ["question\tanswer"] + [f"{q}\t{a}" for q, a in rows]
        (root / "maths" / f"{lang}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = root / "maths.yaml"
    path.write_text(MATHS_TASK, encoding="utf-8")
    return path


class Solver(FakeBackend):
    """Answers in the question's own script's digits (Devanagari, Thai), right except for the second Swahili item."""

    def generate(self, prompts, params: GenerationParams):
        self.calls += 1
        self.params = params
        out = []
        for p in prompts:
            if "उत्तर" in p:
                out.append("उत्तर है " + {"राम": "७", "सीता": "६"}["राम" if "राम" in p else "सीता"] + "\nextra")
            elif "แมว" in p:
                out.append("คำตอบคือ ๔")
            elif "Amina" in p:
                out.append("Jibu ni 5")
            elif "Juma" in p:
                out.append("Jibu ni 7.")
            else:
                out.append("2")
        return out


def test_maths_task_runs_from_a_task_file_alone(tmp_path):
    path = write_maths(tmp_path)
    backend = Solver()
    s = evaluate(backend, tmp_path / "out", suite=None, tasks=[str(path)], prompts=1)
    t = s["tasks"]["maths-word-problems"]
    assert t["metric"] == "numeric_match" and s["suite"] == "custom" and s["tasks_run"] == ["maths-word-problems"]
    by = t["by_language"]
    assert set(by) == {SWA, "hin-Deva", "tha-Thai", "kin-Latn"}
    assert by["hin-Deva"]["score"] == 100.0 and by["tha-Thai"]["score"] == 100.0 and by[SWA]["score"] == 50.0
    assert by["kin-Latn"]["tier"] == "unlisted" and by[SWA]["tier"] == "low" and by["hin-Deva"]["tier"] == "high"
    assert set(t["by_tier"]) == {"high", "mid", "low", "unlisted"}  # Thai is mid
    assert t["generation"] == {"greedy": True, "temperature": 0.0, "top_p": 1.0, "max_new_tokens": 16, "stop": ["\n"]}
    assert backend.params.stop == ["\n"] and backend.params.temperature == 0.0
    assert len(s["data_files"]) == 4 and all(len(h) == 64 for h in s["data_files"].values())
    rows = [json.loads(x) for x in (tmp_path / "out" / "maths-word-problems.jsonl").read_text().splitlines()]
    hin = [r for r in rows if r["language"] == "hin-Deva"]
    assert hin and all(r["score"] == 100.0 for r in hin)


def test_task_dir_and_listing(tmp_path):
    from typer.testing import CliRunner

    from ayakit.cli import app

    write_maths(tmp_path)
    res = CliRunner().invoke(app, ["eval", "tasks", "--task-dir", str(tmp_path)], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "maths-word-problems" in res.output and "numeric_match" in res.output and "xcopa" in res.output
    assert "one file per language" in res.output
    s = evaluate(Solver(), tmp_path / "out", suite=None, task_dir=tmp_path, prompts=1)
    assert s["tasks_run"] == ["maths-word-problems"]


@pytest.mark.parametrize("change, message", [
    ({"promts": []}, "unknown key 'promts' (did you mean 'prompts'?)"),
    ({"data": {"pth": "maths"}}, "unknown key 'data.pth' (did you mean 'path'?)"),
    ({"metric": "numeric_mach"}, "unknown metric 'numeric_mach' (did you mean 'numeric_match'?)"),
    ({"kind": "ranking"}, "kind: Input should be 'choice' or 'generation'"),
    ({"language": {"colum": "lang"}}, "unknown key 'language.colum' (did you mean 'column'?)"),
    ({"generation": {"max_new_token": 5}}, "unknown key 'generation.max_new_token' (did you mean 'max_new_tokens'?)"),
    ({"answers": "answer"}, "exactly one of target (a template) or answers (a column)"),
    ({"data": {"path": "x", "hub_id": "a/b"}}, "give either path or hub_id"),
    ({"kind": "choice"}, "a choice task needs choices"),
])
def test_schema_errors_name_the_file_and_the_key(tmp_path, change, message):
    import yaml

    path = write_maths(tmp_path)
    data = yaml.safe_load(MATHS_TASK)
    data.update(change)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(TaskFileError) as exc:
        load_task_file(path)
    assert str(path) in str(exc.value) and message in str(exc.value)


def test_bad_yaml_and_bad_rows_name_the_line(tmp_path):
    path = write_maths(tmp_path)
    path.write_text("name: x\nkind: [generation\n", encoding="utf-8")
    with pytest.raises(TaskFileError, match=r"maths\.yaml:\d+: not valid YAML"):
        load_task_file(path)
    path.write_text(MATHS_TASK.replace("{{ answer }}", "{{ answr }}"), encoding="utf-8")
    with pytest.raises(DataError, match=r"maths/\w+\.tsv:2: .*answr"):
        evaluate(Solver(), tmp_path / "out", suite=None, tasks=[str(path)], prompts=1)
    path.write_text(MATHS_TASK.replace("{from_filename: true}", "xx-nope"), encoding="utf-8")
    with pytest.raises(DataError, match="language: unknown language code 'xx-nope'"):
        evaluate(Solver(), tmp_path / "out", suite=None, tasks=[str(path)], prompts=1)


def test_choice_task_from_jsonl_with_language_column_and_text_labels(tmp_path):
    rows = [{"q": "2+2?", "opts": ["3", "4"], "gold": "4", "lang": "sw"},
            {"q": "1+1?", "opts": ["2", "5"], "gold": 0, "lang": "srp_Latn"},
            {"q": "1+2?", "opts": ["3", "5"], "gold": 0, "lang": "srp-Cyrl"},
            {"q": "?", "opts": ["a", "b"], "gold": 0, "lang": "??"}]
    (tmp_path / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "mc.yaml").write_text(
        "kind: choice\ndata: {path: mc.jsonl}\nlanguage: {column: lang}\nfields: {question: q}\n"
        "prompts: [{id: p, inputs: 'Q: {{ question }}'}]\nchoices: {field: opts}\nlabel: gold\nmetric: accuracy\n",
        encoding="utf-8")

    class Picker(FakeBackend):
        def loglikelihood(self, requests):
            return [[LogLik(0.0 if c in ("4", "2", "5") else -1.0, 1, 1, False) for c in conts]
                    for _, conts in requests]

    s = evaluate(Picker(), tmp_path / "out", suite=None, tasks=[str(tmp_path / "mc.yaml")])
    by = s["tasks"]["mc"]["by_language"]
    assert set(by) == {SWA, "srp-Latn", "srp-Cyrl"}  # the two Serbian scripts stay apart
    assert by[SWA]["score"] == 100.0 and by["srp-Latn"]["score"] == 100.0 and by["srp-Cyrl"]["score"] == 0.0
    assert any("'??' is not a language code" in n for n in s["notes"])
    only = evaluate(Picker(), tmp_path / "cyrl", suite=None, tasks=[str(tmp_path / "mc.yaml")], languages=["srp-Cyrl"])
    assert set(only["tasks"]["mc"]["by_language"]) == {"srp-Cyrl"}
    both = evaluate(Picker(), tmp_path / "srp", suite=None, tasks=[str(tmp_path / "mc.yaml")], languages=["srp"])
    assert set(both["tasks"]["mc"]["by_language"]) == {"srp-Cyrl", "srp-Latn"}
    rolled = evaluate(Picker(), tmp_path / "roll", suite=None, tasks=[str(tmp_path / "mc.yaml")], rollup=True)
    assert set(rolled["tasks"]["mc"]["by_language"]) == {"swa", "srp"} and rolled["rollup"]
    assert rolled["tasks"]["mc"]["by_language"]["srp"]["n"] == 2 and any("--rollup" in n for n in rolled["notes"])


def test_suite_runs_past_missing_data_and_records_why(shared_data, tmp_path):
    s = evaluate(FakeBackend(), tmp_path / "out", suite="aya-paper", languages=["sw"], prompts=1, max_items=2,
                 data_dir=shared_data)
    assert s["suite"] == "aya-paper" and "xcopa" in s["tasks_run"] and "xwinograd" not in s["tasks"]
    skipped = {x["task"]: x["reason"] for x in s["skipped"]}
    assert {"xnli", "m-mmlu", "xlsum", "tydiqa", "dolly-human-edited"} <= set(skipped)
    assert "no local copy of CohereForAI/aya_evaluation_suite" in skipped["dolly-human-edited"]
    assert "no items in the requested languages" in skipped["xwinograd"]  # XWinograd has no Swahili
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["inputs"]["skipped"] == s["skipped"]
    with pytest.raises(DataError, match="nothing was evaluated"):
        evaluate(FakeBackend(), tmp_path / "none", suite=None, tasks=["xnli", "tydiqa"], data_dir=shared_data)


def test_misplaced_aya_suite_copy_names_the_expected_layout(tmp_path):
    bad = tmp_path / "data" / "aya_evaluation_suite" / "dolly_human_edited"
    bad.mkdir(parents=True)
    (bad / "test.jsonl").write_text('{"id": 1, "inputs": "x", "targets": "y", "language": "fra"}\n')
    with pytest.raises(DataError) as exc:
        evaluate(FakeBackend(), tmp_path / "out", suite=None, tasks=["dolly-human-edited"], data_dir=tmp_path / "data")
    msg = str(exc.value)
    assert "CohereForAI/aya_evaluation_suite/dolly_human_edited/test" in msg and "move it to" in msg
    wrong = tmp_path / "data2" / "CohereForAI" / "aya_evaluation_suite" / "test.jsonl"
    wrong.parent.mkdir(parents=True)
    wrong.write_text('{"id": 1}\n')
    with pytest.raises(DataError, match="has no dolly_human_edited/test split.*holds test.jsonl"):
        evaluate(FakeBackend(), tmp_path / "out", suite=None, tasks=["dolly-human-edited"], data_dir=tmp_path / "data2")


def test_aya_suite_script_field_keeps_varieties_apart_and_decoding_overrides(tmp_path):
    rows = [{"id": i, "inputs": f"Kaži {i}", "targets": "zdravo", "language": "srp", "script": s}
            for i, s in enumerate(["Latn", "Cyrl", "Latn"])]
    rows += [{"id": 9, "inputs": "写", "targets": "好", "language": "zho", "script": "Hant"},
             {"id": 10, "inputs": "写", "targets": "好", "language": "zho", "script": "Hans"},
             {"id": 11, "inputs": "x", "targets": "y", "language": "???", "script": "Latn"}]
    d = tmp_path / "CohereForAI" / "aya_evaluation_suite" / "aya_human_annotated"
    d.mkdir(parents=True)
    (d / "test.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    backend = Solver()
    kw = dict(suite=None, tasks=["aya-human-annotated"], data_dir=tmp_path)
    s = evaluate(backend, tmp_path / "a", **kw)
    by = s["tasks"]["aya-human-annotated"]["by_language"]
    assert set(by) == {"srp-Latn", "srp-Cyrl", "zho-Hant", "zho-Hans"} and by["srp-Latn"]["n"] == 2
    assert s["tasks"]["aya-human-annotated"]["generation"]["temperature"] == 0.9  # the paper's sampling by default
    assert any("'???'" in n for n in s["notes"])
    s = evaluate(backend, tmp_path / "b", greedy=True, max_new_tokens=8, languages=["srp-Cyrl"], **kw)
    assert set(s["tasks"]["aya-human-annotated"]["by_language"]) == {"srp-Cyrl"}
    assert backend.params.temperature == 0.0 and backend.params.max_new_tokens == 8
    s = evaluate(backend, tmp_path / "c", temperature=0.3, **kw)
    assert backend.params.temperature == 0.3 and s["tasks"]["aya-human-annotated"]["generation"]["top_p"] == 0.8


def test_all_flores_varieties_each_once_with_unlisted_tier(shared_data, tmp_path):
    from ayakit.eval.tasks import get_task, selection

    items, _ = get_task("flores-x-eng").items(languages=selection(["all"]), n_prompts=1, max_items=1,
                                              data_dir=shared_data)
    langs = [it.language for it in items]
    assert len(langs) == len(set(langs)) == 204  # 205 SIB-200 varieties less English itself
    assert {"srp-Cyrl", "zho-Hans", "zho-Hant", "yue-Hant", "ckb-Arab", "kmr-Latn", "prs-Arab", "pes-Arab",
            "nno-Latn", "nob-Latn", "arb-Arab", "arb-Latn"} <= set(langs)
    default, notes = get_task("sib200").items(n_prompts=1, max_items=1, data_dir=shared_data)
    assert len({it.language for it in default}) < 110
    assert any("not evaluated" in n and "ace-Arab" in n for n in notes)


def test_cli_strict_exits_nonzero_on_warnings(shared_data, tmp_path):
    from typer.testing import CliRunner

    from ayakit.cli import app

    path = write_maths(tmp_path)
    args = ["eval", "run", str(tmp_path / "no-model"), "--tasks", f"xcopa,{path}", "-l", "sw,fr", "--prompts", "1",
            "--max-items", "1", "--data-dir", str(shared_data), "--out", str(tmp_path / "o")]
    import ayakit.eval.harness as H

    real = H.load_backend
    H.load_backend = lambda *a, **k: Solver()
    try:
        ok = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
        strict = CliRunner().invoke(app, [*args, "--strict"], env={"COLUMNS": "250"})
    finally:
        H.load_backend = real
    assert ok.exit_code == 0, ok.output
    assert "xcopa: no data for fra" in ok.output and "ran 2 task(s)" in ok.output
    assert strict.exit_code == 1 and "--strict" in strict.output


def test_fewshot_source_of_a_task_file(tmp_path):
    write_maths(tmp_path)
    (tmp_path / "shots").mkdir()
    (tmp_path / "shots" / "swa.tsv").write_text("question\tanswer\nShot swali 1 + 1?\t2\n", encoding="utf-8")
    path = tmp_path / "maths.yaml"
    path.write_text(MATHS_TASK + "fewshot: {path: shots}\n", encoding="utf-8")
    from ayakit.eval.tasks import selection

    items, notes = load_task_file(path).items(selection(["swa"]), n_prompts=1, num_fewshot=1)
    assert items and all(it.inputs.startswith("Shot swali 1 + 1?\nAnswer: 2\n\n") for it in items)
    assert not notes


def test_progress_moves_per_batch(shared_data, tmp_path):
    seen: dict[str, list[int]] = {}

    def progress(name: str, done: int, total: int) -> None:
        seen.setdefault(name, []).append(done)

    evaluate(FakeBackend(), tmp_path / "c", suite=None, tasks=["xcopa"], languages=["sw"], prompts=1, max_items=6,
             batch_size=4, data_dir=shared_data, progress=progress)  # 2 choices a item: 2 items a batch
    assert seen["xcopa"] == [0, 2, 4, 6]
    path = write_maths(tmp_path)
    evaluate(Solver(), tmp_path / "g", suite=None, tasks=[str(path)], languages=["hin"], prompts=1, batch_size=1,
             progress=progress)
    assert seen["maths-word-problems"] == [0, 1, 2]
