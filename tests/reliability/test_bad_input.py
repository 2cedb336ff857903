"""Bad input at the edges gets a clear 4xx with a JSON error body or a correct result:
never a 500, never a corrupted store. Extends the table in tests/test_http_api.py."""

from __future__ import annotations

import json
import unicodedata
import uuid

import httpx
import pytest

from tests.reliability.conftest import auth, integrity_check

pytestmark = pytest.mark.reliability

JSON = {"Content-Type": "application/json"}
LIMIT = 32 * 1024


@pytest.fixture(scope="module")
def key(server) -> str:
    return server.key(f"edges-{uuid.uuid4().hex[:8]}").key


@pytest.fixture(scope="module")
def http(server, key):
    with httpx.Client(base_url=server.url, headers=auth(key), timeout=60) as client:
        yield client


def nested(depth: int) -> bytes:
    return (
        b'{"content": "deep", "metadata": {"a": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}}"
    )


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b'{"content": "caf\xe9"}', JSON, 400),  # Latin-1, not UTF-8
        (b'{"content": "\xed\xa0\x80"}', JSON, 422),  # an encoded lone surrogate
        (b'{"content": "x"}\x00', JSON, 400),
        (bytes(range(256)), JSON, 400),
        (bytes(range(256)), {"Content-Type": "application/octet-stream"}, 400),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, {"Content-Type": "image/png"}, 400),
        (b"content=form+encoded", {"Content-Type": "application/x-www-form-urlencoded"}, 400),
        (b"", JSON, 400),
        (b"null", JSON, 422),
        (b"[]", JSON, 422),
        (b'"just a string"', JSON, 422),
        (b'{"content": "\\ud800"}', JSON, 422),  # a lone surrogate, escaped
        (b'{"content": "a\\u0000b"}', JSON, 422),
        (nested(30), JSON, 422),
        (nested(5_000), JSON, 400),  # deeper than the JSON parser recurses
        (b'{"content": ' + b"[" * 300_000 + b"]" * 300_000 + b"}", JSON, 400),
        (b'{"content": "x", "metadata": {"n": NaN}}', JSON, 422),
        (b'{"content": "x", "metadata": {"n": Infinity}}', JSON, 422),
        (b'{"content": "x", "metadata": {"n": -Infinity}}', JSON, 422),
        (b'{"content": "x", "ttl": Infinity}', JSON, 422),
        (b'{"content": "x", "ttl": 1e400}', JSON, 422),
        (b'{"content": NaN}', JSON, 422),
        (b'{"content": "x", "session": "a\\nb"}', JSON, 422),
        (b'{"content": "x", "session": "*"}', JSON, 422),
        (b'{"content": "x", "session": ""}', JSON, 422),
        (b'{"content": "x", "metadata": {"bad key!": 1}}', JSON, 422),
        (b'{"content": "x", "metadata": {"k": "a\\u0000b"}}', JSON, 422),
        (b'{"content": "   \\n\\t "}', JSON, 422),
    ],
)
def test_unreadable_or_invalid_remember_bodies_get_a_4xx(http, body, headers, status):
    r = http.post("/v1/memory/remember", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] in ("bad_request", "invalid_request")


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b'{"content": "caf\xe9"}', "application/json", "not valid UTF-8"),
        (nested(5_000), "application/json", "nested too deeply"),
        (b"", "application/json", "empty"),
        (
            b'{"content": "x"}',
            "application/x-www-form-urlencoded",
            "Content-Type: application/json",
        ),
        (b'{"content": "x"}', "text/plain", "Content-Type: application/json"),
        (b"[1, 2]", "application/json", "must be a JSON object"),
    ],
)
def test_unreadable_bodies_say_what_is_wrong(http, body, content_type, says):
    r = http.post("/v1/memory/remember", content=body, headers={"Content-Type": content_type})
    assert says in r.json()["error"]["message"], r.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/memory/recall", b'{"query": "x", "min_score": NaN}'),
        ("/v1/memory/recall", b'{"query": "x", "min_score": Infinity}'),
        ("/v1/memory/recall", b'{"query": "x", "limit": Infinity}'),
        ("/v1/memory/recall", b'{"query": "x", "limit": 1e400}'),
        ("/v1/memory/recall", b'{"query": "x", "filters": {"n": NaN}}'),
        ("/v1/memory/recall", b'{"query": "x", "filters": {"a": {"b": {"c": 1}}}}'),
        ("/v1/memory/recall", b'{"query": "", "session": "*"}'),
        ("/v1/memory/recall", b'{"query": "  "}'),
        ("/v1/memory/recall", b'{"query": "x", "session": []}'),
        ("/v1/memory/recall", b'{"query": "x", "session": ["a\\u0000"]}'),
        ("/v1/memory/remember/batch", b'{"memories": [{"content": "x", "ttl": NaN}]}'),
        ("/v1/memory/remember/batch", b'{"memories": [{"content": "ok"}, {"content": ""}]}'),
        ("/v1/memory/remember/batch", b'{"memories": {"content": "x"}}'),
    ],
)
def test_non_finite_numbers_and_bad_shapes_elsewhere_get_422(http, path, body):
    r = http.post(path, content=body, headers=JSON)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    "params",
    [
        {"q": "x", "min_score": "nan"},
        {"q": "x", "min_score": "inf"},
        {"q": "x", "limit": "nan"},
        {"q": "x", "limit": "1e3"},
        {"q": " "},
        {"q": "x", "session": ""},
        {"q": "x", "session": "a\x01b"},
    ],
)
def test_bad_recall_query_strings_get_422(http, params):
    r = http.get("/v1/memory/recall", params=params)
    assert r.status_code == 422, r.text


def test_a_batch_with_one_bad_item_stores_nothing(http):
    marker = uuid.uuid4().hex
    r = http.post(
        "/v1/memory/remember/batch",
        json={"memories": [{"content": f"good {marker}"}, {"content": "x" * (LIMIT + 1)}]},
    )
    assert r.status_code == 422
    assert (
        "memories[1]" in r.json()["error"]["message"] or "items[1]" in r.json()["error"]["message"]
    )
    found = http.get("/v1/memory/recall", params={"q": marker}).json()["memories"]
    assert all(marker not in m["content"] for m in found)


@pytest.mark.parametrize(
    ("content", "status"),
    [
        ("x" * LIMIT, 201),
        ("é" * (LIMIT // 2), 201),  # 2 bytes each: exactly the limit
        ("é" * (LIMIT // 2) + "x", 422),
        ("🙂" * (LIMIT // 4), 201),  # 4 bytes each
        ("🙂" * (LIMIT // 4) + "x", 422),
        ("x" * (LIMIT - 1) + "é", 422),  # 32 KiB + 1 byte, by one 2-byte character
    ],
)
def test_the_32_kib_limit_counts_utf8_bytes(http, content, status):
    r = http.post("/v1/memory/remember", json={"content": content, "session": uuid.uuid4().hex})
    assert r.status_code == status, r.text[:200]
    if status == 201:
        assert http.get(f"/v1/memory/{r.json()['id']}").json()["content"] == content


QUERY_SYNTAX = [
    '"',
    '""',
    "*",
    "NEAR(",
    "NEAR(a b, 2)",
    "--",
    "'",
    "a' OR '1'='1",
    "'; DROP TABLE memories; --",
    "content:secret",
    "^start",
    "a AND b OR NOT c",
    "(unbalanced",
    "{col1 col2}: x",
    "x*",
    "%_%",
    "\\",
    "\\x00",
]
TEXTS = [
    "🙂🚀 emoji sentence 👩‍👩‍👧‍👦",
    "مرحبا بالعالم، هذه ذاكرة",  # Arabic (RTL)
    "שלום עולם זה זיכרון",  # Hebrew (RTL)
    "\u202eoverride text\u202c mixed direction",
    "e\u0301 combining accents and ﬁ ligatures",
    "日本語のメモリー",
]


@pytest.mark.parametrize("query", [q for q in QUERY_SYNTAX if q != "*"])  # '*' is all sessions
def test_sql_and_fts5_syntax_is_plain_text_everywhere(http, query):
    session = "syntax-" + uuid.uuid4().hex[:6]
    content = f"stored note {query} end"
    made = http.post(
        "/v1/memory/remember",
        json={"content": content, "session": session, "metadata": {"k": query}},
    )
    assert made.status_code == 201, made.text
    for r in (
        http.get("/v1/memory/recall", params={"q": query, "session": session}),
        http.post("/v1/memory/recall", json={"query": query, "session": session}),
        http.post(
            "/v1/memory/recall",
            json={"query": "stored note", "session": session, "filters": {"k": query}},
        ),
    ):
        assert r.status_code == 200, r.text
        assert [m["content"] for m in r.json()["memories"]] == [content]
    assert http.post(
        "/v1/memory/recall",
        json={"query": "stored note", "session": session, "filters": {"k": query + "x"}},
    ).json() == {"memories": []}
    # As a session name: listed, recalled and forgotten as exactly that name.
    other = http.post(
        "/v1/memory/remember", json={"content": "in an odd session", "session": query}
    )
    assert other.status_code == 201, other.text
    listed = http.get("/v1/memory", params={"session": query}).json()["memories"]
    assert [m["content"] for m in listed] == ["in an odd session"]
    assert http.delete("/v1/memory", params={"session": query}).json() == {"deleted": 1}


@pytest.mark.parametrize("text", TEXTS)
def test_emoji_and_rtl_text_round_trip_and_are_found(http, text):
    # Session names may not hold bidi overrides and are stored in NFC (docs/limits.md).
    session = text[:20].replace("\u202e", "").replace("\u202c", "")
    made = http.post(
        "/v1/memory/remember", json={"content": text, "session": session, "metadata": {"t": text}}
    )
    assert made.status_code == 201, made.text
    got = http.get(f"/v1/memory/{made.json()['id']}").json()
    stored = unicodedata.normalize("NFC", session)
    assert (got["content"], got["session"], got["metadata"]) == (text, stored, {"t": text})
    found = http.get("/v1/memory/recall", params={"q": text, "session": stored}).json()
    assert found["memories"][0]["content"] == text
    assert 0 <= found["memories"][0]["score"] <= 1


def test_a_query_of_only_punctuation_or_stopwords_still_answers(http):
    session = "punct-" + uuid.uuid4().hex[:6]
    http.post("/v1/memory/remember", json={"content": "the quick brown fox", "session": session})
    for q in ["?!.,;", "the of and", "*", "🙂"]:
        r = http.get("/v1/memory/recall", params={"q": q, "session": session})
        assert r.status_code == 200, r.text
        assert all(0 <= m["score"] <= 1 for m in r.json()["memories"])


def test_the_store_is_sound_after_all_that(server, http):
    assert http.get("/readyz").status_code == 200
    assert integrity_check(server.data_dir) == "ok"
    made = http.post("/v1/memory/remember", json={"content": "still works afterwards"})
    assert made.status_code == 201
    assert json.loads(http.get(f"/v1/memory/{made.json()['id']}").text)["content"] == (
        "still works afterwards"
    )
