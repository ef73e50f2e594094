"""People and sign-in: per-person tokens (only their hash is stored), session cookies, CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ayakit import languages as L
from ayakit.annotate.config import settings
from ayakit.annotate.models import LoginSession, User
from ayakit.errors import DataError

TOKEN_PREFIX = "aya_"


def hash_secret(value: str) -> str:
    """SHA-256 of a high-entropy random secret (a token or a session key); only this is stored."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def parse_languages(spec: str | list[str]) -> list[str]:
    """Registry codes from 'swa,ara' or a list; unknown codes raise UnknownLanguageError."""
    parts = spec.split(",") if isinstance(spec, str) else spec
    codes: list[str] = []
    for part in (p.strip() for p in parts):
        if part and (code := L.normalize_any(part)) not in codes:
            codes.append(code)
    if not codes:
        raise DataError("give at least one language, e.g. --languages swa,ara")
    return codes


def add_user(session: Session, name: str, languages: str | list[str], admin: bool = False) -> tuple[User, str]:
    """Create a person; returns the user and their sign-in token (shown once, never stored)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise DataError("a user name must have 1 to 100 characters")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise DataError(f"user {name!r} already exists; pick another name or use rotate-token")
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    user = User(name=name, token_hash=hash_secret(token), languages=",".join(parse_languages(languages)),
                is_admin=admin)
    session.add(user)
    session.commit()
    return user, token


def rotate_token(session: Session, name: str) -> str:
    """Give a person a new token (the old one stops working, and so do their sessions)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise DataError(f"no user named {name!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    user.token_hash = hash_secret(token)
    for row in session.scalars(select(LoginSession).where(LoginSession.user_id == user.id)):
        session.delete(row)
    session.commit()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The person a sign-in token belongs to, or None."""
    if not token:
        return None
    return session.scalar(select(User).where(User.token_hash == hash_secret(token.strip())))


def start_session(session: Session, user: User) -> tuple[str, LoginSession]:
    """Sign a person in: returns the cookie value (a random key; its hash is stored) and the session row."""
    key = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    row = LoginSession(key_hash=hash_secret(key), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                       created_at=now, expires_at=now + timedelta(days=settings()["session_days"]))
    session.add(row)
    session.commit()
    return key, row


def session_for_key(session: Session, key: str | None) -> LoginSession | None:
    """The live session a cookie value names, or None (unknown or expired)."""
    if not key:
        return None
    row = session.scalar(select(LoginSession).where(LoginSession.key_hash == hash_secret(key)))
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires < datetime.now(UTC):
        session.delete(row)
        session.commit()
        return None
    return row


def end_session(session: Session, key: str | None) -> None:
    """Sign out: forget the session."""
    row = session_for_key(session, key)
    if row is not None:
        session.delete(row)
        session.commit()


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of two secrets; False when either is missing."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def sign(secret: str, *parts: object) -> str:
    """An HMAC over parts (used for the compare order shown to a person)."""
    msg = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).hexdigest()


def public_user_id(secret: str, user: User) -> str:
    """The hashed user id written to exports (stable per database, does not reveal the name)."""
    return sign(secret, "user", user.id)[:32]
