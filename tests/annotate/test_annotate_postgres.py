"""The app against a real PostgreSQL server, started here from Debian's package (skipped, saying why, without it)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from ayakit.annotate import auth, store
from ayakit.annotate.agreement import report
from ayakit.annotate.db import current_revision, open_db
from ayakit.annotate.export import export
from ayakit.annotate.load import load
from ayakit.annotate.models import Annotation, Base, Pair


def _pg_bin() -> Path | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(d, "initdb").exists() and Path(d, "pg_ctl").exists():
            return Path(d)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port; stopped and removed afterwards."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]'), so PostgreSQL cannot be reached")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    as_user = None
    if os.geteuid() == 0:  # the server refuses to run as root: use the package's postgres account
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
            as_user = pw.pw_uid
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
    # not under tmp_path: pytest's base temp dir is private to the current user, the server may be another one
    root = Path(tempfile.mkdtemp(prefix="ayakit-pg-"))
    if as_user is not None:
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data, port = root / "data", _free_port()
    run = dict(user=as_user, capture_output=True, text=True, timeout=60)
    try:
        r = subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "ayakit", "-A", "trust", "-E", "UTF8",
                            "--locale=C", "--no-sync"], **run)
        if r.returncode != 0:
            pytest.skip(f"initdb failed: {(r.stderr or r.stdout).strip()[-300:]}")
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        r = subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", opts, "-w",
                            "-t", "30", "start"], **run)
        if r.returncode != 0:
            log = (root / "log").read_text(errors="replace")[-300:] if (root / "log").exists() else r.stderr
            pytest.skip(f"PostgreSQL did not start: {log.strip()}")
        yield f"postgresql://ayakit@127.0.0.1:{port}/postgres"
    finally:
        if data.exists():
            subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], **run)
        shutil.rmtree(root, ignore_errors=True)


def test_migrate_annotate_export_and_agree_on_postgres(postgres_url, pairs_file, tmp_path) -> None:
    factory = open_db(postgres_url)
    engine = factory.kw["bind"]
    assert engine.dialect.name == "postgresql"
    assert current_revision(engine) is not None
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    with factory() as s:
        amina, _ = auth.add_user(s, "amina", "swa,ara")
        baraka, _ = auth.add_user(s, "baraka", "swa")
        assert load(s, pairs_file, "compare").added == 3
        store.save_annotation(s, amina, "ara", "ما اسمك؟", "اسمي أمينة.", submit=True)
        draft = store.save_annotation(s, amina, "swa", "rasimu", "rasimu", submit=False)
        with pytest.raises(store.NotFound):
            store.save_annotation(s, baraka, None, "x", "y", submit=True, annotation_id=draft.id)
        pair = s.scalar(select(Pair).where(Pair.language == "swa").order_by(Pair.id))
        store.add_comparison(s, amina, pair.id, pair.model_a, "a")
        store.add_comparison(s, baraka, pair.id, pair.model_b, "b")
        with pytest.raises(store.Conflict):
            store.add_comparison(s, baraka, pair.id, pair.model_b, "b")
        result = export(s, tmp_path / "pg.parquet")
        rep = report(s, n_boot=100)
    from fastapi.testclient import TestClient

    from ayakit.annotate.app import create_app

    page = TestClient(create_app(factory=factory)).get("/login")
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    assert result.rows == 1 and result.by_language == {"ara": 1}
    assert rep["inter_annotator"]["swa"] == {"pairs": 1, "raw_agreement": 1.0, "kappa": None}
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_hostile_ids_and_nul_bytes_behave_the_same_on_both_databases(backend: str, request, pairs_file) -> None:
    """Ids past what the database stores are 422 (not 500); a NUL in a text field is refused with 422 on both."""
    from fastapi.testclient import TestClient

    from ayakit.annotate.app import create_app

    factory = request.getfixturevalue("factory") if backend == "sqlite" \
        else open_db(request.getfixturevalue("postgres_url"))
    with factory() as s:
        _, token = auth.add_user(s, "amina", "swa", admin=True)
        load(s, pairs_file, "compare")
    client = TestClient(create_app(factory=factory), raise_server_exceptions=False)
    login = client.get("/login").text
    csrf = login.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/login", data={"token": token, "csrf_token": csrf}, follow_redirects=False).status_code == 303
    csrf = client.get("/").text.split('name="csrf_token" value="')[1].split('"')[0]
    for big in ("99999999999999999999", str(2**63), str(2**31), "-99999999999999999999"):
        assert client.get(f"/annotations/{big}").status_code == 422, big
        assert client.get(f"/edit/{big}").status_code == 422, big
        assert client.post(f"/edit/{big}", data={"inputs": "a", "targets": "b", "csrf_token": csrf}).status_code == 422
        r = client.post("/rate", data={"target": "item", "target_id": big, "vote": "up", "csrf_token": csrf})
        assert r.status_code == 422 and "target_id" in r.text, (big, r.status_code)
        assert client.post(f"/compare/{big}", data={"choice": "a", "csrf_token": csrf}).status_code == 422
    assert client.get(f"/annotations/{2**31 - 1}").status_code == 404  # in range, no such row
    r = client.post("/write", data={"language": "swa", "inputs": "Habari\x00?", "targets": "Nzuri.",
                                    "action": "submit", "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 422 and "NUL" in r.text
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Annotation)) == 0
    admin = client.get("/admin").text
    title = admin.split("<title>")[1].split("</title>")[0]
    assert title == "Progress · ayakit" and "<table" not in title
    factory.kw["bind"].dispose()
