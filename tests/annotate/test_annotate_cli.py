"""The `ayakit annotate` commands end to end on a temporary SQLite database."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from sqlalchemy import select
from typer.testing import CliRunner

from ayakit.annotate import store
from ayakit.annotate.cli import app
from ayakit.annotate.db import open_db
from ayakit.annotate.models import Pair, User


def test_add_user_load_export_agreement(tmp_path, pairs_file) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    run = CliRunner()
    r = run.invoke(app, ["add-user", "amina", "--languages", "sw,ar", "--admin", "--db", db])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("aya_")
    r = run.invoke(app, ["add-user", "amina", "--languages", "sw", "--db", db])
    assert r.exit_code != 0 and "already exists" in str(r.exception)
    r = run.invoke(app, ["load", str(pairs_file), "--activity", "compare", "--db", db])
    assert r.exit_code == 0 and "loaded 3 new" in r.stdout
    r = run.invoke(app, ["load", str(pairs_file), "--activity", "compare", "--db", db])
    assert "loaded 0 new" in r.stdout and "3 already there" in r.stdout
    f = open_db(db)
    with f() as s:
        user = s.scalar(select(User))
        store.save_annotation(s, user, "swa", "Habari", "Nzuri", submit=True)
        for pair in s.scalars(select(Pair)):
            store.add_comparison(s, user, pair.id, pair.model_a, "a")
    out = tmp_path / "aya.parquet"
    r = run.invoke(app, ["export", str(out), "--format", "aya-dataset", "--db", db])
    assert r.exit_code == 0 and "wrote 1 annotations" in r.stdout
    assert pq.read_table(out).column("language_code").to_pylist() == ["swa"]
    r = run.invoke(app, ["export", str(out), "--format", "csv", "--db", db])
    assert r.exit_code != 0 and "--format must be one of" in str(r.exception)
    report = tmp_path / "agreement.json"
    r = run.invoke(app, ["agreement", "--db", db, "--out", str(report), "--bootstrap", "200"])
    assert r.exit_code == 0, r.output
    assert "human win rates" in r.stdout
    rep = json.loads(report.read_text())
    assert rep["ratings"] == 3 and rep["human_vs_judge"]["all"] == {"ratings": 3, "agreement": 2 / 3}


def test_help_explains_every_option() -> None:
    run = CliRunner()
    for cmd in ("serve", "add-user", "load", "export", "agreement"):
        r = run.invoke(app, [cmd, "--help"])
        assert r.exit_code == 0 and "--db" in r.stdout
