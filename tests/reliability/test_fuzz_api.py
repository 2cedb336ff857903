"""Schemathesis against the running server's own OpenAPI document, with a valid key.

Every operation the document lists is fuzzed with schema-valid (positive) and schema-invalid
(negative) requests; every response must be non-5xx and match what the document declares
(status code, content type, headers, body schema).
"""

from __future__ import annotations

import json
import os
import uuid

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.reliability.conftest import auth, integrity_check

pytestmark = pytest.mark.reliability

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = int(os.environ.get("MEMSTORE_FUZZ_EXAMPLES", "20"))


def fuzz(server, key: str, examples: int) -> int:
    """Run ``examples`` cases per operation and generation mode; return how many ran."""
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    seeded = httpx.post(
        server.url + "/v1/memory/remember",
        json={"content": "fuzz seed", "session": "fuzz"},
        headers=auth(key),
    ).json()["id"]
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            path_parameters = {"memory_id": seeded} if "{memory_id}" in operation.path else None

            @settings(
                max_examples=examples,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            @given(case=operation.as_strategy(mode, path_parameters=path_parameters))
            def run(case) -> None:
                nonlocal ran
                ran += 1
                case.call_and_validate(
                    base_url=server.url, headers=auth(key), checks=CHECKS, timeout=60
                )

            try:
                run()
            except Unsatisfiable:
                # No schema-invalid request exists for an operation without inputs.
                assert mode is GenerationMode.NEGATIVE, operation.label
    return ran


HOSTILE_STRINGS = ["\ud800", "a\udfffb", "x\u202ey", "cafe\u0301", "\u200b"]
HOSTILE_NUMBERS = [2**63, 2**64, -(2**63) - 1, 10**30, True]


def hostile(value, draw):
    """``value`` with its strings and numbers swapped for hostile ones (issue 14: lone
    surrogates, bidi overrides, integers past 64 bits, booleans where numbers go)."""
    if isinstance(value, dict):
        return {hostile(k, draw) if draw() else k: hostile(v, draw) for k, v in value.items()}
    if isinstance(value, list):
        return [hostile(v, draw) for v in value]
    if isinstance(value, str) and draw():
        return HOSTILE_STRINGS[draw(len(HOSTILE_STRINGS))]
    if isinstance(value, int | float) and not isinstance(value, bool) and draw():
        return HOSTILE_NUMBERS[draw(len(HOSTILE_NUMBERS))]
    return value


def test_hostile_values_in_every_body_field_get_a_declared_4xx(server):
    """Schema-valid bodies with hostile strings and numbers spliced in: never a 5xx, always a
    declared response, and the store stays readable."""
    key = server.key(f"fuzz-{uuid.uuid4().hex[:6]}").key
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    seeded = httpx.post(
        server.url + "/v1/memory/remember",
        json={"content": "hostile seed", "session": "fuzz"},
        headers=auth(key),
    ).json()["id"]
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.body is None or not len(operation.body):
            continue
        path_parameters = {"memory_id": seeded} if "{memory_id}" in operation.path else None

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(
            case=operation.as_strategy(GenerationMode.POSITIVE, path_parameters=path_parameters),
            data=st.data(),
        )
        def run(case, data) -> None:
            nonlocal ran
            ran += 1

            def draw(n: int = 2) -> int:
                return data.draw(st.integers(0, n - 1))

            # Sent by hand: schemathesis itself cannot encode a lone surrogate. The JSON
            # escapes it ("\ud800"), as any client's JSON encoder would.
            body = json.dumps(hostile(case.body, draw)).encode()
            response = httpx.request(
                case.method,
                server.url + case.formatted_path,
                params=case.query,
                content=body,
                headers={**auth(key), "Content-Type": "application/json"},
                timeout=60,
            )
            assert response.status_code < 500, response.text
            case.validate_response(response, checks=CHECKS)

        run()
    assert ran > 20
    with httpx.Client(base_url=server.url, headers=auth(key), timeout=60) as http:
        assert http.get("/v1/memory", params={"session": "*"}).status_code == 200
        assert (
            http.post("/v1/memory/recall", json={"query": "x", "session": "*"}).status_code == 200
        )
    assert integrity_check(server.data_dir) == "ok"


def test_fuzzing_the_openapi_document_finds_no_5xx_and_no_undeclared_response(server):
    key = server.key(f"fuzz-{uuid.uuid4().hex[:6]}").key
    ran = fuzz(server, key, EXAMPLES)
    print(f"schemathesis: {ran} cases, 0 failures")
    assert ran > 100
    assert integrity_check(server.data_dir) == "ok"


def test_responses_the_fuzzer_rarely_draws_are_declared_too(server):
    """A deduplicated remember (200) and a conflicting update (409) match the document."""
    key = server.key(f"fuzz-{uuid.uuid4().hex[:6]}").key
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    remember = schema["/v1/memory/remember"]["POST"]
    body = {"content": "declared twice", "session": "fuzz"}
    statuses = [
        remember.Case(body=body)
        .call_and_validate(base_url=server.url, headers=auth(key), checks=CHECKS)
        .status_code
        for _ in range(2)
    ]
    assert statuses == [201, 200]
    other = httpx.post(
        server.url + "/v1/memory/remember",
        json={"content": "another", "session": "fuzz"},
        headers=auth(key),
    ).json()["id"]
    update = schema["/v1/memory/{memory_id}"]["PATCH"]
    conflict = update.Case(path_parameters={"memory_id": other}, body={"content": "declared twice"})
    r = conflict.call_and_validate(base_url=server.url, headers=auth(key), checks=CHECKS)
    assert r.status_code == 409


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_fuzzing_with_many_more_examples(server):
    key = server.key(f"fuzz-{uuid.uuid4().hex[:6]}").key
    ran = fuzz(server, key, 100)
    print(f"schemathesis: {ran} cases, 0 failures")
