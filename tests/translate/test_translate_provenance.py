"""`ayakit translate`: resume keyed by the model's weights, a full audit trail, unsure language ID dropped, plain
text input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ayakit.cli import app
from ayakit.data.translate import TranslateSettings, read_examples, translate_examples
from ayakit.errors import DataError
from ayakit.io import file_sha256
from ayakit.models import weights_fingerprint


class Fixed:
    """Translates every sentence to the same text."""

    mode = "lookup"

    def __init__(self, text: str, name: str = "m", fingerprint: str = "fp1") -> None:
        self.text, self.name, self.fingerprint = text, name, fingerprint

    def mode_for(self, target: str) -> str:
        return "lookup"

    def translate(self, texts: list[str], source: str, target: str) -> list[tuple[str, bool]]:
        return [(self.text, False) for _ in texts]


def _perturbed_copy(model: Path, to: Path) -> Path:
    from safetensors.torch import load_file, save_file

    shutil.copytree(model, to)
    weights = to / "model.safetensors"
    tensors = {k: v + 0.01 if v.is_floating_point() else v for k, v in load_file(weights).items()}
    save_file(tensors, weights, metadata={"format": "pt"})
    return to


def test_resume_is_keyed_by_the_weights_not_the_folder_name(tiny_nllb: Path, tmp_path: Path) -> None:
    src = tmp_path / "s.txt"
    src.write_text("Where is the library?\nHow are you?\n", encoding="utf-8")
    first = shutil.copytree(tiny_nllb, tmp_path / "a" / "model")
    other = _perturbed_copy(tiny_nllb, tmp_path / "b" / "model")
    assert weights_fingerprint(first) == weights_fingerprint(tiny_nllb) != weights_fingerprint(other)
    out = tmp_path / "out"
    args = ["translate", str(src), "--to", "swh", "--out", str(out), "--max-new-tokens", "4"]
    result = CliRunner().invoke(app, [*args, "--model", str(first)])
    assert result.exit_code == 0, result.output
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert {r["model_fingerprint"] for r in audit} == {weights_fingerprint(first)}
    result = CliRunner().invoke(app, [*args, "--model", str(other)])  # same folder name, other weights
    assert result.exit_code != 0 and isinstance(result.exception, DataError)
    assert "other settings, model (weights) or input" in str(result.exception)
    result = CliRunner().invoke(app, [*args, "--model", str(other), "--restart"])
    assert result.exit_code == 0, result.output
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert {r["model_fingerprint"] for r in audit} == {weights_fingerprint(other)}


def test_audit_has_texts_and_manifest_the_input(tiny_nllb: Path, tmp_path: Path) -> None:
    src = tmp_path / "plain.jsonl"
    src.write_text(json.dumps({"inputs": "Where is the library?"}) + "\n")  # no targets column: plain sentences
    out = tmp_path / "o"
    result = CliRunner().invoke(app, ["translate", str(src), "--model", str(tiny_nllb), "--to", "swh", "--out",
                                      str(out), "--max-new-tokens", "4"])
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert row["source"] == {"inputs": "Where is the library?", "targets": ""}
    assert set(row["output"]) == {"inputs", "targets"} and row["output"]["targets"] == ""
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["source"] == {"path": str(src.resolve()), "sha256": file_sha256(src)}
    assert manifest["inputs"]["model_fingerprint"] == weights_fingerprint(tiny_nllb)


def test_unplaceable_outputs_dropped_by_default(tmp_path: Path) -> None:
    src = tmp_path / "s.txt"
    src.write_text("\ufeffWhere is the library?\r\n\r\nI need a book.\r\n", encoding="utf-8")
    examples = read_examples(src, "eng")
    assert [e.inputs for e in examples] == ["Where is the library?", "I need a book."]
    junk = translate_examples(examples, Fixed("e e e e e e e"), TranslateSettings(["swa"], "eng"), tmp_path / "a")
    assert junk["swa"]["kept"] == 0 and junk["swa"]["dropped"] == {"inputs:langid_short": 2}
    assert junk["swa"]["langid_unsure"] == 2
    kept = translate_examples(examples, Fixed("e e e e e e e"), TranslateSettings(["swa"], "eng", strict_langid=False),
                              tmp_path / "b")
    assert kept["swa"]["kept"] == 2
    good = Fixed("Ninahitaji kitabu kizuri sana.")
    assert translate_examples(examples, good, TranslateSettings(["swa"], "eng"), tmp_path / "c")["swa"]["kept"] == 2


def test_cli_prints_the_unsure_drops(tmp_path: Path, monkeypatch) -> None:
    import ayakit.data.translate as tr

    monkeypatch.setattr(tr, "HFTranslator", lambda *a, **k: Fixed("e e e e e e e"))
    src = tmp_path / "s.txt"
    src.write_text("Where is the library?\nI need a book.\n", encoding="utf-8")
    args = ["translate", str(src), "--model", "m", "--to", "swh", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "could not place an output (unknown / too short): swh-Latn 2; --no-strict-langid keeps them" in out
    kept = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "k"), "--no-strict-langid"], env={"COLUMNS": "200"})
    assert kept.exit_code == 0 and "could not place" not in kept.output


def test_bad_text_file_is_located(tmp_path: Path) -> None:
    src = tmp_path / "s.txt"
    src.write_bytes(b"fine\ncaf\xe9\n")
    with pytest.raises(DataError, match=r"s\.txt:2: not valid UTF-8 \(byte 0xe9 at column 4\)"):
        read_examples(src, "eng")
