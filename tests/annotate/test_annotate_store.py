"""Unit tests of the schema, migrations, people and the server-side checks."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from ayakit.annotate import auth, store
from ayakit.annotate.db import alembic_config, current_revision, make_engine, upgrade
from ayakit.annotate.models import Base, Comparison, Pair, Vote
from ayakit.errors import DataError
from ayakit.languages import UnknownLanguageError


def test_migrations_run_from_empty_and_match_the_models(tmp_path) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    assert current_revision(engine) is None
    upgrade(engine)
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    assert current_revision(engine) == head
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    # down to nothing and up again
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert not set(Base.metadata.tables) & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert current_revision(engine) == head


def test_add_user_normalises_languages_and_hides_the_token(factory) -> None:
    with factory() as s:
        user, token = auth.add_user(s, "Fatima", "ar, fa ,ur,ar", admin=False)
        assert user.language_codes == ["ara", "pes", "urd"]
        assert token.startswith("aya_") and token not in user.token_hash
        assert auth.user_for_token(s, token).id == user.id
        assert auth.user_for_token(s, token + "x") is None
        with pytest.raises(DataError, match="already exists"):
            auth.add_user(s, "Fatima", "ara")
        with pytest.raises(UnknownLanguageError):
            auth.add_user(s, "X", "qqq")
        new = auth.rotate_token(s, "Fatima")
        assert auth.user_for_token(s, token) is None and auth.user_for_token(s, new).id == user.id


def test_rtl_languages() -> None:
    from ayakit.annotate.config import is_rtl

    assert all(is_rtl(c) for c in ("ara", "heb", "pes", "urd", "yid", "pus", "snd"))
    assert not any(is_rtl(c) for c in ("swa", "eng", "zho", "hin", "aze"))


def test_server_side_checks(factory, people) -> None:
    with factory() as s:
        amina = s.scalar(select(auth.User).where(auth.User.name == "amina"))
        baraka = s.scalar(select(auth.User).where(auth.User.name == "baraka"))
        draft = store.save_annotation(s, amina, "swa", "a", "b", submit=False)
        with pytest.raises(store.NotFound):
            store.save_annotation(s, baraka, None, "x", "y", submit=True, annotation_id=draft.id)
        with pytest.raises(store.NotFound):
            store.own_annotation(s, baraka, draft.id)
        with pytest.raises(store.Forbidden):
            store.save_annotation(s, baraka, "ara", "x", "y", submit=True)
        with pytest.raises(store.Invalid, match="completion is empty"):
            store.save_annotation(s, amina, "swa", "x", "\r\n ", submit=True)
        done = store.save_annotation(s, amina, "swa", "a\r\nb", "c", submit=True, annotation_id=draft.id)
        assert (done.inputs, done.status) == ("a\nb", "submitted")
        with pytest.raises(store.Forbidden):
            store.add_vote(s, amina, "annotation", done.id, "up", "")
        store.add_vote(s, baraka, "annotation", done.id, "up", "")
        store.add_vote(s, baraka, "annotation", done.id, "down", "changed my mind")  # a second vote replaces
        assert [(v.up, v.reason) for v in s.scalars(select(Vote))] == [(False, "changed my mind")]


def test_comparison_winner_follows_the_order_shown(factory, people) -> None:
    with factory() as s:
        amina = s.scalar(select(auth.User).where(auth.User.name == "amina"))
        baraka = s.scalar(select(auth.User).where(auth.User.name == "baraka"))
        pair = Pair(external_id="p", language="swa", prompt="?", model_a="aya", model_b="mt0",
                    answer_a="1", answer_b="2")
        s.add(pair)
        s.commit()
        c1 = store.add_comparison(s, amina, pair.id, "mt0", "a")
        c2 = store.add_comparison(s, baraka, pair.id, "mt0", "b")
        assert (c1.winner, c2.winner) == ("mt0", "aya")
        with pytest.raises(store.Conflict):
            store.add_comparison(s, amina, pair.id, "aya", "b")
        with pytest.raises(store.Invalid):
            store.add_comparison(s, amina, pair.id, "gpt", "a")
        assert [r.choice for r in s.scalars(select(Comparison))] == ["a", "b"]
        # the database itself refuses a choice outside the five labels
        s.add(Comparison(user_id=amina.id, pair_id=pair.id, shown_a="aya", choice="maybe"))
        with pytest.raises(IntegrityError):
            s.commit()
