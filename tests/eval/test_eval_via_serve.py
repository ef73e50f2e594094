"""`ayakit eval` against `ayakit serve`: the OpenAI backend's echoed log-likelihoods equal the local model's."""

from __future__ import annotations

import pytest

from ayakit.models import GenerationParams, load_backend
from ayakit.models.openai import OpenAIBackend


def test_openai_backend_on_ayakit_serve_matches_the_local_model(tiny_models):
    from fastapi.testclient import TestClient

    from ayakit.serve.app import create_app
    from ayakit.serve.engine import Engine

    _, causal = tiny_models
    requests = [("The cat sat on", [" the mat", " the dog"]), ("Die Katze schläft", [" auf dem Sofa."])]
    local = load_backend(str(causal), convention="lm-eval")  # a continuation = tail of the joint tokenisation
    expected = local.loglikelihood(requests)
    with TestClient(create_app(Engine(causal, device="cpu", name="tiny"))) as http:  # an unknown name is a 404
        remote = OpenAIBackend("http://testserver", model="tiny", client=http)
        got = remote.loglikelihood(requests)
        text = remote.generate(["hello"], GenerationParams(max_new_tokens=4))
    for row_got, row_expected in zip(got, expected):
        for a, b in zip(row_got, row_expected):
            assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
            assert a.n_tokens == b.n_tokens and a.n_bytes == b.n_bytes
    assert isinstance(text[0], str)
