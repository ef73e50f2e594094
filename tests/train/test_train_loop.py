"""The training loop end to end on micro models: outputs, metrics, accumulation, normalisation, bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from ayakit.errors import DataError
from ayakit.models.encoding import encode
from ayakit.recipe import RecipeError, recipe_from_dict


def _metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "model" / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("arch", ["seq2seq", "causal"])
def test_train_writes_a_generating_model_metrics_and_packing_stats(arch: str, run_dir: Path, th) -> None:
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    from ayakit.train.loop import train

    out = train(th.micro_recipe(arch, steps=12, optimizer="adafactor", lr=1e-2, warmup_steps=2,
                                schedule="linear", eval_every=6), run_dir)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "train" and manifest["steps"] == 12
    # packing shares rows: the micro recipe's rows hold 1.06-1.2 examples over the 48 rows sampled (its tokenizer,
    # trained on the micro mixture's ~300 distinct texts only, finds ~450 of the 700 pieces asked)
    assert 0.5 < manifest["packing"]["fill_rate"] <= 1 and manifest["packing"]["examples_per_row"] > 1.0
    assert manifest["tokens_seen"] > manifest["target_tokens_seen"] > 0
    rows = _metrics(run_dir)
    train_rows = [r for r in rows if r["split"] == "train"]
    val_rows = [r for r in rows if r["split"] == "validation"]
    assert [r["step"] for r in train_rows] == list(range(1, 13))
    assert {"step", "loss", "lr", "tokens_per_s", "examples_seen"} <= set(train_rows[0])
    assert train_rows[0]["lr"] < train_rows[2]["lr"]  # warm-up, then linear decay
    assert train_rows[-1]["lr"] < train_rows[3]["lr"]
    assert [r["step"] for r in val_rows] == [6, 12] and all(r["val_loss"] > 0 for r in val_rows)
    assert train_rows[-1]["loss"] < train_rows[0]["loss"]
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tb").iterdir())
    assert json.loads((out / "ayakit.json").read_text())["arch"] == arch

    cls = AutoModelForSeq2SeqLM if arch == "seq2seq" else AutoModelForCausalLM
    model, tok = cls.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    enc = encode(tok, "Name month number 3 in French.", "", arch, 24, 8)
    assert model.generate(torch.tensor([enc.source]), max_new_tokens=3).shape[0] == 1


def test_gradient_accumulation_matches_a_bigger_batch(tmp_path: Path, th, examples, tokenizer_dir: Path) -> None:
    import shutil

    from ayakit.train.loop import train

    runs, losses = [], []
    for name, settings in (("big", {"batch_size": 4, "grad_accum": 1}), ("accum", {"batch_size": 2, "grad_accum": 2})):
        run = th.write_mixture(tmp_path / name, examples)
        shutil.copytree(tokenizer_dir, run / "tokenizer")
        train(th.micro_recipe(steps=3, **settings), run)
        runs.append(load_file(str(run / "model" / "model.safetensors")))
        losses.append([r["loss"] for r in _metrics(run) if r["split"] == "train"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    # Adam turns float-rounding differences of near-zero gradients into up to 2 lr of movement: 1e-4 of slack
    for name in runs[0]:
        assert torch.allclose(runs[0][name], runs[1][name], atol=1e-4), name


def test_loss_normalisation_sequence_versus_token(run_dir: Path, th) -> None:
    from ayakit.train.loop import train

    train(th.micro_recipe(steps=1, loss_normalization="sequence"), run_dir)
    seq = _metrics(run_dir)[0]["loss"]
    train(th.micro_recipe(steps=1, loss_normalization="token"), run_dir)
    tok = _metrics(run_dir)[0]["loss"]
    assert seq != pytest.approx(tok, rel=1e-4)  # same weights, same batch: only the denominators differ


def test_missing_mixture_is_a_data_error(tmp_path: Path, th) -> None:
    from ayakit.train.loop import train

    with pytest.raises(DataError, match="no mixture"):
        train(th.micro_recipe(), tmp_path / "empty")


def test_mixture_without_a_column_is_a_data_error(tmp_path: Path, th) -> None:
    from ayakit.train.loop import train

    (tmp_path / "run" / "data").mkdir(parents=True)
    pq.write_table(pa.table({"inputs": ["a"], "targets": ["b"]}), tmp_path / "run" / "data" / "shards-00000.parquet")
    with pytest.raises(DataError, match=r"missing column\(s\) \['language', 'id', 'split'\]"):
        train(th.micro_recipe(), tmp_path / "run")


@pytest.mark.parametrize("change, message", [
    ({"train": {"max_source_length": 1}}, "max_source_length"),
    ({"train": {"batch_size": 0}}, "batch_size"),
    ({"train": {"pack_source_length": 8, "max_source_length": 24}}, "pack_source_length=8 is shorter"),
    ({"train": {"precision": "fp16"}}, "fp16 needs a GPU"),
    ({"model": {"arch": "causal", "preset": "gigantic"}}, "known presets"),
])
def test_impossible_recipes_are_one_line_errors(change: dict, message: str, run_dir: Path, th) -> None:
    from ayakit.train.loop import train

    if torch.cuda.is_available() and "fp16" in message:
        pytest.skip("fp16 is possible on this machine (it has a GPU)")
    base = th.micro_recipe().model_dump()
    for section, values in change.items():
        base[section] = base[section] | values
    with pytest.raises(RecipeError, match=message) as err:
        train(recipe_from_dict(base), run_dir)
    assert "\n" not in str(err.value)
    assert not (run_dir / "model").exists()  # nothing written


def test_cli_train_prints_one_line_errors(tmp_path: Path, monkeypatch, capsys, th, run_dir: Path) -> None:
    from ayakit import cli

    th.save_recipe(th.micro_recipe(), run_dir)
    monkeypatch.setattr(sys, "argv", ["ayakit", "train", str(run_dir), "model.preset=huge"])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "model.preset='huge' is unknown" in err and "Traceback" not in err
    monkeypatch.setattr(sys, "argv", ["ayakit", "train", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit):
        cli.main()
    assert "no recipe at" in capsys.readouterr().err


def test_unpacked_training_pads_each_example_alone(run_dir: Path, th) -> None:
    from ayakit.train.loop import train

    out = train(th.micro_recipe(steps=2, packing=False), run_dir)
    stats = json.loads((out / "manifest.json").read_text())["packing"]
    assert stats["enabled"] is False and stats["examples_per_row"] == 1.0
    assert stats["fill_rate"] < 0.9  # padding to the batch's longest example wastes slots
