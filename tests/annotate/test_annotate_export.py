"""Export in the Aya Dataset layout, approval ratios from the votes, and reading the export as a recipe source."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from ayakit.annotate import store
from ayakit.annotate.export import AYA_SCHEMA, export, manifest_path
from ayakit.annotate.load import load
from ayakit.annotate.models import Item, User
from ayakit.records import EXAMPLE_SCHEMA


def _people(s):
    return {u.name: u for u in s.scalars(select(User))}


@pytest.fixture
def annotated(factory, people, tmp_path):
    """Two originals (swa, ara), one re-annotation of a translated item, a draft, votes on each."""
    src = tmp_path / "mt.jsonl"
    src.write_text('{"inputs": "Q", "targets": "A", "language": "swa", "kind": "translated", "source": "mt"}\n',
                   encoding="utf-8")
    with factory() as s:
        load(s, src, "edit")
        load(s, src, "rate")
        p = _people(s)
        item = s.scalar(select(Item).where(Item.activity == "edit"))
        sw = store.save_annotation(s, p["amina"], "swa", "Habari?", "Nzuri.", submit=True)
        ar = store.save_annotation(s, p["amina"], "ara", "ما اسمك؟", "اسمي أمينة.", submit=True)
        re_ = store.save_annotation(s, p["baraka"], "swa", "Q (edited)", "A (edited)", submit=True,
                                    parent_item_id=item.id)
        store.save_annotation(s, p["baraka"], "swa", "draft", "draft", submit=False)
        store.add_vote(s, p["baraka"], "annotation", sw.id, "up", "")
        store.add_vote(s, p["amina"], "annotation", re_.id, "down", "typo")
        rate_item = s.scalar(select(Item).where(Item.activity == "rate"))
        store.add_vote(s, p["baraka"], "item", rate_item.id, "down", "")
        store.add_vote(s, p["amina"], "item", rate_item.id, "up", "")
        return {"sw": sw.id, "ar": ar.id, "re": re_.id}


def test_aya_dataset_layout(factory, annotated, tmp_path) -> None:
    out = tmp_path / "aya.parquet"
    with factory() as s:
        result = export(s, out)
    table = pq.read_table(out)
    assert table.schema.equals(AYA_SCHEMA)
    assert table.column_names[:6] == ["inputs", "targets", "language", "language_code", "annotation_type", "user_id"]
    rows = {r["inputs"]: r for r in table.to_pylist()}
    assert set(rows) == {"Habari?", "ما اسمك؟", "Q (edited)"} and result.rows == 3  # no draft
    assert rows["Habari?"]["language"] == "Swahili" and rows["ما اسمك؟"]["language_code"] == "ara"
    assert rows["Q (edited)"]["annotation_type"] == "re-annotations"
    assert rows["Habari?"]["annotation_type"] == "original-annotations"
    assert (rows["Habari?"]["approval_ratio"], rows["Q (edited)"]["approval_ratio"]) == (1.0, 0.0)
    assert rows["ما اسمك؟"]["approval_ratio"] is None and rows["ما اسمك؟"]["votes_up"] == 0
    # user ids are hashed: stable per person, not the name, different people differ
    assert rows["Habari?"]["user_id"] == rows["ما اسمك؟"]["user_id"] != rows["Q (edited)"]["user_id"]
    assert "amina" not in rows["Habari?"]["user_id"]
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["rows"] == 3 and manifest["by_language"] == {"ara": 1, "swa": 2}
    assert manifest["approval"]["original-annotations"]["approval_ratio"] == 1.0
    assert manifest["approval"]["kind:translated"] == {"up": 1, "down": 1, "approval_ratio": 0.5}


def test_filters_and_examples_format(factory, annotated, tmp_path) -> None:
    with factory() as s:
        assert export(s, tmp_path / "a.parquet", min_approval=0.5).rows == 2  # the down-voted edit is left out
        assert export(s, tmp_path / "b.parquet", languages=["ara"]).rows == 1
        export(s, tmp_path / "c.parquet", fmt="examples", license="CC-BY-4.0")
    table = pq.read_table(tmp_path / "c.parquet")
    assert table.schema.equals(EXAMPLE_SCHEMA)
    assert {r["kind"] for r in table.to_pylist()} == {"human"}
    assert {r["license"] for r in table.to_pylist()} == {"CC-BY-4.0"}


def test_export_reads_as_an_aya_dataset_recipe_source(factory, annotated, tmp_path) -> None:
    sources = pytest.importorskip("ayakit.data.sources", reason="the data stage's source readers are not installed")
    if "aya_dataset" not in getattr(sources, "READERS", {}):
        pytest.skip("the data stage has no aya_dataset reader yet")
    from ayakit.recipe import load_recipe

    folder = tmp_path / "human"  # a local copy in the hub layout: the export and its (hidden) manifest
    with factory() as s:
        export(s, folder / "train.parquet")
    assert sorted(p.name for p in folder.iterdir()) == [".train.manifest.json", "train.parquet"]
    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(f"name: t\ndata:\n  sources:\n    - name: human\n      type: aya_dataset\n"
                           f"      path: {folder}\n", encoding="utf-8")
    recipe = load_recipe(recipe_path)
    source = sources.open_source(recipe.data.sources[0], recipe)
    rows = [r for batch in source.iter_batches() for r in batch.to_pylist()]
    assert sorted(r["inputs"] for r in rows) == sorted(["Habari?", "ما اسمك؟", "Q (edited)"])
    assert {r["language"] for r in rows} == {"swh-Latn", "arb-Arab"} and {r["kind"] for r in rows} == {"human"}
