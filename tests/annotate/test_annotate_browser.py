"""A real browser (headless system Chromium driven by Playwright) signs in, writes in Swahili and Arabic, compares."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from ayakit.annotate import auth
from ayakit.annotate.app import create_app
from ayakit.annotate.export import export
from ayakit.annotate.load import load
from ayakit.annotate.models import Comparison

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(factory):
    """The app served by uvicorn on a free loopback port in a thread; stopped at the end."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(create_app(factory=factory), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the annotate server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser_context(tmp_path):
    """A headless Chromium with a fresh profile (the system's browser; no download)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            locale="en-US", viewport={"width": 1100, "height": 900})
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


def test_sign_in_write_swahili_and_arabic_compare_and_export(factory, pairs_file, server, browser_context,
                                                            tmp_path) -> None:
    with factory() as s:
        _, token = auth.add_user(s, "amina", "swa,ara")
        load(s, pairs_file, "compare", languages=["swa"])
    page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()

    page.goto(f"{server}/")
    assert page.url.endswith("/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/")
    assert page.get_by_text("Kiswahili").first.is_visible() and page.get_by_text("العربية").first.is_visible()

    # Write in Swahili
    page.click("section[lang=swa] >> text=Write")
    page.fill("#inputs", "Eleza maana ya neno 'harambee'.")
    page.fill("#targets", "Harambee ni neno la Kiswahili linalomaanisha 'tuvute pamoja'.")
    page.click("button[value=submit]")
    page.wait_for_selector("text=Submitted. Thank you!")

    # Write in Arabic: the text areas run right to left
    page.goto(f"{server}/")
    page.click("section[lang=ara] >> text=Write")
    assert page.locator("#inputs").evaluate("e => getComputedStyle(e).direction") == "rtl"
    page.fill("#inputs", "ما هي عاصمة المغرب؟")
    page.fill("#targets", "عاصمة المغرب هي الرباط.")
    screenshot = tmp_path / "annotate-arabic.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 0
    page.click("button[value=submit]")
    page.wait_for_selector("text=Submitted. Thank you!")
    assert page.locator(".text[dir=rtl]").first.evaluate("e => getComputedStyle(e).direction") == "rtl"

    # Compare a pair in Swahili
    page.goto(f"{server}/")
    page.click("section[lang=swa] >> text=Compare")
    page.wait_for_selector("text=Which answer is better?")
    shown_a = page.locator("input[name=shown_a]").get_attribute("value")
    answer_a = page.locator(".pair .card").first.inner_text()
    page.click("button[value=a]")
    page.wait_for_load_state()
    page.screenshot(path=str(tmp_path / "annotate-compare-done.png"), full_page=True)

    out = tmp_path / "aya.parquet"
    with factory() as s:
        export(s, out)
        cmp = s.scalar(select(Comparison))
        assert (cmp.shown_a, cmp.choice, cmp.winner) == (shown_a, "a", shown_a)
        shown_answer = cmp.pair.answer_a if shown_a == cmp.pair.model_a else cmp.pair.answer_b
    assert shown_answer in answer_a
    rows = {r["language_code"]: r for r in pq.read_table(out).to_pylist()}
    assert rows["swa"]["targets"].startswith("Harambee ni neno")
    assert rows["ara"]["inputs"] == "ما هي عاصمة المغرب؟" and rows["ara"]["language"] == "Arabic"
    assert {r["annotation_type"] for r in rows.values()} == {"original-annotations"}
