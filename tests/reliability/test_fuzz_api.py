"""Schemathesis against the running server's own OpenAPI document, with a valid key.

Every operation the document lists is fuzzed with schema-valid (positive) and schema-invalid
(negative) requests; every response must be non-5xx and match what the document declares
(status code, content type, headers, body schema).
"""

from __future__ import annotations

import os
import uuid

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
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
