"""explain=true: each recalled memory says why it came back (cosine, keywords, neighbour,
period, collapsed duplicates), on SQLite and PostgreSQL, over HTTP and in both SDK modes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from memstore import Memstore

MARCH_2026 = datetime(2026, 3, 10, tzinfo=UTC).timestamp()


def test_without_explain_there_is_no_why(engine):
    engine.remember("acct_a", "The deploy runs at noon", session="ops")
    assert [m.why for m in engine.recall("acct_a", "when is the deploy", session="ops")] == [None]


def test_explain_gives_cosine_keywords_and_their_rank(engine):
    engine.remember("acct_a", "The deploy pipeline runs at noon every weekday", session="ops")
    engine.remember("acct_a", "Lunch is served in the atrium", session="ops")
    found = engine.recall("acct_a", "deploy pipeline schedule", session="ops", explain=True)
    why = found[0].why
    assert found[0].content.startswith("The deploy pipeline")
    assert why is not None and 0.7 < why.cosine <= 1.0
    assert why.keywords == ["deploy", "pipeline"]
    assert why.keyword_rank == 1
    lunch = next(m for m in found if m.content.startswith("Lunch"))
    assert lunch.why.keywords == [] and lunch.why.keyword_rank is None


def test_explain_names_the_period_the_query_matched(engine, clock):
    clock.now = MARCH_2026
    engine.remember("acct_a", "We signed the Initech contract", session="sales")
    found = engine.recall("acct_a", "what did we sign in March 2026", session="sales", explain=True)
    period = found[0].why.period
    assert period is not None
    assert (period.start, period.end) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )
    other = engine.recall("acct_a", "what did we sign in May 2025", session="sales", explain=True)
    assert other[0].why.period is None


def test_explain_names_the_neighbour_that_brought_a_memory(engine, clock):
    question = engine.remember(
        "acct_a", "Which database should the analytics warehouse use?", session="chat"
    ).memory
    clock.advance(30)
    answer = engine.remember("acct_a", "ClickHouse, we agreed yesterday.", session="chat").memory
    clock.advance(7200)  # a later, unrelated exchange, out of the context window
    engine.remember("acct_a", "The office plants need water on Fridays.", session="chat")
    found = engine.recall(
        "acct_a", "analytics warehouse database", session="chat", limit=3, explain=True
    )
    why = {m.id: m.why for m in found}
    assert why[question.id].neighbor_of is None
    assert why[answer.id].neighbor_of == question.id


def test_explain_counts_the_collapsed_duplicates(engine, clock):
    for day in range(1, 4):
        engine.remember(
            "acct_a", f"Research completed for Acme on 2026-03-0{day}: Acme lacks API docs", "p"
        )
        clock.advance(86400)
    found = engine.recall("acct_a", "Acme research", session="p", explain=True)
    assert [(m.similar, m.why.similar) for m in found] == [(2, 2)]
    assert "2 similar" in found[0].why.describe()


@pytest.fixture
def key(server) -> str:
    return server.key(f"explain-{uuid.uuid4().hex[:8]}").key


def test_http_recall_explains_when_asked(server, key):
    with Memstore(api_key=key, base_url=server.url) as ms:
        ms.remember("The deploy pipeline runs at noon", session="ops")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        params = {"q": "deploy pipeline", "session": "ops"}
        plain = http.get("/v1/memory/recall", params=params).json()["memories"]
        got = http.get("/v1/memory/recall", params={**params, "explain": "true"}).json()
        posted = http.post(
            "/v1/memory/recall",
            json={"query": "deploy pipeline", "session": "ops", "explain": True},
        ).json()
        bad = http.post("/v1/memory/recall", json={"query": "x", "explain": "yes"})
    assert plain[0]["why"] is None
    for body in (got, posted):
        why = body["memories"][0]["why"]
        assert why["keywords"] == ["deploy", "pipeline"] and why["keyword_rank"] == 1
        assert why["cosine"] > 0.7 and why["similar"] == 0 and why["neighbor_of"] is None
    assert bad.status_code == 422 and "error" in bad.json()


@pytest.mark.parametrize("mode", ["local", "http"])
def test_the_sdk_explains_in_both_modes(mode, server, key, embedder, tmp_path):
    if mode == "local":
        ms = Memstore.local(tmp_path / "local", embedder=embedder)
    else:
        ms = Memstore(api_key=key, base_url=server.url)
    with ms:
        ms.remember("The deploy pipeline runs at noon", session="ops")
        found = ms.recall("deploy pipeline", session="ops", explain=True)
    assert found[0].why is not None and found[0].why.keywords == ["deploy", "pipeline"]
    assert found[0]["why"]["keyword_rank"] == 1
