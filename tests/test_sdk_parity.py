"""Every SDK method answers alike on both backends: the engine in this process, and a real
`memstore serve` over HTTP. Each scenario runs on a fresh local store and a fresh server
account, sync and async; results (ids renumbered, times dropped) and errors (type and code)
must be identical."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from memstore import AsyncMemstore, Memstore, MemstoreError
from memstore.models import _Record

Scenario = Callable[[Any], list[Any]]


def attempt(fn: Callable[[], Any]) -> Any:
    """The result of ``fn``, or the type and code of the error it raised."""
    try:
        return fn()
    except MemstoreError as exc:
        return ("raised", type(exc).__name__, exc.code)


def normalize(value: Any, ids: dict[str, str]) -> Any:
    """Comparable across backends: ids renumbered in order of appearance, times relative."""
    if isinstance(value, _Record):
        value = value.model_dump()
    if isinstance(value, dict):
        out = {}
        created = value.get("created_at")
        for k, v in value.items():
            if k in ("created_at", "updated_at", "last_write", "account"):
                continue
            if k in ("id", "next_cursor", "superseded_by", "neighbor_of"):
                v = None if v is None else ids.setdefault(v, f"#{len(ids)}")
            elif k == "superseded_at":
                v = v is not None
            elif k == "similar_ids":
                v = [ids.setdefault(i, f"#{len(ids)}") for i in v]
            elif k == "expires_at" and isinstance(v, datetime) and created:
                v = (v - created).total_seconds()
            elif k == "score":
                v = round(v, 4)
            else:
                v = normalize(v, ids)
            out[k] = v
        return out
    if isinstance(value, list | tuple):
        return type(value)(normalize(v, ids) for v in value)
    return value


class Blocking:
    """Drives an AsyncMemstore from sync code, so one scenario serves both twins."""

    def __init__(self, client: AsyncMemstore, loop: asyncio.AbstractEventLoop) -> None:
        self.client, self.loop = client, loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)
        return lambda *a, **kw: self.loop.run_until_complete(method(*a, **kw))


# -- scenarios: each returns what it saw, step by step


def remembering(ms) -> list[Any]:
    first = ms.remember("The deploy runs at noon", session="ops", metadata={"k": "v"}, ttl=90.5)
    return [
        first,
        ms.remember("The deploy runs at noon", session="ops"),  # the same memory again
        ms.remember("A note in the shared session"),
        ms.remember_many(["one", {"content": "two", "session": "s"}, "one"]),
        ms.get(first.id),
        ms.sessions(),
    ]


def recalling(ms) -> list[Any]:
    ms.remember_many(
        [
            {"content": "Acme Corp lacks API docs", "session": "alpha", "metadata": {"k": "a"}},
            {"content": "Acme Corp ships weekly", "session": "beta", "metadata": {"k": "b"}},
            {"content": "The shared plan mentions Acme", "metadata": {"k": "a"}},
        ]
    )
    query = "what do we know about Acme"
    return [
        ms.recall(query, session="alpha"),
        ms.recall(query),
        ms.recall(query, session=[None, "beta"]),
        ms.recall(query, session=("alpha", "beta")),
        ms.recall(query, session="*", limit=2),
        ms.recall(query, session="*", filters={"k": "a"}),
        ms.recall(query, session="*", min_score=0.99),
        ms.recall(query, session="nobody"),
    ]


def collapsing_and_explaining(ms) -> list[Any]:
    for day in range(1, 4):
        ms.remember(f"Research completed for Acme on 2026-03-0{day}: Acme lacks docs", "p")
    ms.remember("The sales team lost a deal to Acme", session="p")
    query = "Acme research"
    return [
        ms.recall(query, session="p"),
        ms.recall(query, session="p", collapse=False),
        ms.recall(query, session="p", explain=True),
        ms.recall(query, session="p", limit=2, collapse=False, explain=True),
    ]


def listing(ms) -> list[Any]:
    ms.remember_many(["shared one", "shared two"])
    ms.remember_many([{"content": f"x{i}", "session": "x"} for i in range(3)])
    ms.remember("y0", session="y")
    page = ms.list(session="*", limit=4)
    return [
        ms.list(),
        ms.list(session="x"),
        ms.list(session=[None, "x"]),
        ms.list(session=[None]),
        ms.list(session=["x", "y"]),
        ms.list(session=["x", "*"]),
        page,
        ms.list(session="*", limit=4, cursor=page.next_cursor),
    ]


def changing(ms) -> list[Any]:
    m = ms.remember("first draft", session="d")
    other = ms.remember("second draft", session="d")
    return [
        ms.update(m.id, content="first draft, revised"),
        ms.update(m.id, metadata={"rev": 2}),
        attempt(lambda: ms.update(other.id, content="first draft, revised")),
        attempt(lambda: ms.update(m.id)),
        ms.forget(other.id),
        attempt(lambda: ms.forget(other.id)),
        attempt(lambda: ms.get(other.id)),
        ms.list(session="d"),
    ]


def forgetting_sessions(ms) -> list[Any]:
    ms.remember_many(
        ["s1", "s2", {"content": "k1", "session": "k"}, {"content": "g", "session": "g"}]
    )
    return [
        ms.forget_session("k"),
        ms.forget_session("nobody"),
        ms.forget_session(None),
        attempt(lambda: ms.forget_session("*")),
        ms.sessions(),
        ms.usage(),
    ]


def bad_input(ms) -> list[Any]:
    calls: list[Callable[[], Any]] = [
        lambda: ms.remember(""),
        lambda: ms.remember("x" * (32 * 1024 + 1)),
        lambda: ms.remember("x", ttl=-1),
        lambda: ms.remember("x", metadata={"a": {"nested": 1}}),
        lambda: ms.remember("x", metadata={"bad key!": 1}),
        lambda: ms.remember("x", session="*"),
        lambda: ms.remember("x", session=""),
        lambda: ms.remember_many([]),
        lambda: ms.remember_many(["x"] * 101),
        lambda: ms.remember_many([{"content": ""}]),
        lambda: ms.recall(""),
        lambda: ms.recall("q", limit=0),
        lambda: ms.recall("q", limit=101),
        lambda: ms.recall("q", min_score=2),
        lambda: ms.recall("q", filters={"a": [1]}),
        lambda: ms.recall("q", session=[]),
        lambda: ms.get("mem_missing"),
        lambda: ms.get(""),
        lambda: ms.get("a/b"),
        lambda: ms.get("m" * 65),
        lambda: ms.update("mem_missing", content="x"),
        lambda: ms.forget("mem_missing"),
        lambda: ms.list(limit=0),
        lambda: ms.list(cursor="not a cursor"),
        lambda: ms.list(session=[]),
        lambda: ms.list(session="bad\nname"),
    ]
    return [attempt(call) for call in calls]


def superseding(ms) -> list[Any]:
    old = ms.remember("Acme Corp lacks API docs", session="facts")
    new = ms.remember("Acme Corp shipped API docs", session="facts", supersedes=[old.id])
    gone = ms.remember("The office is in Leeds", session="facts")
    run = "Crew run (topic: pricing): researched Acme; result: Acme leads on price, run {}"
    runs = [ms.remember(run.format(n), session="runs", on_similar="supersede") for n in (1, 2)]
    skipped = ms.remember(run.format(3), session="runs", on_similar="skip")
    between = old.created_at + (new.created_at - old.created_at) / 2
    return [
        new,
        runs,
        skipped,
        ms.invalidate(gone.id),
        ms.invalidate(gone.id),
        ms.recall("Acme API docs", session="facts"),
        ms.recall("Acme API docs", session="facts", include_superseded=True),
        ms.recall("Acme API docs", session="facts", as_of=between),
        ms.list(session="facts", as_of=between.timestamp()),
        ms.list(session="runs"),
        ms.list(session="*", include_superseded=True),
        ms.stats(),
        ms.stats("runs"),
        attempt(lambda: ms.remember("x", supersedes=["mem_missing"])),
        attempt(lambda: ms.remember("x", supersedes="mem_1")),
        attempt(lambda: ms.remember("x", on_similar="replace")),
        attempt(lambda: ms.invalidate("mem_missing")),
        attempt(lambda: ms.recall("q", as_of="yesterday")),
        attempt(lambda: ms.recall("q", as_of=10**30)),
        attempt(lambda: ms.list(as_of="2026-13-45")),
        attempt(lambda: ms.list(include_superseded=True, as_of=0)),
        attempt(lambda: ms.stats("bad\nname")),
        ms.list(session="*"),
    ]


SCENARIOS = [
    remembering,
    recalling,
    collapsing_and_explaining,
    listing,
    changing,
    forgetting_sessions,
    bad_input,
    superseding,
]


@pytest.fixture
def backends(server, embedder, tmp_path, request) -> Iterator[dict[str, Any]]:
    """The same SDK twin on both backends: {"local": ..., "http": ...}."""
    key = server.key(f"parity-{uuid.uuid4().hex[:12]}").key
    if request.param == "sync":
        local = Memstore.local(tmp_path / "local", embedder=embedder)
        remote = Memstore(api_key=key, base_url=server.url)
        yield {"local": local, "http": remote}
        local.close()
        remote.close()
        return
    loop = asyncio.new_event_loop()
    clients = {
        "local": AsyncMemstore.local(tmp_path / "local", embedder=embedder),
        "http": AsyncMemstore(api_key=key, base_url=server.url),
    }
    yield {name: Blocking(c, loop) for name, c in clients.items()}
    for c in clients.values():
        loop.run_until_complete(c.close())
    loop.close()


@pytest.mark.parametrize("backends", ["sync", "async"], indirect=True)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_both_backends_answer_alike(backends, scenario):
    local = normalize(attempt(lambda: scenario(backends["local"])), {})
    http = normalize(attempt(lambda: scenario(backends["http"])), {})
    assert http == local


def test_listing_several_sessions_includes_the_shared_one(server, embedder, tmp_path):
    """The divergence found in review, stated outright: [None, "x"] lists both."""
    for ms in (
        Memstore.local(tmp_path, embedder=embedder),
        Memstore(api_key=server.key(f"parity-{uuid.uuid4().hex[:12]}").key, base_url=server.url),
    ):
        ms.remember("in the shared session")
        ms.remember("in x", session="x")
        ms.remember("in y", session="y")
        page = ms.list(session=[None, "x"])
        assert sorted(m.content for m in page.memories) == ["in the shared session", "in x"]
        ms.close()
