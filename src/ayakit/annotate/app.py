"""The web app: server-rendered pages for Write, Edit, Rate and Compare, sign-in, and the admin progress page.

Bad requests get one behaviour on SQLite and PostgreSQL: an id outside 1..2^31-1 (the largest PostgreSQL
INTEGER) is answered 422, a text field holding a NUL character is refused with 422 (PostgreSQL cannot store one).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from importlib import resources
from typing import Annotated

from fastapi import Depends, FastAPI, Form, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from pydantic import AfterValidator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ayakit import languages as L
from ayakit.annotate import auth, store
from ayakit.annotate.config import compare_choices, limits, text_dir
from ayakit.annotate.db import app_secret, open_db
from ayakit.annotate.models import Annotation, LoginSession, User

SESSION_COOKIE = "ayakit_session"
LOGIN_CSRF_COOKIE = "ayakit_login_csrf"
SECURITY_HEADERS = {
    # No script runs on these pages; styles and forms stay on this origin; the app cannot be framed.
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

MAX_ID = 2**31 - 1  # the largest id both databases store (PostgreSQL INTEGER): a larger one names no row


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("text must not contain NUL characters (\\x00)")
    return value


Text = Annotated[str | None, Form(), AfterValidator(_no_nul)]
Id = Annotated[int, PathParam(ge=1, le=MAX_ID)]


def _db(request: Request) -> Iterator[Session]:
    with request.app.state.factory() as s:
        yield s


DB = Annotated[Session, Depends(_db)]


class BodyLimit:
    """ASGI middleware: a request body over max_bytes is answered with 413 before any of it is parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        # Read the whole body first (it is small by construction), refusing it as soon as it passes the limit.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # the client went away; let the app see it
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = (f"Request too large: at most {self.max_bytes} bytes. Shorten the text and send it again."
                ).encode("utf-8")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class NeedSignIn(Exception):
    """No valid session: GET pages redirect to the sign-in page, writes answer 401."""


def create_app(db_url: str | None = None, *, secure_cookies: bool = False,
               factory: sessionmaker[Session] | None = None) -> FastAPI:
    """The annotation app over the database at db_url (its schema is upgraded to the newest revision first)."""
    factory = factory or open_db(db_url)
    with factory() as s:
        secret = app_secret(s)
    pkg = resources.files("ayakit.annotate")
    templates = Jinja2Templates(directory=str(pkg.joinpath("templates")))
    templates.env.globals.update(native=lambda c: L.info(c).native_name, english=lambda c: L.info(c).name,
                                 text_dir=text_dir, limits=limits(), choices=compare_choices())
    app = FastAPI(title="ayakit annotate", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.factory = factory
    app.add_middleware(BodyLimit, max_bytes=limits().max_body_bytes)
    app.mount("/static", StaticFiles(directory=str(pkg.joinpath("static"))), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next):  # noqa: ANN001, ANN202
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def signed_in(request: Request, s: Session) -> LoginSession:
        row = auth.session_for_key(s, request.cookies.get(SESSION_COOKIE))
        if row is None:
            raise NeedSignIn
        return row

    def check_csrf(row: LoginSession, token: str | None) -> None:
        if not auth.same_secret(token, row.csrf_token):
            raise StarletteHTTPException(403, "The form's CSRF token is missing or wrong: reload the page and "
                                              "send the form again.")

    def page(request: Request, name: str, row: LoginSession | None, status: int = 200, **ctx) -> HTMLResponse:
        ctx.update(user=row.user if row else None, csrf=row.csrf_token if row else "")
        return templates.TemplateResponse(request, name, ctx, status_code=status)

    def pick_language(user: User, lang: str | None) -> str:
        if lang is None:
            return user.language_codes[0]
        try:
            code = L.normalize_any(lang)
        except L.UnknownLanguageError as exc:
            raise store.Invalid(str(exc)) from None
        return store.check_language(user, code)

    @app.exception_handler(store.ActionError)
    async def action_error(request: Request, exc: store.ActionError) -> HTMLResponse:
        return templates.TemplateResponse(request, "message.html", {"user": None, "title": "Not done",
                                                                    "message": str(exc)}, status_code=exc.status)

    @app.exception_handler(NeedSignIn)
    async def need_sign_in(request: Request, exc: NeedSignIn) -> Response:
        if request.method in ("GET", "HEAD"):
            return RedirectResponse("/login", status_code=303)
        return templates.TemplateResponse(request, "message.html", {
            "user": None, "title": "Sign in first", "message": "You are not signed in (or your session expired)."},
            status_code=401)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        return templates.TemplateResponse(request, "message.html", {"user": None, "title": f"Error {exc.status_code}",
                                                                    "message": str(exc.detail)},
                                          status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: "
                             f"{str(e.get('msg', 'invalid')).removeprefix('Value error, ')}" for e in exc.errors())
        return templates.TemplateResponse(request, "message.html", {"user": None, "title": "Not done",
                                                                    "message": problems}, status_code=422)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, s: DB) -> Response:
        if auth.session_for_key(s, request.cookies.get(SESSION_COOKIE)) is not None:
            return RedirectResponse("/", status_code=303)
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = templates.TemplateResponse(request, "login.html", {"user": None, "csrf": token, "error": None})
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies)
        return response

    @app.post("/login")
    def login(request: Request, s: DB, token: Text = None, csrf_token: Text = None) -> Response:
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not auth.same_secret(csrf_token, cookie):
            raise StarletteHTTPException(403, "The form's CSRF token is missing or wrong: reload the sign-in page.")
        if token and len(token) > limits().token_chars:
            raise store.Invalid("token is too long")
        user = auth.user_for_token(s, token or "")
        if user is None:
            return templates.TemplateResponse(request, "login.html", {
                "user": None, "csrf": cookie, "error": "Missing or unknown token." if token else "Enter your token."},
                status_code=401)
        key, _ = auth.start_session(s, user)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(SESSION_COOKIE, key, httponly=True, samesite="lax", secure=secure_cookies,
                            max_age=None)
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    @app.post("/logout")
    def logout(request: Request, s: DB, csrf_token: Text = None) -> Response:
        row = signed_in(request, s)
        check_csrf(row, csrf_token)
        auth.end_session(s, request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request, s: DB) -> HTMLResponse:
        row = signed_in(request, s)
        user = row.user
        todo = []
        for code in user.language_codes:
            todo.append({"code": code, "edit": store.next_edit_item(s, user, code) is not None,
                         "rate": store.next_rate_target(s, user, code) is not None,
                         "compare": store.next_pair(s, user, code) is not None})
        drafts = s.scalar(select(func.count()).select_from(Annotation).where(
            Annotation.user_id == user.id, Annotation.status == "draft"))
        return page(request, "home.html", row, todo=todo, drafts=drafts)

    @app.get("/write", response_class=HTMLResponse)
    def write_form(request: Request, s: DB, lang: str | None = None) -> HTMLResponse:
        row = signed_in(request, s)
        code = pick_language(row.user, lang)
        return page(request, "write.html", row, lang=code, action="/write", ann=None, item=None)

    @app.post("/write")
    def write(request: Request, s: DB, language: Text = None, inputs: Text = None, targets: Text = None,
              action: Text = None, csrf_token: Text = None) -> Response:
        row = signed_in(request, s)
        check_csrf(row, csrf_token)
        ann = store.save_annotation(s, row.user, language, inputs, targets, submit=action == "submit")
        return RedirectResponse(f"/annotations/{ann.id}?saved=1", status_code=303)

    @app.get("/mine", response_class=HTMLResponse)
    def mine(request: Request, s: DB) -> HTMLResponse:
        row = signed_in(request, s)
        return page(request, "mine.html", row, annotations=store.my_annotations(s, row.user))

    @app.get("/annotations/{annotation_id}", response_class=HTMLResponse)
    def show_annotation(request: Request, s: DB, annotation_id: Id, saved: int = 0) -> HTMLResponse:
        row = signed_in(request, s)
        ann = store.own_annotation(s, row.user, annotation_id)
        return page(request, "write.html", row, lang=ann.language, action=f"/annotations/{ann.id}", ann=ann,
                    item=ann.parent, saved=bool(saved))

    @app.post("/annotations/{annotation_id}")
    def update_annotation(request: Request, s: DB, annotation_id: Id, inputs: Text = None, targets: Text = None,
                          action: Text = None, csrf_token: Text = None) -> Response:
        row = signed_in(request, s)
        check_csrf(row, csrf_token)
        ann = store.save_annotation(s, row.user, None, inputs, targets, submit=action == "submit",
                                    annotation_id=annotation_id)
        return RedirectResponse(f"/annotations/{ann.id}?saved=1", status_code=303)

    @app.get("/edit", response_class=HTMLResponse)
    def next_edit(request: Request, s: DB, lang: str | None = None) -> Response:
        row = signed_in(request, s)
        code = pick_language(row.user, lang)
        item = store.next_edit_item(s, row.user, code)
        if item is None:
            return page(request, "message.html", row, title="Nothing to edit",
                        message=f"No more examples to edit in {L.info(code).native_name}. Thank you!")
        return RedirectResponse(f"/edit/{item.id}", status_code=303)

    @app.get("/edit/{item_id}", response_class=HTMLResponse)
    def edit_form(request: Request, s: DB, item_id: Id) -> HTMLResponse:
        row = signed_in(request, s)
        item = store.edit_item(s, row.user, item_id)
        return page(request, "write.html", row, lang=item.language, action=f"/edit/{item.id}", ann=None, item=item)

    @app.post("/edit/{item_id}")
    def edit(request: Request, s: DB, item_id: Id, inputs: Text = None, targets: Text = None,
             action: Text = None, csrf_token: Text = None) -> Response:
        row = signed_in(request, s)
        check_csrf(row, csrf_token)
        item = store.edit_item(s, row.user, item_id)
        ann = store.save_annotation(s, row.user, item.language, inputs, targets, submit=action == "submit",
                                    parent_item_id=item.id)
        return RedirectResponse(f"/annotations/{ann.id}?saved=1", status_code=303)

    @app.get("/rate", response_class=HTMLResponse)
    def rate_form(request: Request, s: DB, lang: str | None = None) -> HTMLResponse:
        row = signed_in(request, s)
        code = pick_language(row.user, lang)
        target = store.next_rate_target(s, row.user, code)
        if target is None:
            return page(request, "message.html", row, title="Nothing to rate",
                        message=f"No more examples to rate in {L.info(code).native_name}. Thank you!")
        return page(request, "rate.html", row, lang=code, target=target)

    @app.post("/rate")
    def rate(request: Request, s: DB, target: Text = None,
             target_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
             vote: Text = None, reason: Text = None, lang: Text = None, csrf_token: Text = None) -> Response:
        row = signed_in(request, s)
        check_csrf(row, csrf_token)
        v = store.add_vote(s, row.user, target, target_id, vote, reason)
        language = lang if lang in row.user.language_codes else row.user.language_codes[0]
        return RedirectResponse(f"/rate?lang={language}&voted={v.id}", status_code=303)

    @app.get("/compare", response_class=HTMLResponse)
    def compare_form(request: Request, s: DB, lang: str | None = None) -> HTMLResponse:
        row = signed_in(request, s)
        code = pick_language(row.user, lang)
        pair = store.next_pair(s, row.user, code)
        if pair is None:
            return page(request, "message.html", row, title="Nothing to compare",
                        message=f"No more answer pairs to compare in {L.info(code).native_name}. Thank you!")
        swap = secrets.randbelow(2) == 1  # random order: which model is shown as A
        shown_a, answer_a, answer_b = ((pair.model_b, pair.answer_b, pair.answer_a) if swap
                                       else (pair.model_a, pair.answer_a, pair.answer_b))
        return page(request, "compare.html", row, lang=code, pair=pair, shown_a=shown_a, answer_a=answer_a,
                    answer_b=answer_b, sig=auth.sign(secret, row.user_id, pair.id, shown_a))

    @app.post("/compare/{pair_id}")
    def compare(request: Request, s: DB, pair_id: Id, choice: Text = None, shown_a: Text = None,
                sig: Text = None, csrf_token: Text = None) -> Response:
        row = signed_in(request, s)
        check_csrf(row, csrf_token)
        if not auth.same_secret(sig, auth.sign(secret, row.user_id, pair_id, shown_a or "")):
            raise store.Invalid("the order of the answers was altered: reload the page")
        cmp = store.add_comparison(s, row.user, pair_id, shown_a or "", choice)
        return RedirectResponse(f"/compare?lang={cmp.pair.language}", status_code=303)

    @app.get("/admin", response_class=HTMLResponse)
    def admin(request: Request, s: DB) -> HTMLResponse:
        row = signed_in(request, s)
        if not row.user.is_admin:
            raise store.Forbidden("only admins can see the progress page")
        from ayakit.annotate.export import approval_summary

        return page(request, "admin.html", row, progress=store.progress(s), approval=approval_summary(s))

    return app
