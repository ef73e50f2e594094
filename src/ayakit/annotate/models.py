"""The annotation database: people, sign-in sessions, loaded examples and pairs, and what people made of them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ACTIVITIES = ("edit", "rate")  # what a loaded example is for; pairs are always for compare
STATUSES = ("draft", "submitted")
CHOICES = ("a", "b", "both_good", "both_bad", "incomprehensible")


def utcnow() -> datetime:
    """Now, in UTC (stored naive-free as timezone-aware where the database supports it)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the annotation schema."""


class Setting(Base):
    """A key/value setting of this database (the secret that signs compare orders and hashes user ids)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class User(Base):
    """An annotator: a name, the hash of their sign-in token, their languages (registry codes)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    languages: Mapped[str] = mapped_column(String(1000))  # comma-separated registry codes
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def language_codes(self) -> list[str]:
        """The registry codes this person annotates in."""
        return [c for c in self.languages.split(",") if c]


class LoginSession(Base):
    """A signed-in browser: the hash of its cookie, its CSRF token, when it expires."""

    __tablename__ = "login_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user: Mapped[User] = relationship()


class Item(Base):
    """An example loaded for editing or rating (from a mixture run or a file of examples)."""

    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("external_id", "activity", name="uq_items_external_activity"),
                      Index("ix_items_activity_language", "activity", "language"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200))
    activity: Mapped[str] = mapped_column(String(16))
    inputs: Mapped[str] = mapped_column(Text)
    targets: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(16))
    script: Mapped[str] = mapped_column(String(8), default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    dataset: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(32), default="")
    license: Mapped[str] = mapped_column(String(100), default="")
    origin: Mapped[str] = mapped_column(String(500), default="")  # the file it was loaded from
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Annotation(Base):
    """A prompt and completion written by a person: an original, or a re-annotation of an item (parent_item_id)."""

    __tablename__ = "annotations"
    __table_args__ = (CheckConstraint("status in ('draft', 'submitted')", name="ck_annotations_status"),
                      Index("ix_annotations_language_status", "language", "status"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    language: Mapped[str] = mapped_column(String(16))
    inputs: Mapped[str] = mapped_column(Text)
    targets: Mapped[str] = mapped_column(Text)
    parent_item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    user: Mapped[User] = relationship()
    parent: Mapped[Item | None] = relationship()

    @property
    def annotation_type(self) -> str:
        """The Aya Dataset label: original-annotations or re-annotations."""
        return "re-annotations" if self.parent_item_id is not None else "original-annotations"


class Vote(Base):
    """A thumbs up or down on a loaded item or on another person's submitted annotation."""

    __tablename__ = "votes"
    __table_args__ = (
        CheckConstraint("(item_id is null) <> (annotation_id is null)", name="ck_votes_one_target"),
        UniqueConstraint("user_id", "item_id", name="uq_votes_user_item"),
        UniqueConstraint("user_id", "annotation_id", name="uq_votes_user_annotation"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id", ondelete="CASCADE"),
                                                      index=True)
    up: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Pair(Base):
    """Two models' answers to one prompt, with the LLM judge's verdict when loaded from judge output."""

    __tablename__ = "pairs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    language: Mapped[str] = mapped_column(String(16), index=True)
    prompt: Mapped[str] = mapped_column(Text)
    model_a: Mapped[str] = mapped_column(String(200))
    model_b: Mapped[str] = mapped_column(String(200))
    answer_a: Mapped[str] = mapped_column(Text)
    answer_b: Mapped[str] = mapped_column(Text)
    judge_winner: Mapped[str | None] = mapped_column(String(200))  # a model name, "tie", or None
    origin: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Comparison(Base):
    """One person's preference on a pair; shown_a records which model was shown as answer A."""

    __tablename__ = "comparisons"
    __table_args__ = (UniqueConstraint("user_id", "pair_id", name="uq_comparisons_user_pair"),
                      CheckConstraint("choice in ('a', 'b', 'both_good', 'both_bad', 'incomprehensible')",
                                      name="ck_comparisons_choice"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), index=True)
    shown_a: Mapped[str] = mapped_column(String(200))
    choice: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    pair: Mapped[Pair] = relationship()

    @property
    def winner(self) -> str | None:
        """The preferred model's name, "tie" (both good / both bad), or None (incomprehensible prompt)."""
        if self.choice == "a":
            return self.shown_a
        if self.choice == "b":
            return self.pair.model_b if self.shown_a == self.pair.model_a else self.pair.model_a
        if self.choice in ("both_good", "both_bad"):
            return "tie"
        return None
