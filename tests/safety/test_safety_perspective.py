"""The Perspective client against a stand-in server on loopback with the API's request and response shape."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from ayakit.errors import DataError
from ayakit.safety.scorers import PerspectiveScorer, load_scorer

PATH = "/v1alpha1/comments:analyze"


class _Handler(BaseHTTPRequestHandler):
    requests: list = []
    fail_first = 0

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": url.path, "query": parse_qs(url.query), "body": body})
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self._send(429, {"error": {"code": 429, "message": "quota"}})
            return
        if url.path != PATH or parse_qs(url.query).get("key") != ["k123"]:
            self._send(403, {"error": {"code": 403, "message": "bad key"}})
            return
        text = body["comment"]["text"]
        value = 0.93 if "idiot" in text else 0.04
        self._send(200, {"attributeScores": {"TOXICITY": {
            "spanScores": [{"begin": 0, "end": len(text), "score": {"value": value, "type": "PROBABILITY"}}],
            "summaryScore": {"value": value, "type": "PROBABILITY"}}}, "languages": body["languages"]})

    def _send(self, status: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    _Handler.requests = []
    _Handler.fail_first = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}{PATH}"
    httpd.shutdown()
    httpd.server_close()


def test_scores_and_request_shape(server, monkeypatch) -> None:
    monkeypatch.setenv("PERSPECTIVE_API_KEY", "k123")
    scorer = load_scorer("perspective", perspective_url=server, qps=0)
    assert scorer.score(["you idiot", "have a nice day", "  "], "fra") == [0.93, 0.04, 0.0]
    req = _Handler.requests[0]
    assert req["query"]["key"] == ["k123"]
    assert req["body"]["languages"] == ["fr"] and req["body"]["requestedAttributes"] == {"TOXICITY": {}}
    assert len(_Handler.requests) == 2  # the empty text is not sent
    assert scorer.covers("deu") and not scorer.covers("swh")


def test_rate_limit_retries(server, monkeypatch) -> None:
    monkeypatch.setenv("PERSPECTIVE_API_KEY", "k123")
    sleeps: list[float] = []
    monkeypatch.setattr("ayakit.safety.scorers.time.sleep", lambda s: sleeps.append(s))
    _Handler.fail_first = 2
    scorer = PerspectiveScorer(url=server, qps=2.0)
    assert scorer.score(["you idiot"], "eng") == [0.93]
    assert len(_Handler.requests) == 3 and sleeps  # two 429s, backed off, then the answer


def test_errors(server, monkeypatch) -> None:
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    with pytest.raises(DataError, match="PERSPECTIVE_API_KEY"):
        PerspectiveScorer(url=server)
    with pytest.raises(DataError, match="HTTP 403"):
        PerspectiveScorer(api_key="wrong", url=server, qps=0).score(["x"], "eng")
