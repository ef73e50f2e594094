"""HTTP tests of every route of the annotation app, security cases included."""

from __future__ import annotations

import re

from sqlalchemy import select

from ayakit.annotate.load import load
from ayakit.annotate.models import Annotation, Comparison, Item, LoginSession, User, Vote


def test_sign_in_required_and_wrong_tokens(web, people, csrf) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(web)
    for path in ("/", "/write", "/mine", "/rate", "/compare", "/edit", "/admin", "/annotations/1"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    r = c.post("/write", data={"language": "swa", "inputs": "a", "targets": "b", "csrf_token": "x"})
    assert r.status_code == 401
    token = csrf(c.get("/login").text)
    assert c.post("/login", data={"token": "aya_wrong", "csrf_token": token}).status_code == 401
    assert c.post("/login", data={"csrf_token": token}).status_code == 401
    # a sign-in form without its CSRF token is refused even with a valid token
    assert c.post("/login", data={"token": people["amina"]}).status_code == 403
    assert c.post("/login", data={"token": people["amina"], "csrf_token": "forged"}).status_code == 403
    # a made-up session cookie is not a session
    c.cookies.set("ayakit_session", "made-up")
    assert c.get("/", follow_redirects=False).status_code == 303


def test_tokens_and_session_keys_are_stored_hashed(factory, people, client_for) -> None:
    client_for("amina")
    with factory() as s:
        hashes = [u.token_hash for u in s.scalars(select(User))]
        sessions = list(s.scalars(select(LoginSession)))
    assert all(t not in hashes for t in people.values())
    assert len(sessions) == 1 and sessions[0].key_hash not in client_for("amina")[0].cookies.values()


def test_home_shows_native_names_and_rtl(client_for) -> None:
    c, _ = client_for("amina")
    home = c.get("/").text
    assert "Kiswahili" in home and "العربية" in home
    page = c.get("/write?lang=ar").text  # any code spelling
    assert re.search(r'<textarea[^>]*dir="rtl"', page)
    assert 'dir="ltr"' in c.get("/write?lang=swa").text
    # a language that is not yours
    assert c.get("/write?lang=zho").status_code == 403
    assert c.get("/write?lang=xx").status_code == 422


def test_write_draft_then_submit_and_script_is_escaped(factory, client_for) -> None:
    c, token = client_for("amina")
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    r = c.post("/write", data={"language": "swa", "inputs": "Andika shairi", "targets": evil, "action": "draft",
                               "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].endswith("?saved=1")
    ann_url = r.headers["location"].split("?")[0]
    page = c.get(r.headers["location"]).text
    assert "Draft saved" in page and "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "Andika shairi" in c.get("/mine").text
    r = c.post(ann_url, data={"inputs": "Andika shairi fupi", "targets": evil, "action": "submit",
                              "csrf_token": token})
    assert r.status_code == 200 and "Submitted" in r.text and "<script>alert" not in r.text
    # submitted is final
    r = c.post(ann_url, data={"inputs": "changed", "targets": "changed", "action": "submit", "csrf_token": token})
    assert r.status_code == 409
    with factory() as s:
        ann = s.scalar(select(Annotation))
    assert (ann.status, ann.inputs, ann.targets, ann.parent_item_id) == ("submitted", "Andika shairi fupi", evil, None)


def test_nobody_reads_or_changes_another_persons_draft(factory, client_for) -> None:
    amina, a_token = client_for("amina")
    r = amina.post("/write", data={"language": "swa", "inputs": "siri", "targets": "rasimu",
                                   "csrf_token": a_token}, follow_redirects=False)
    url = r.headers["location"].split("?")[0]
    baraka, b_token = client_for("baraka")
    assert baraka.get(url).status_code == 404
    assert "siri" not in baraka.get("/mine").text
    r = baraka.post(url, data={"inputs": "hacked", "targets": "hacked", "action": "submit", "csrf_token": b_token})
    assert r.status_code == 404
    # someone else's CSRF token does not work on my session either
    assert amina.post(url, data={"inputs": "x", "targets": "y", "csrf_token": b_token}).status_code == 403
    with factory() as s:
        ann = s.scalar(select(Annotation))
    assert (ann.inputs, ann.targets, ann.status) == ("siri", "rasimu", "draft")
    # drafts are not offered for rating
    assert "siri" not in baraka.get("/rate?lang=swa").text


def test_csrf_missing_or_wrong_is_refused(factory, client_for) -> None:
    c, token = client_for("amina")
    base = {"language": "swa", "inputs": "a", "targets": "b"}
    assert c.post("/write", data=base).status_code == 403
    assert c.post("/write", data={**base, "csrf_token": token[:-2] + "xx"}).status_code == 403
    assert c.post("/logout", data={}).status_code == 403
    with factory() as s:
        assert s.scalar(select(Annotation)) is None


def test_size_limits(factory, client_for) -> None:
    c, token = client_for("amina")
    r = c.post("/write", data={"language": "swa", "inputs": "x" * 100_000, "targets": "y", "csrf_token": token})
    assert r.status_code == 413 and "too large" in r.text
    r = c.post("/write", data={"language": "swa", "inputs": "x" * 8001, "targets": "y", "csrf_token": token})
    assert r.status_code == 422 and "prompt is too long: 8001 characters, at most 8000" in r.text
    r = c.post("/write", data={"language": "swa", "inputs": "   ", "targets": "y", "csrf_token": token})
    assert r.status_code == 422 and "prompt is empty" in r.text
    r = c.post("/write", data={"language": "zho", "inputs": "a", "targets": "b", "csrf_token": token})
    assert r.status_code == 403
    with factory() as s:
        assert s.scalar(select(Annotation)) is None


def test_edit_creates_a_reannotation_linked_to_the_original(factory, client_for, tmp_path) -> None:
    src = tmp_path / "mt.jsonl"
    src.write_text('{"id": "t1", "inputs": "Tafsiri: cat", "targets": "paka <b>", "language": "swa", '
                   '"kind": "translated", "source": "nllb"}\n', encoding="utf-8")
    with factory() as s:
        load(s, src, "edit")
        item_id = s.scalar(select(Item.id))
    c, token = client_for("baraka")
    r = c.get("/edit?lang=swa", follow_redirects=False)
    assert r.headers["location"] == f"/edit/{item_id}"
    page = c.get(f"/edit/{item_id}").text
    assert "paka &lt;b&gt;" in page and "translated" in page
    r = c.post(f"/edit/{item_id}", data={"inputs": "Tafsiri: cat", "targets": "paka <b>", "action": "submit",
                                         "csrf_token": token})
    assert r.status_code == 422 and "changes nothing" in r.text
    r = c.post(f"/edit/{item_id}", data={"inputs": "Tafsiri: cat", "targets": "paka", "action": "submit",
                                         "csrf_token": token})
    assert r.status_code == 200
    with factory() as s:
        ann = s.scalar(select(Annotation))
        assert ann.parent_item_id == item_id and ann.annotation_type == "re-annotations"
    assert "No more examples to edit" in c.get("/edit?lang=swa").text
    chen, chen_token = client_for("chen")
    assert chen.get(f"/edit/{item_id}").status_code == 403
    assert chen.get("/edit/999").status_code == 404


def test_rate_items_and_others_annotations(factory, client_for, tmp_path) -> None:
    src = tmp_path / "rate.jsonl"
    src.write_text('{"inputs": "Swali", "targets": "Jibu", "language": "swa", "kind": "templated"}\n',
                   encoding="utf-8")
    with factory() as s:
        load(s, src, "rate")
    amina, a_token = client_for("amina")
    amina.post("/write", data={"language": "swa", "inputs": "Mimi", "targets": "Wewe", "action": "submit",
                               "csrf_token": a_token})
    baraka, b_token = client_for("baraka")
    page = baraka.get("/rate?lang=swa").text
    assert "Swali" in page
    fields = dict(re.findall(r'name="(target|target_id)" value="([^"]*)"', page))
    r = baraka.post("/rate", data={**fields, "vote": "down", "reason": "<i>wrong</i>", "lang": "swa",
                                   "csrf_token": b_token})
    assert r.status_code == 200 and "Mimi" in r.text  # next: amina's submitted annotation
    fields = dict(re.findall(r'name="(target|target_id)" value="([^"]*)"', r.text))
    assert fields["target"] == "annotation"
    baraka.post("/rate", data={**fields, "vote": "up", "lang": "swa", "csrf_token": b_token})
    assert "No more examples to rate" in baraka.get("/rate?lang=swa").text
    # own annotation cannot be rated; bad vote values are refused
    assert amina.post("/rate", data={**fields, "vote": "up", "csrf_token": a_token}).status_code == 403
    assert baraka.post("/rate", data={**fields, "vote": "meh", "csrf_token": b_token}).status_code == 422
    assert baraka.post("/rate", data={"target": "item", "target_id": "999", "vote": "up",
                                      "csrf_token": b_token}).status_code == 404
    with factory() as s:
        votes = sorted((v.up, v.reason, v.item_id is not None) for v in s.scalars(select(Vote)))
    assert votes == [(False, "<i>wrong</i>", True), (True, "", False)]


def test_compare_random_order_is_recorded(factory, client_for, pairs_file) -> None:
    with factory() as s:
        load(s, pairs_file, "compare")
    c, token = client_for("amina")
    # the order is drawn per showing: over 40 showings both models appear as A (fails with probability 2**-39)
    firsts = {re.search(r'name="shown_a" value="([^"]*)"', c.get("/compare?lang=swa").text).group(1)
              for _ in range(40)}
    assert firsts == {"aya", "mt0"}
    page = c.get("/compare?lang=swa").text
    while "Which answer is better" in page:
        shown_a = re.search(r'name="shown_a" value="([^"]*)"', page).group(1)
        action = re.search(r'action="(/compare/\d+)"', page).group(1)
        sig = re.search(r'name="sig" value="([^"]*)"', page).group(1)
        # the order cannot be altered
        other = "mt0" if shown_a == "aya" else "aya"
        r = c.post(action, data={"choice": "a", "shown_a": other, "sig": sig, "csrf_token": token})
        assert r.status_code == 422
        r = c.post(action, data={"choice": "zzz", "shown_a": shown_a, "sig": sig, "csrf_token": token})
        assert r.status_code == 422
        page = c.post(action, data={"choice": "a", "shown_a": shown_a, "sig": sig, "csrf_token": token}).text
        assert c.post(action, data={"choice": "a", "shown_a": shown_a, "sig": sig,
                                    "csrf_token": token}).status_code == 409
    assert "No more answer pairs" in page
    with factory() as s:
        rows = list(s.scalars(select(Comparison)))
        assert len(rows) == 2 and {r.shown_a for r in rows} <= {"aya", "mt0"}
        assert all(r.winner == r.shown_a for r in rows)
    chen, chen_token = client_for("chen")
    assert "No more answer pairs" in chen.get("/compare?lang=zho").text


def test_admin_progress_and_logout(client_for) -> None:
    amina, token = client_for("amina")
    amina.post("/write", data={"language": "ara", "inputs": "سؤال", "targets": "جواب", "action": "submit",
                               "csrf_token": token})
    page = amina.get("/admin").text
    assert "العربية" in page and "baraka" in page and "chen" in page and "No votes yet" in page
    baraka, b_token = client_for("baraka")
    baraka.post("/write", data={"language": "swa", "inputs": "Swali", "targets": "Jibu", "action": "submit",
                                "csrf_token": b_token})
    assert amina.get("/rate?lang=swa").status_code == 200
    amina.post("/rate", data={"target": "annotation", "target_id": "2", "vote": "up", "csrf_token": token})
    assert re.search(r"<td>original-annotations</td><td>1</td><td>0</td>\s*<td>1.00</td>", amina.get("/admin").text)
    assert baraka.get("/admin").status_code == 403
    assert baraka.get("/static/style.css").status_code == 200
    assert amina.get("/healthz").json() == {"ok": True}
    r = amina.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert amina.get("/", follow_redirects=False).status_code == 303


def test_pages_load_nothing_external_and_forbid_scripts(client_for) -> None:
    c, _ = client_for("amina")
    r = c.get("/")
    assert "script-src 'none'" in r.headers["content-security-policy"]
    for page in (r.text, c.get("/write?lang=ara").text, c.get("/admin").text):
        assert "<script" not in page
        assert not re.search(r'(src|href)="(https?:)?//', page)
