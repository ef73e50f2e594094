"""Fuzz the server on loopback from its own OpenAPI schema (schemathesis): no input, valid or not, causes a 5xx."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency (pip install -e .[dev])")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance  # noqa: E402


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzed_requests_never_get_a_5xx(server: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health"}
    seen: list[int] = []
    for operation in operations:
        if mode == GenerationMode.NEGATIVE and operation.method.upper() != "POST":
            continue  # GET endpoints take no input, so there is nothing invalid to send
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=20, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            response = case.call_and_validate(
                checks=[not_a_server_error, status_code_conformance, response_schema_conformance])
            seen.append(response.status_code)

        check()
    assert seen and all(code < 500 for code in seen)
    if mode == GenerationMode.NEGATIVE:
        assert sum(400 <= code < 500 for code in seen) >= len(seen) // 2  # invalid input is refused, not served
