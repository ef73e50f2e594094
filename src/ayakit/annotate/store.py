"""What people can do, checked on the server: write, edit, rate, compare; the next piece of work; progress."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ayakit.annotate.config import compare_choices, limits
from ayakit.annotate.models import Annotation, Comparison, Item, Pair, User, Vote, utcnow


class ActionError(Exception):
    """A refused action; status is the HTTP status the app answers with."""

    status = 400


class Invalid(ActionError):
    """The input is wrong (empty, too long, not one of the choices)."""

    status = 422


class Forbidden(ActionError):
    """The person may not do this (another person's draft, a language not theirs)."""

    status = 403


class NotFound(ActionError):
    """No such thing (or none this person may see)."""

    status = 404


class Conflict(ActionError):
    """Already done (a pair compared twice by the same person, a submitted annotation changed)."""

    status = 409


def check_text(value: str | None, field: str, max_chars: int, required: bool = True) -> str:
    """Normalise line ends and check the size of a text field."""
    text = (value or "").replace("\r\n", "\n").strip()
    if required and not text:
        raise Invalid(f"{field} is empty")
    if len(text) > max_chars:
        raise Invalid(f"{field} is too long: {len(text)} characters, at most {max_chars}")
    return text


def check_language(user: User, code: str | None) -> str:
    """The language must be one of the person's languages."""
    if not code or code not in user.language_codes:
        raise Forbidden(f"language {code!r} is not one of your languages ({', '.join(user.language_codes)})")
    return code


def save_annotation(session: Session, user: User, language: str | None, inputs: str | None,
                    targets: str | None, submit: bool, annotation_id: int | None = None,
                    parent_item_id: int | None = None) -> Annotation:
    """Create or update one of the person's own drafts; submit=True makes it final."""
    lim = limits()
    inputs = check_text(inputs, "prompt", lim.inputs_chars)
    targets = check_text(targets, "completion", lim.targets_chars)
    if annotation_id is not None:
        ann = session.get(Annotation, annotation_id)
        if ann is None or ann.user_id != user.id:
            raise NotFound("no such draft of yours")
        if ann.status != "draft":
            raise Conflict("this annotation is submitted and can no longer change")
        check_language(user, ann.language)
    else:
        lang = check_language(user, language)
        if parent_item_id is not None:
            item = session.get(Item, parent_item_id)
            if item is None or item.activity != "edit":
                raise NotFound("no such example to edit")
            if item.language != lang:
                raise Invalid(f"the edit's language {lang} differs from the example's {item.language}")
            if (inputs, targets) == (item.inputs.replace("\r\n", "\n").strip(),
                                     item.targets.replace("\r\n", "\n").strip()):
                raise Invalid("the edit changes nothing: improve the prompt or the completion (or rate it instead)")
        ann = Annotation(user_id=user.id, language=lang, parent_item_id=parent_item_id, status="draft")
        session.add(ann)
    ann.inputs, ann.targets = inputs, targets
    ann.updated_at = utcnow()
    if submit:
        ann.status = "submitted"
    session.commit()
    return ann


def own_annotation(session: Session, user: User, annotation_id: int) -> Annotation:
    """One of the person's own annotations; anyone else's is NotFound (no hint that it exists)."""
    ann = session.get(Annotation, annotation_id)
    if ann is None or ann.user_id != user.id:
        raise NotFound("no such annotation of yours")
    return ann


def my_annotations(session: Session, user: User) -> list[Annotation]:
    """The person's annotations, newest first."""
    stmt = select(Annotation).where(Annotation.user_id == user.id).order_by(Annotation.updated_at.desc(),
                                                                            Annotation.id.desc())
    return list(session.scalars(stmt))


def next_edit_item(session: Session, user: User, language: str) -> Item | None:
    """The next loaded example to edit in this language: one the person has not edited, fewest edits first."""
    mine = select(Annotation.parent_item_id).where(Annotation.user_id == user.id,
                                                   Annotation.parent_item_id.is_not(None))
    edits = (select(Annotation.parent_item_id, func.count().label("n"))
             .where(Annotation.parent_item_id.is_not(None)).group_by(Annotation.parent_item_id).subquery())
    stmt = (select(Item).outerjoin(edits, edits.c.parent_item_id == Item.id)
            .where(Item.activity == "edit", Item.language == language, Item.id.not_in(mine))
            .order_by(func.coalesce(edits.c.n, 0), Item.id).limit(1))
    return session.scalar(stmt)


def edit_item(session: Session, user: User, item_id: int) -> Item:
    """A loaded example the person may edit."""
    item = session.get(Item, item_id)
    if item is None or item.activity != "edit":
        raise NotFound("no such example to edit")
    check_language(user, item.language)
    return item


@dataclass
class RateTarget:
    """Something to rate: a loaded item or another person's submitted annotation."""

    kind: str  # "item" | "annotation"
    id: int
    language: str
    inputs: str
    targets: str


def next_rate_target(session: Session, user: User, language: str) -> RateTarget | None:
    """The next thing to rate in this language: loaded items first, then others' submitted annotations."""
    voted_items = select(Vote.item_id).where(Vote.user_id == user.id, Vote.item_id.is_not(None))
    item = session.scalar(select(Item).where(Item.activity == "rate", Item.language == language,
                                             Item.id.not_in(voted_items)).order_by(Item.id).limit(1))
    if item is not None:
        return RateTarget("item", item.id, item.language, item.inputs, item.targets)
    voted = select(Vote.annotation_id).where(Vote.user_id == user.id, Vote.annotation_id.is_not(None))
    ann = session.scalar(select(Annotation).where(
        Annotation.language == language, Annotation.status == "submitted", Annotation.user_id != user.id,
        Annotation.id.not_in(voted)).order_by(Annotation.id).limit(1))
    if ann is not None:
        return RateTarget("annotation", ann.id, ann.language, ann.inputs, ann.targets)
    return None


def add_vote(session: Session, user: User, target: str | None, target_id: int | None, up: str | None,
             reason: str | None) -> Vote:
    """Record (or change) the person's thumbs up/down on an item or a submitted annotation of someone else."""
    if up not in ("up", "down"):
        raise Invalid("vote must be 'up' or 'down'")
    reason = check_text(reason, "reason", limits().reason_chars, required=False)
    if target == "item":
        obj = session.get(Item, target_id) if target_id is not None else None
        if obj is None or obj.activity != "rate":
            raise NotFound("no such example to rate")
        where = Vote.item_id == obj.id
    elif target == "annotation":
        obj = session.get(Annotation, target_id) if target_id is not None else None
        if obj is None or obj.status != "submitted":
            raise NotFound("no such submitted annotation")
        if obj.user_id == user.id:
            raise Forbidden("you cannot rate your own annotation")
        where = Vote.annotation_id == obj.id
    else:
        raise Invalid("target must be 'item' or 'annotation'")
    check_language(user, obj.language)
    vote = session.scalar(select(Vote).where(Vote.user_id == user.id, where))
    if vote is None:
        vote = Vote(user_id=user.id, item_id=obj.id if target == "item" else None,
                    annotation_id=obj.id if target == "annotation" else None, up=up == "up", reason=reason)
        session.add(vote)
    vote.up, vote.reason = up == "up", reason
    session.commit()
    return vote


def next_pair(session: Session, user: User, language: str) -> Pair | None:
    """The next pair to compare in this language: one the person has not compared, fewest ratings first."""
    mine = select(Comparison.pair_id).where(Comparison.user_id == user.id)
    counts = (select(Comparison.pair_id, func.count().label("n")).group_by(Comparison.pair_id).subquery())
    stmt = (select(Pair).outerjoin(counts, counts.c.pair_id == Pair.id)
            .where(Pair.language == language, Pair.id.not_in(mine))
            .order_by(func.coalesce(counts.c.n, 0), Pair.id).limit(1))
    return session.scalar(stmt)


def add_comparison(session: Session, user: User, pair_id: int, shown_a: str, choice: str | None) -> Comparison:
    """Record the person's preference on a pair shown with `shown_a` as answer A."""
    if choice not in compare_choices():
        raise Invalid(f"choice must be one of {', '.join(compare_choices())}")
    pair = session.get(Pair, pair_id)
    if pair is None:
        raise NotFound("no such pair")
    check_language(user, pair.language)
    if shown_a not in (pair.model_a, pair.model_b):
        raise Invalid("the order shown does not match this pair")
    row = Comparison(user_id=user.id, pair_id=pair.id, shown_a=shown_a, choice=choice)
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict("you already compared this pair") from None
    return row


def progress(session: Session) -> dict:
    """Counts per language and per person: originals, re-annotations, drafts, votes, comparisons, work left."""
    per_lang: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_user: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for lang, uid, parent, status, n in session.execute(
            select(Annotation.language, Annotation.user_id, Annotation.parent_item_id.is_not(None),
                   Annotation.status, func.count())
            .group_by(Annotation.language, Annotation.user_id, Annotation.parent_item_id.is_not(None),
                      Annotation.status)):
        key = "drafts" if status == "draft" else ("re_annotations" if parent else "originals")
        per_lang[lang][key] += n
        per_user[uid][key] += n
    item_lang = select(Item.id.label("id"), Item.language.label("language")).subquery()
    ann_lang = select(Annotation.id.label("id"), Annotation.language.label("language")).subquery()
    for uid, lang, n in session.execute(select(Vote.user_id, item_lang.c.language, func.count())
                                        .join(item_lang, item_lang.c.id == Vote.item_id)
                                        .group_by(Vote.user_id, item_lang.c.language)):
        per_lang[lang]["votes"] += n
        per_user[uid]["votes"] += n
    for uid, lang, n in session.execute(select(Vote.user_id, ann_lang.c.language, func.count())
                                        .join(ann_lang, ann_lang.c.id == Vote.annotation_id)
                                        .group_by(Vote.user_id, ann_lang.c.language)):
        per_lang[lang]["votes"] += n
        per_user[uid]["votes"] += n
    for uid, lang, n in session.execute(select(Comparison.user_id, Pair.language, func.count())
                                        .join(Pair, Pair.id == Comparison.pair_id)
                                        .group_by(Comparison.user_id, Pair.language)):
        per_lang[lang]["comparisons"] += n
        per_user[uid]["comparisons"] += n
    for activity, lang, n in session.execute(select(Item.activity, Item.language, func.count())
                                             .group_by(Item.activity, Item.language)):
        per_lang[lang][f"{activity}_items"] += n
    for lang, n in session.execute(select(Pair.language, func.count()).group_by(Pair.language)):
        per_lang[lang]["pairs"] += n
    users = list(session.scalars(select(User).order_by(User.name)))
    for user in users:
        for code in user.language_codes:
            per_lang[code]["annotators"] += 1
    return {
        "languages": {k: dict(v) for k, v in sorted(per_lang.items())},
        "people": [{"name": u.name, "languages": u.language_codes, "admin": u.is_admin, **per_user[u.id]}
                   for u in users],
    }
