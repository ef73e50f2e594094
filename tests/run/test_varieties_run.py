"""A user's own JSONL in five language varieties (two outside what the Aya 101 name as such) through `ayakit run`
at smoke size: the mixture and the report keep five distinct rows, and the terminal says what was dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml


def ayakit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The ayakit CLI in a subprocess, one torch thread, offline."""
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", COLUMNS="120", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "ayakit.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"ayakit {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc

SENTENCES = {  # a few real sentences per variety (greetings and small talk)
    "swa": ["Habari ya asubuhi, rafiki yangu.", "Ninapenda kusoma vitabu jioni.", "Leo hali ya hewa ni nzuri sana.",
            "Tutaonana kesho sokoni.", "Chakula hiki kina ladha tamu."],
    "kin": ["Mwaramutse neza, nshuti yanjye.", "Nkunda gusoma ibitabo nimugoroba.", "Uyu munsi ikirere ni cyiza cyane.",
            "Tuzabonana ejo ku isoko.", "Ibi biryo biraryoshye cyane."],
    "yue": ["早晨，我嘅朋友。", "我鍾意夜晚睇書。", "今日天氣好好。", "聽日街市見。", "呢啲嘢食好好味。"],
    "zho-Hant": ["早安，我的朋友。", "我喜歡在晚上看書。", "今天天氣非常好。", "明天在市場見。", "這道菜很好吃。"],
    "srp_Latn": ["Dobro jutro, prijatelju moj.", "Volim da čitam knjige uveče.", "Danas je vreme veoma lepo.",
                 "Vidimo se sutra na pijaci.", "Ovo jelo je veoma ukusno."],
}


def test_five_varieties_build_train_and_stay_five_rows(tmp_path: Path) -> None:
    rows = [{"inputs": f"Repeat in your language ({i}): {s}", "targets": s, "language": lang}
            for lang, sents in SENTENCES.items() for i in range(8) for s in sents]
    rows += [{"inputs": "Serbian in Cyrillic", "targets": "Добро јутро, пријатељу мој.", "language": "srp"}]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                         encoding="utf-8")
    recipe = {
        "name": "varieties", "seed": 1,
        "data": {"budget": 300, "tasks": 1, "workers": 1, "languages": ["swa", "kin", "yue", "zho-Hant", "srp-Latn"],
                 "filters": {"langid": False},
                 "sources": [{"name": "mine", "type": "files", "path": str(tmp_path / "mine.jsonl")}]},
        "tokenizer": {"vocab_size": 1200, "max_sentences": 2000},
        "model": {"arch": "seq2seq", "preset": "micro"},
        "train": {"max_source_length": 48, "max_target_length": 32, "batch_size": 16, "optimizer": "adamw",
                  "lr": 0.003, "steps": 10, "eval_every": 10, "checkpoint_every": 10, "log_every": 5, "threads": 1},
        "eval": {"suite": "aya-mini", "languages": ["swa", "zho"], "prompts": 1, "max_items": 4, "batch_size": 16},
    }
    path = tmp_path / "varieties.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    out = ayakit("run", str(path), "--run-dir", str(tmp_path / "run"), cwd=tmp_path).stdout
    stats = json.loads((tmp_path / "run" / "data" / "stats.json").read_text())
    assert set(stats["counts"]["language"]) == {"swh-Latn", "kin-Latn", "yue-Hant", "zho-Hant", "srp-Latn"}
    assert (tmp_path / "run" / "model" / "config.json").is_file()
    md = (tmp_path / "run" / "report" / "report.md").read_text(encoding="utf-8")
    table = md.split("### Per language variety (5)")[1].split("\n\n")[1]
    shown = {line.split("|")[1].strip().split(" ")[0] for line in table.splitlines()[2:]}
    assert shown == {"swh-Latn", "kin-Latn", "yue-Hant", "zho-Hant", "srp-Latn"}
    assert "| kin-Latn (Kinyarwanda) | unlisted |" in md
    assert "languages trained: 5 (3 high, 1 low, 1 unlisted)" in out
    assert "dropped 1 rows (outside data.languages): srp-Cyrl 1" in " ".join(out.split())
