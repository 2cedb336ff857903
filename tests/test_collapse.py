"""Near-duplicates collapse at recall: one session's versions of a thing come back once, as
the newest, with the others counted (SQLite and PostgreSQL, HTTP, both SDK modes)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from memstore import Memstore
from memstore.engine import MemoryEngine

RUNS = [
    "Research completed for Acme Corp competitor analysis on 2026-03-0{day}: "
    "{n} sources read, Acme Corp still lacks API documentation.",
]
FACTS = [
    "Acme Corp's CEO spoke at the developer conference in Lisbon.",
    "Our own API documentation was rewritten in February.",
    "Globex, another competitor, ships a public API with full docs.",
    "The sales team lost two deals to Acme Corp last quarter.",
]
QUERY = "competitor analysis of Acme Corp"


def run_summary(day: int) -> str:
    return RUNS[0].format(day=day, n=10 + day)


def store_runs(engine: MemoryEngine, clock, session: str = "alpha", runs: int = 5) -> list[str]:
    """``runs`` near-identical summaries a day apart, then the facts; the run ids, oldest first."""
    ids = []
    for day in range(1, runs + 1):
        ids.append(engine.remember("acct_a", run_summary(day), session=session).memory.id)
        clock.advance(86400)
    for fact in FACTS:
        engine.remember("acct_a", fact, session=session)
    return ids


def test_versions_collapse_into_the_newest_with_the_others_counted(engine, clock):
    runs = store_runs(engine, clock)
    found = engine.recall("acct_a", QUERY, session="alpha", limit=5)
    assert [m.id for m in found].count(runs[-1]) == 1
    assert not set(runs[:-1]) & {m.id for m in found}
    newest = next(m for m in found if m.id == runs[-1])
    assert newest.similar == 4
    assert sorted(newest.similar_ids) == sorted(runs[:-1])
    assert all(m.similar == 0 and m.similar_ids == [] for m in found if m.id != runs[-1])


def test_the_limit_is_filled_with_distinct_memories(engine, clock):
    store_runs(engine, clock)
    found = engine.recall("acct_a", QUERY, session="alpha", limit=5)
    assert len(found) == 5  # 1 run summary + the 4 facts
    assert len({m.content for m in found}) == 5
    assert sum(1 + m.similar for m in found) == 9


def test_collapse_false_returns_every_version(engine, clock):
    runs = store_runs(engine, clock)
    found = engine.recall("acct_a", QUERY, session="alpha", limit=9, collapse=False)
    assert set(runs) <= {m.id for m in found}
    assert all(m.similar == 0 for m in found)


def test_scores_stay_non_increasing_and_in_range(engine, clock):
    store_runs(engine, clock)
    for collapse in (True, False):
        scores = [m.score for m in engine.recall("acct_a", QUERY, "alpha", 9, collapse=collapse)]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= s <= 1.0 for s in scores)


def test_near_duplicates_in_different_sessions_stay_apart(engine, clock):
    store_runs(engine, clock, session="alpha", runs=2)
    store_runs(engine, clock, session="beta", runs=2)
    found = engine.recall("acct_a", QUERY, session=["alpha", "beta"], limit=10)
    runs_shown = [m for m in found if m.content.startswith("Research completed")]
    assert sorted(m.session for m in runs_shown) == ["alpha", "beta"]
    assert all(m.similar == 1 for m in runs_shown)


def test_distinct_memories_are_not_collapsed(engine, clock):
    for fact in FACTS:
        engine.remember("acct_a", fact, session="alpha")
    found = engine.recall("acct_a", QUERY, session="alpha", limit=10)
    assert len(found) == len(FACTS)
    assert all(m.similar == 0 for m in found)


def test_collapse_never_shows_another_accounts_memory(engine, clock):
    store_runs(engine, clock, runs=3)
    for day in range(4, 8):  # newer versions, in the other account
        engine.remember("acct_b", run_summary(day), session="alpha")
    found = engine.recall("acct_a", QUERY, session="alpha", limit=5)
    mine = {m.id for m in engine.list("acct_a", session="alpha").memories}
    assert {m.id for m in found} | {i for m in found for i in m.similar_ids} <= mine


# -- HTTP and the SDK's two modes


@pytest.fixture
def key(server) -> str:
    return server.key(f"collapse-{uuid.uuid4().hex[:8]}").key


def remember_versions(ms: Memstore) -> list[str]:
    ids = [ms.remember(run_summary(day), session="alpha").id for day in range(1, 4)]
    ms.remember(FACTS[0], session="alpha")
    return ids


def test_http_recall_collapses_by_default_and_collapse_false_returns_all(server, key):
    with Memstore(api_key=key, base_url=server.url) as ms:
        ids = remember_versions(ms)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        params = {"q": QUERY, "session": "alpha", "limit": 10}
        shown = http.get("/v1/memory/recall", params=params).json()["memories"]
        every = http.get("/v1/memory/recall", params={**params, "collapse": "false"}).json()
        posted = http.post(
            "/v1/memory/recall",
            json={"query": QUERY, "session": "alpha", "limit": 10, "collapse": False},
        ).json()
        bad = http.get("/v1/memory/recall", params={**params, "collapse": "maybe"})
        bad_body = http.post("/v1/memory/recall", json={"query": QUERY, "collapse": "no"})
    assert len(shown) == 2
    newest = next(m for m in shown if m["id"] == ids[-1])
    assert newest["similar"] == 2 and sorted(newest["similar_ids"]) == sorted(ids[:-1])
    assert {"content", "score"} <= newest.keys()  # the seed's reading code keeps working
    assert set(ids) <= {m["id"] for m in every["memories"]}
    assert set(ids) <= {m["id"] for m in posted["memories"]}
    assert bad.status_code == 422 and "error" in bad.json()
    assert bad_body.status_code == 422 and "error" in bad_body.json()


@pytest.mark.parametrize("mode", ["local", "http"])
def test_the_sdk_takes_collapse_in_both_modes(mode, server, key, embedder, tmp_path):
    if mode == "local":
        ms = Memstore.local(tmp_path / "local", embedder=embedder)
    else:
        ms = Memstore(api_key=key, base_url=server.url)
    with ms:
        ids = remember_versions(ms)
        collapsed = ms.recall(QUERY, session="alpha", limit=10)
        every = ms.recall(QUERY, session="alpha", limit=10, collapse=False)
    assert [m.similar for m in collapsed if m.id in ids] == [2]
    assert set(ids) <= {m.id for m in every}


def test_the_cli_collapses_unless_told_not_to_and_explains(tmp_path, embedder):
    from tests.test_cli import run_cli

    data = tmp_path / "data"
    with Memstore.local(data, embedder=embedder) as ms:
        ids = remember_versions(ms)
    args = ["recall", QUERY, "--session", "alpha", "--data-dir", str(data), "--json"]
    shown = json.loads(run_cli(*args).stdout)["memories"]
    every = json.loads(run_cli(*args, "--no-collapse").stdout)["memories"]
    explained = json.loads(run_cli(*args, "--explain").stdout)["memories"]
    table = run_cli(*args[:-1], "--explain", COLUMNS="400").stdout
    assert [m["similar"] for m in shown if m["id"] in ids] == [2]
    assert set(ids) <= {m["id"] for m in every}
    assert all(m["why"] is None for m in shown)
    assert explained[0]["why"]["cosine"] > 0.7
    assert "(+2 similar)" in table and "cosine 0." in table
