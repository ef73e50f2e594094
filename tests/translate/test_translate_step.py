"""`ayakit translate`: sentence splitting, filters, caps, resuming and the output a recipe reads."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ayakit.cli import app
from ayakit.data.sentences import join_segments, segment, split_sentences
from ayakit.data.translate import TranslateSettings, read_examples, translate_examples
from ayakit.data.translation_checks import check_translation
from ayakit.data.translators import HFTranslator
from ayakit.records import EXAMPLE_SCHEMA

# A phrasebook translator: real sentences in the target language, so the filters can pass or fail for real.
PHRASES = {
    "swa": {"Where is the library?": "Maktaba iko wapi?", "I need a book.": "Ninahitaji kitabu.",
            "The library is on Main Street.": "Maktaba iko kwenye barabara kuu.",
            "It opens at nine.": "Inafunguliwa saa tatu asubuhi.", "Name a red fruit.": "Taja tunda jekundu.",
            "An apple.": "Tufaha.", "How are you?": "Habari yako?", "I am fine, thank you.": "Nzuri, asante sana."},
}


class Phrasebook:
    """Looks sentences up; an unknown sentence comes back untranslated (English), which langid should catch."""

    name = "phrasebook"

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.sentences = 0
        self.fail_after = fail_after

    def mode_for(self, target: str) -> str:
        return "lookup"

    def translate(self, texts: list[str], source: str, target: str) -> list[tuple[str, bool]]:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("interrupted")
        self.calls += 1
        self.sentences += len(texts)
        table = PHRASES.get(target, {})
        return [(table.get(t, t), t == "Name a red fruit." and target == "fra") for t in texts]


ROWS = [
    {"inputs": "Where is the library? I need a book.", "targets": "The library is on Main Street. It opens at nine.",
     "dataset": "d1", "task": "qa", "license": "cc-by-4.0"},
    {"inputs": "Write a short poem about the sea and the long quiet shore.",
     "targets": "The sea is wide and grey today.\nThe sea is deep and cold tonight.", "dataset": "d1"},
    {"inputs": "Where is the library?", "targets": "It opens at nine.", "dataset": "d1"},
    {"inputs": "Name a red fruit.", "targets": "An apple.", "dataset": "d2"},
    {"inputs": "How are you?", "targets": "I am fine, thank you.", "dataset": "d2"},
]


@pytest.fixture
def source_file(tmp_path):
    path = tmp_path / "english.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_sentence_rules() -> None:
    assert split_sentences("Mr. Smith arrived at 3 p.m. on Monday! Did he? Yes.") == [
        "Mr. Smith arrived at 3 p.m. on Monday!", "Did he?", "Yes."]
    assert split_sentences("J. R. R. Tolkien wrote it. Version 3.5 is out.") == [
        "J. R. R. Tolkien wrote it.", "Version 3.5 is out."]
    assert split_sentences('"Stop!" she said. Then she left.') == ['"Stop!" she said.', "Then she left."]
    assert split_sentences("我喜欢茶。你呢？好的") == ["我喜欢茶。", "你呢？", "好的"]
    assert split_sentences("यह एक वाक्य है। यह दूसरा है।") == ["यह एक वाक्य है।", "यह दूसरा है।"]
    lines = segment("One. Two.\n\nThree.")
    assert lines == [["One.", "Two."], [], ["Three."]]
    assert join_segments(lines, "fra") == "One. Two.\n\nThree."
    assert join_segments([["我喜欢茶。", "你呢？"]], "zho") == "我喜欢茶。你呢？"


def test_filters() -> None:
    ok, checks = check_translation("Where is the library today, my friend?",
                                   "Maktaba iko wapi leo, rafiki yangu mpendwa?", "swa", has_unk=False)
    assert ok == [] and checks["langid"] == "match"
    assert "unk" in check_translation("Where is it?", "Iko <unk> wapi?", "swa", has_unk=False)[0]
    assert "unk" in check_translation("Where is it?", "Iko wapi?", "swa", has_unk=True)[0]
    assert "length_ratio" in check_translation("Where is the library today?", "Ndiyo.", "swa", False)[0]
    assert "langid" in check_translation("Where is the library today my friend?",
                                         "Where is the library today my dear friend?", "swa", False)[0]
    # Chinese needs fewer characters: the ratio is normalised by script density
    assert check_translation("I like green tea very much.", "我非常喜欢绿茶。", "zho", False, langid=False)[0] == []


def test_translate_caps_tags_and_output(source_file, tmp_path) -> None:
    examples = read_examples(source_file, "eng")
    out = tmp_path / "out"
    settings = TranslateSettings(targets=["swa"], source_language="eng", cap=1, batch_size=2)
    counts = translate_examples(examples, Phrasebook(), settings, out)
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    table = pq.read_table(out / "data" / "swa.parquet")
    assert table.schema.equals(EXAMPLE_SCHEMA)
    kept = table.to_pylist()
    assert counts["swa"]["kept"] == len(kept) == sum(r["kept"] for r in audit)
    per_dataset = {}
    for row in kept:
        per_dataset[row["dataset"]] = per_dataset.get(row["dataset"], 0) + 1
        assert row["kind"] == "translated" and row["language"] == "swa" and row["script"] == "Latn"
        assert row["source"] == "translated"
    assert all(n <= 1 for n in per_dataset.values()) and set(per_dataset) == {"d1", "d2"}
    assert {r["id"] for r in audit if r["kept"]} == {row["id"] for row in kept}
    for r in audit:
        assert r["source_language"] == "eng-Latn" and r["model"] == "phrasebook" and r["mode"] == "lookup"
        assert r["kept"] == (r["reasons"] == [])
    poem = [r for r in audit if r["checks"]["inputs"]["length_ratio"] and "Write a short poem" in
            next(e.inputs for e in examples if e.id == r["source_id"])]
    assert not poem or "inputs:langid" in poem[0]["reasons"]  # left in English: langid catches it
    # the output folder is a `files` source a recipe can use
    again = read_examples(out / "data", "swa")
    assert len(again) == len(kept) and all(e.kind == "translated" for e in again)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "translate" and manifest["outputs"]["data/swa.parquet"] == len(kept)


def test_interrupted_run_resumes_without_redoing_work(source_file, tmp_path) -> None:
    examples = read_examples(source_file, "eng")
    settings = TranslateSettings(targets=["swa", "fra"], source_language="eng", batch_size=2)
    clean = Phrasebook()
    translate_examples(examples, clean, settings, tmp_path / "clean")

    out = tmp_path / "resumed"
    first = Phrasebook(fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        translate_examples(examples, first, settings, out)
    second = Phrasebook()
    translate_examples(examples, second, settings, out)
    assert first.sentences + second.sentences == clean.sentences  # nothing translated twice
    assert second.sentences < clean.sentences
    for lang in ("swa", "fra"):
        assert pq.read_table(out / "data" / f"{lang}.parquet").equals(
            pq.read_table(tmp_path / "clean" / "data" / f"{lang}.parquet"))
    fra = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()
           if json.loads(line)["target_language"] == "fra"]
    assert any("inputs:unk" in r["reasons"] for r in fra)

    with pytest.raises(Exception, match="other settings"):
        translate_examples(examples, Phrasebook(), TranslateSettings(targets=["swa"], source_language="eng",
                                                                     cap=5), out)


def test_hf_model_by_flores_codes_and_cli(tiny_nllb, source_file, tmp_path) -> None:
    from ayakit.models.encoding import encode_source

    tr = HFTranslator(str(tiny_nllb), max_new_tokens=8, device="cpu")
    assert tr.mode_for("swa") == "nllb" and tr.mode_for("fr") == "nllb" and tr.mode_for("zho") == "prompt"
    forced = tr.tokenizer.convert_tokens_to_ids("swh_Latn")
    prompt = encode_source(tr.tokenizer, "Where is the library?", "seq2seq", 64)
    assert tr.generate_ids([prompt], forced_bos_token_id=forced)[0][0] == forced  # the target code comes first
    assert len(tr.translate(["Where is the library?", "How are you?"], "eng", "swa")) == 2

    out = tmp_path / "cli"
    args = ["translate", str(source_file), "--model", str(tiny_nllb), "--to", "swh,zho", "--out", str(out),
            "--max-new-tokens", "8", "--cap", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert {r["mode"] for r in audit if r["target_language"] == "swh-Latn"} == {"nllb"}  # targets are tags
    assert {r["mode"] for r in audit if r["target_language"] == "zho-Hans"} == {"prompt"}
    for lang in ("swh-Latn", "zho-Hans"):
        table = pq.read_table(out / "data" / f"{lang}.parquet")
        assert table.num_rows == sum(r["kept"] for r in audit if r["target_language"] == lang)
    before = (out / "progress" / "swh-Latn.jsonl").read_text()
    rerun = CliRunner().invoke(app, args)
    assert rerun.exit_code == 0 and (out / "progress" / "swh-Latn.jsonl").read_text() == before  # all done already


def test_cli_errors_are_one_line(tmp_path) -> None:
    result = CliRunner().invoke(app, ["translate", str(tmp_path / "missing.jsonl"), "--model", "m", "--to", "swa",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "does not exist" in str(result.exception)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"inputs": "a", "targets": "b"}\n')
    result = CliRunner().invoke(app, ["translate", str(bad), "--model", "m", "--to", "xx-nope",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "xx-nope" in str(result.exception)


def test_help_renders() -> None:
    for command in ['translate']:
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "--help" in result.output, result.output


def test_recipe_source_by_name(tiny_nllb, tmp_path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\ndata:\n  sources:\n    - name: calendar\n      type: embedded\n"
                      "      families: [month_name]\n      languages: [eng, fra]\n")
    out = tmp_path / "o"
    result = CliRunner().invoke(app, ["translate", "calendar", "--recipe", str(recipe), "--model", str(tiny_nllb),
                                      "--to", "swh", "--out", str(out), "--limit", "6", "--max-new-tokens", "6"])
    assert result.exit_code == 0, result.output
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert 0 < len(audit) <= 6 and all(r["source_language"] == "eng-Latn" for r in audit)
    missing = CliRunner().invoke(app, ["translate", "nope", "--recipe", str(recipe), "--model", str(tiny_nllb),
                                       "--to", "swh", "--out", str(out)])
    assert missing.exit_code != 0 and "calendar" in str(missing.exception)


def test_a_line_cut_short_is_redone(source_file, tmp_path) -> None:
    examples = read_examples(source_file, "eng")
    settings = TranslateSettings(targets=["swa"], source_language="eng", batch_size=2)
    out = tmp_path / "o"
    translate_examples(examples, Phrasebook(), settings, out)
    progress = out / "progress" / "swa.jsonl"
    lines = progress.read_text().splitlines(keepends=True)
    progress.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # interrupted mid-write
    again = Phrasebook()
    counts = translate_examples(examples, again, settings, out)
    assert again.calls == 1 and counts["swa"]["processed"] == len(examples)
    assert len((out / "audit.jsonl").read_text().splitlines()) == len(examples)
