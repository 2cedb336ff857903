"""Superseding and hygiene figures over HTTP, through a real `memstore serve` process."""

from __future__ import annotations

import uuid

import httpx
import pytest


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def as_account(server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.key(f'acct-{uuid.uuid4().hex[:8]}').key}"}


def remember(http, headers, content: str, **more) -> httpx.Response:
    body = {"content": content, "session": "facts", **more}
    return http.post("/v1/memory/remember", json=body, headers=headers)


def test_supersede_invalidate_and_read_back_over_http(server, http):
    a = as_account(server)
    old = remember(http, a, "Acme Corp lacks API docs").json()
    new = remember(http, a, "Acme Corp shipped API docs", supersedes=[old["id"]])
    assert new.status_code == 201
    found = http.get("/v1/memory/recall", params={"q": "Acme docs", "session": "facts"}, headers=a)
    assert [m["content"] for m in found.json()["memories"]] == ["Acme Corp shipped API docs"]
    every = http.get(
        "/v1/memory/recall",
        params={"q": "Acme docs", "session": "facts", "include_superseded": "true"},
        headers=a,
    ).json()["memories"]
    old_again = next(m for m in every if m["id"] == old["id"])
    assert old_again["superseded_by"] == new.json()["id"] and old_again["superseded_at"]
    gone = http.post(f"/v1/memory/{new.json()['id']}/invalidate", headers=a)
    assert gone.status_code == 200 and gone.json()["superseded_at"]
    again = http.post(f"/v1/memory/{new.json()['id']}/invalidate", headers=a)
    assert again.json()["superseded_at"] == gone.json()["superseded_at"]
    listed = http.get("/v1/memory", params={"session": "facts"}, headers=a).json()
    assert listed["memories"] == []


def test_another_accounts_ids_are_not_found_and_nothing_is_stored(server, http):
    a, b = as_account(server), as_account(server)
    theirs = remember(http, b, "B's fact").json()["id"]
    refused = remember(http, a, "A's new fact", supersedes=[theirs])
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    assert http.post(f"/v1/memory/{theirs}/invalidate", headers=a).status_code == 404
    listed = http.get(
        "/v1/memory", params={"session": "*", "include_superseded": "true"}, headers=a
    )
    assert listed.json()["memories"] == []
    assert http.get(f"/v1/memory/{theirs}", headers=b).json()["superseded_at"] is None


@pytest.mark.parametrize(
    "as_of",
    ["yesterday", "1e400", "-1", "99999999999999999999", "nan", "2026-02-30", "\u00e9" * 80],
)
def test_a_bad_as_of_is_a_422_json_error(server, http, as_of):
    a = as_account(server)
    for path, params in (
        ("/v1/memory/recall", {"q": "x", "as_of": as_of}),
        ("/v1/memory", {"as_of": as_of}),
    ):
        answer = http.get(path, params=params, headers=a)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"]["code"]


@pytest.mark.parametrize(
    "body",
    [
        {"query": "x", "as_of": "garbage"},
        {"query": "x", "as_of": 1e300},
        {"query": "x", "as_of": True},
        {"query": "x", "as_of": ["2026-01-01"]},
        {"query": "x", "include_superseded": "yes"},
        {"query": "x", "include_superseded": True, "as_of": 0},
    ],
)
def test_a_bad_recall_body_is_a_422(server, http, body):
    answer = http.post("/v1/memory/recall", json=body, headers=as_account(server))
    assert answer.status_code == 422 and answer.json()["error"]["code"]


@pytest.mark.parametrize(
    "more",
    [
        {"supersedes": "mem_1"},
        {"supersedes": [1]},
        {"supersedes": [""]},
        {"supersedes": ["m" * 65]},
        {"supersedes": ["mem_x"] * 101},
        {"on_similar": "replace"},
        {"on_similar": 1},
    ],
)
def test_bad_superseding_fields_are_a_422(server, http, more):
    answer = remember(http, as_account(server), "x", **more)
    assert answer.status_code == 422 and answer.json()["error"]["code"]


def test_invalid_unicode_in_as_of_is_refused(server, http):
    a = as_account(server)
    raw = b'{"query": "x", "as_of": "\\ud800"}'
    answer = http.post(
        "/v1/memory/recall",
        content=raw,
        headers={**a, "Content-Type": "application/json"},
    )
    assert answer.status_code == 422


def test_stats_are_per_account(server, http):
    a, b = as_account(server), as_account(server)
    old = remember(http, a, "Acme Corp lacks API docs").json()
    remember(http, a, "Acme Corp shipped API docs", supersedes=[old["id"]])
    remember(http, b, "B's only fact")
    mine = http.get("/v1/stats", headers=a).json()
    assert (mine["memories"], mine["current"], mine["superseded"]) == (2, 1, 1)
    assert [s["session"] for s in mine["sessions"]] == ["facts"]
    theirs = http.get("/v1/stats", params={"session": "facts"}, headers=b).json()
    assert (theirs["memories"], theirs["superseded"], theirs["never_recalled"]) == (1, 0, 1)
    assert http.get("/v1/stats", params={"session": "bad\nname"}, headers=a).status_code == 422
