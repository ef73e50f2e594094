"""Open the annotation database (SQLite by default, PostgreSQL by URL) and bring its schema to the newest revision."""

from __future__ import annotations

import os
import secrets
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ayakit.annotate.models import Setting
from ayakit.errors import DataError

DEFAULT_URL = "sqlite:///annotations.db"
ENV_URL = "AYAKIT_ANNOTATE_DB"


def default_url() -> str:
    """The database URL used when none is given: $AYAKIT_ANNOTATE_DB, else sqlite:///annotations.db."""
    return os.environ.get(ENV_URL) or DEFAULT_URL


def normalize_url(url: str) -> str:
    """Pick an installed driver: postgresql:// means psycopg (3) unless psycopg2 is installed."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DataError(f"bad database URL {url!r}: {exc}") from None
    if parsed.drivername == "postgresql":
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str) -> Engine:
    """An engine for the URL; SQLite gets foreign keys on and may be shared across the server's threads."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise DataError(f"database URL {parsed.render_as_string()} needs the driver {exc.name}: "
                        f"pip install 'psycopg[binary]'") from None


def alembic_config(url: str) -> Config:
    """The Alembic configuration of the migrations shipped inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("ayakit.annotate").joinpath("migrations")))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to `revision` (default: the newest) on this database."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def open_db(url: str | None = None) -> sessionmaker[Session]:
    """Open the database at url, upgrade its schema to head, and return a session factory."""
    engine = make_engine(url or default_url())
    upgrade(engine)
    return sessionmaker(engine, expire_on_commit=False)


def app_secret(session: Session) -> str:
    """This database's secret (created on first use): it signs compare orders and salts exported user ids."""
    row = session.scalar(select(Setting).where(Setting.key == "secret"))
    if row is None:
        session.add(Setting(key="secret", value=secrets.token_hex(32)))
        try:
            session.commit()
        except IntegrityError:  # another process created it first: use theirs
            session.rollback()
        row = session.scalar(select(Setting).where(Setting.key == "secret"))
    return row.value
