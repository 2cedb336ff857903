"""What a newcomer meets first over HTTP: /docs offline, Bearer security, 405s, clear errors."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from memstore import Memstore, ValidationError

FLAT = "metadata['a'] must be a string, number, boolean or null (metadata is flat)"


@pytest.fixture
def key(server) -> str:
    return server.key(f"acct-{uuid.uuid4().hex[:8]}").key


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_docs_page_loads_swagger_ui_from_the_server_itself(http):
    page = http.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        assert http.get(asset).status_code == 200, asset
    assert "cdn" not in page.text.lower()


def test_openapi_declares_bearer_security_on_v1_routes(http):
    doc = http.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert [s["scheme"] for s in schemes.values()] == ["bearer"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            params = [p["name"].lower() for p in op.get("parameters", [])]
            assert "authorization" not in params, (method, path)
            if path.startswith("/v1/"):
                assert op.get("security") == [{name: []} for name in schemes], (method, path)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_routes_document_only_what_they_return(http, path):
    op = http.get("/openapi.json").json()["paths"][path]["get"]
    assert not {"401", "413", "429"} & set(op["responses"])
    assert "security" not in op


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/memory/remember"), ("DELETE", "/v1/memory/recall"), ("PUT", "/v1/sessions")],
)
def test_wrong_method_on_a_known_route_is_405(http, key, method, path):
    r = http.request(method, path, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 405, r.text
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_an_unknown_memory_id_is_still_404(http, key):
    r = http.get("/v1/memory/mem_nope", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 404 and "mem_nope" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/memory/remember", {"content": "x", "metadata": {"a": {"b": 1}}}),
        ("/v1/memory/remember/batch", {"memories": [{"content": "x", "metadata": {"a": [1]}}]}),
    ],
)
def test_nested_metadata_over_http_gets_the_one_clear_message(http, key, path, body):
    r = http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 422
    assert r.json()["error"]["message"] == FLAT


def test_nested_metadata_gets_the_same_message_from_both_sdk_modes(server, key, tmp_path):
    for ms in (Memstore(api_key=key, base_url=server.url), Memstore.local(tmp_path)):
        with ms, pytest.raises(ValidationError) as caught:
            ms.remember("x", metadata={"a": {"b": 1}})
        assert caught.value.message == FLAT


@pytest.mark.parametrize("suffix", ["/v1", "/v1/", "/"])
def test_sdk_accepts_a_base_url_ending_in_v1(server, key, suffix):
    with Memstore(api_key=key, base_url=server.url + suffix) as ms:
        ms.remember("base url with the API prefix", session="v1")
        assert ms.recall("API prefix", session="v1")[0].content == "base url with the API prefix"
