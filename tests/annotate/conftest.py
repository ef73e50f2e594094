"""Fixtures of the annotation tests: a fresh SQLite database, people, a signed-in HTTP client."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from ayakit.annotate import auth
from ayakit.annotate.app import create_app
from ayakit.annotate.db import open_db

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')

PAIRS = [
    {"id": "d1", "language": "swa", "prompt": "Habari ya asubuhi?", "model_a": "aya", "model_b": "mt0",
     "answer_a": "Nzuri sana, asante.", "answer_b": "good", "verdict": "A"},
    {"id": "d2", "language": "ara", "prompt": "ما هي عاصمة فرنسا؟", "model_a": "aya", "model_b": "mt0",
     "answer_a": "عاصمة فرنسا هي باريس.", "answer_b": "لندن", "winner": "aya"},
    {"id": "d3", "language": "swa", "prompt": "Taja rangi tatu.", "model_a": "aya", "model_b": "mt0",
     "answer_a": "Nyekundu, bluu, kijani.", "answer_b": "Nyekundu", "verdict": "TIE"},
]


def csrf_of(html: str) -> str:
    """The CSRF token embedded in a page's forms."""
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database migrated to head once per session (tests copy it rather than migrate again)."""
    path = tmp_path_factory.mktemp("annotate-template") / "template.db"
    open_db(f"sqlite:///{path}").kw["bind"].dispose()
    return path


@pytest.fixture
def factory(tmp_path: Path, migrated_template: Path) -> sessionmaker[Session]:
    """A fresh SQLite database at head (open_db still checks the revision, which is then a no-op)."""
    path = tmp_path / "annotations.db"
    shutil.copyfile(migrated_template, path)
    return open_db(f"sqlite:///{path}")


@pytest.fixture
def people(factory: sessionmaker[Session]) -> dict[str, str]:
    """Three people and their tokens: amina (swa, ara, admin), baraka (swa), chen (zho)."""
    tokens = {}
    with factory() as s:
        for name, langs, admin in (("amina", "swa,ara", True), ("baraka", "sw", False), ("chen", "zho", False)):
            tokens[name] = auth.add_user(s, name, langs, admin=admin)[1]
    return tokens


@pytest.fixture
def web(factory: sessionmaker[Session]):
    """The app over the test database."""
    return create_app(factory=factory)


def sign_in(app, token: str) -> tuple[TestClient, str]:
    """A client signed in with token, and its session's CSRF token."""
    client = TestClient(app)
    page = client.get("/login")
    r = client.post("/login", data={"token": token, "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client, csrf_of(client.get("/").text)


@pytest.fixture
def client_for(web, people) -> Callable[[str], tuple[TestClient, str]]:
    """Sign a named person in: returns (client, csrf token)."""
    return lambda name: sign_in(web, people[name])


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    """A small `ayakit judge`-shaped JSONL of answer pairs with verdicts."""
    path = tmp_path / "judge.jsonl"
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in PAIRS), encoding="utf-8")
    return path


@pytest.fixture
def csrf() -> Callable[[str], str]:
    """csrf(html): the CSRF token of a page's forms."""
    return csrf_of


@pytest.fixture
def signer(web) -> Callable[[str], tuple[TestClient, str]]:
    """signer(token): a client signed in with a raw token."""
    return lambda token: sign_in(web, token)
