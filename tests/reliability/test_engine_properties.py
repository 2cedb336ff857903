"""Property tests on MemoryEngine: any sequence of remember / forget / update / forget_session
/ time passing keeps the invariants a user relies on.

A plain-dict model tracks which memories must be live. After every step: recall never
returns a forgotten, expired or foreign memory, returns exactly as many as are live in its
scope (up to the limit), scores are in [0, 1] and non-increasing; list and sessions agree
with the model. A duplicate remember takes the newer ttl and metadata; metadata filters
keep exactly the matching memories; paging with cursors visits every memory once; hostile
values (lone surrogates, 2^64, bidi overrides, forged cursors) are refused and change nothing.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
)

from memstore.embedding import load_embedder
from memstore.engine import MemoryEngine
from memstore.errors import ConflictError, NotFoundError, ValidationError
from memstore.stores.sqlite import SQLiteStore
from tests.conftest import Clock

pytestmark = pytest.mark.reliability

ACCOUNTS = ("acct_a", "acct_b")
SESSIONS = (None, "s1", "s2")
WORDS = ("apple", "river", "engine", "quota", "llama", "orbit")
contents = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
ttls = st.sampled_from([None, None, 5, 90])
kinds = st.sampled_from([None, "docs", "chat"])  # None: no metadata given
HOSTILE = [
    {"content": "x", "metadata": {"k": "\ud800"}},
    {"content": "x", "metadata": {"n": 2**64}},
    {"content": "x", "session": "a\u202eb"},
    {"content": "x", "session": "\udc00"},
    {"content": "x\ud800"},
    {"content": "x", "ttl": True},
]


class RepeatingEmbedder:
    """The real embedder, remembering vectors of texts it has seen: the small vocabulary
    repeats often, and the property is about the engine, not embedding speed."""

    def __init__(self) -> None:
        self.inner = load_embedder()
        self.name, self.dim = self.inner.name, self.inner.dim
        self.documents: dict[str, np.ndarray] = {}

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        fresh = [t for t in dict.fromkeys(texts) if t not in self.documents]
        if fresh:
            self.documents.update(zip(fresh, self.inner.embed_documents(fresh), strict=True))
        return np.stack([self.documents[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


EMBEDDER: RepeatingEmbedder | None = None


def embedder() -> RepeatingEmbedder:
    global EMBEDDER
    EMBEDDER = EMBEDDER or RepeatingEmbedder()
    return EMBEDDER


@dataclass
class Live:
    account: str
    session: str | None
    content: str
    expires_at: float | None
    kind: str | None = None


class EngineMachine(RuleBasedStateMachine):
    ids = Bundle("ids")

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.clock = Clock()
        self.store = SQLiteStore.open_dir(self.dir.name)
        self.engine = MemoryEngine(self.store, embedder(), clock=self.clock)
        for account in ACCOUNTS:
            self.engine.ensure_account(account)
        self.live: dict[str, Live] = {}

    def teardown(self) -> None:
        self.store.close()
        self.dir.cleanup()

    # -- the model
    def _expire(self) -> None:
        now = self.clock()
        self.live = {
            mid: m for mid, m in self.live.items() if m.expires_at is None or m.expires_at > now
        }

    def _twin(self, account: str, session: str | None, content: str) -> str | None:
        return next(
            (
                mid
                for mid, m in self.live.items()
                if (m.account, m.session, m.content) == (account, session, content)
            ),
            None,
        )

    def _remember(self, account: str, items: list[dict]) -> list[str]:
        sent = [
            {**item, "metadata": {"kind": item["kind"]} if item.get("kind") else None}
            for item in items
        ]
        for item in sent:
            item.pop("kind", None)
        results = self.engine.remember_many(account, sent)
        out = []
        for item, result in zip(items, results, strict=True):
            twin = self._twin(account, item["session"], item["content"])
            assert result.deduplicated == (twin is not None)
            ttl, kind = item["ttl"], item.get("kind")
            expires_at = None if ttl is None else self.clock() + ttl
            if twin is not None:
                assert result.memory.id == twin
                # The newer request's ttl wins, and its metadata when it gives any.
                self.live[twin].expires_at = expires_at
                self.live[twin].kind = kind or self.live[twin].kind
            else:
                assert result.memory.id not in self.live
                self.live[result.memory.id] = Live(
                    account, item["session"], item["content"], expires_at, kind
                )
            out.append(result.memory.id)
        # The last answer for each memory shows what the batch left (the newest copy wins).
        for result in {r.memory.id: r for r in results}.values():
            assert result.memory.metadata.get("kind") == self.live[result.memory.id].kind
        return out

    # -- rules
    @rule(
        target=ids,
        account=st.sampled_from(ACCOUNTS),
        items=st.lists(
            st.fixed_dictionaries(
                {
                    "content": contents,
                    "session": st.sampled_from(SESSIONS),
                    "ttl": ttls,
                    "kind": kinds,
                }
            ),
            min_size=1,
            max_size=4,
        ),
    )
    def remember(self, account, items):
        return multiple(*self._remember(account, items))

    @rule(memory_id=consumes(ids), account=st.sampled_from(ACCOUNTS))
    def forget(self, memory_id, account):
        m = self.live.get(memory_id)
        if m is None or m.account != account:
            with pytest.raises(NotFoundError):
                self.engine.forget(account, memory_id)
        else:
            self.engine.forget(account, memory_id)
            del self.live[memory_id]

    @rule(memory_id=ids, account=st.sampled_from(ACCOUNTS), content=contents)
    def update(self, memory_id, account, content):
        m = self.live.get(memory_id)
        if m is None or m.account != account:
            with pytest.raises(NotFoundError):
                self.engine.update(account, memory_id, content=content)
            return
        twin = self._twin(account, m.session, content)
        if twin is not None and twin != memory_id:
            with pytest.raises(ConflictError):
                self.engine.update(account, memory_id, content=content)
            return
        assert self.engine.update(account, memory_id, content=content).content == content
        m.content = content

    @rule(account=st.sampled_from(ACCOUNTS), session=st.sampled_from(SESSIONS))
    def forget_session(self, account, session):
        doomed = [
            mid for mid, m in self.live.items() if (m.account, m.session) == (account, session)
        ]
        assert self.engine.forget_session(account, session) == len(doomed)
        for mid in doomed:
            del self.live[mid]

    @rule(seconds=st.sampled_from([1, 10, 60, 120]))
    def time_passes(self, seconds):
        self.clock.advance(seconds)
        self._expire()

    @rule(
        account=st.sampled_from(ACCOUNTS),
        query=contents,
        sessions=st.sampled_from([None, "s1", ["s1", "s2"], [None, "s2"], "*"]),
        limit=st.integers(1, 8),
    )
    def recall(self, account, query, sessions, limit):
        scope = (
            None if sessions == "*" else set(sessions) if isinstance(sessions, list) else {sessions}
        )
        eligible = {
            mid
            for mid, m in self.live.items()
            if m.account == account and (scope is None or m.session in scope)
        }
        # every version (collapse=False): exactly min(limit, eligible) memories
        found = self.engine.recall(account, query, sessions, limit, collapse=False)
        ids = [m.id for m in found]
        assert set(ids) <= eligible, "recall returned a forgotten, expired or foreign memory"
        assert len(ids) == len(set(ids)) == min(limit, len(eligible))
        scores = [m.score for m in found]
        assert all(0 <= s <= 1 for s in scores)
        assert scores == sorted(scores, reverse=True)
        for m in found:
            assert m.content == self.live[m.id].content
        # the default folds near-duplicates into one result, which names the others
        shown = self.engine.recall(account, query, sessions, limit)
        named = [m.id for m in shown] + [i for m in shown for i in m.similar_ids]
        assert set(named) <= eligible, "recall named a forgotten, expired or foreign memory"
        assert len(named) == len(set(named))
        assert all(m.similar == len(m.similar_ids) for m in shown)
        assert len(shown) <= min(limit, len(eligible)) <= len(named)
        shown_scores = [m.score for m in shown]
        assert shown_scores == sorted(shown_scores, reverse=True)

    @rule(
        account=st.sampled_from(ACCOUNTS),
        query=contents,
        kind=st.sampled_from(["docs", "chat"]),
        limit=st.integers(1, 8),
    )
    def recall_with_a_filter(self, account, query, kind, limit):
        found = self.engine.recall(
            account, query, "*", limit, filters={"kind": kind}, collapse=False
        )
        eligible = {mid for mid, m in self.live.items() if m.account == account and m.kind == kind}
        ids = [m.id for m in found]
        assert set(ids) <= eligible, "a filtered recall returned a memory outside the filter"
        assert len(ids) == len(set(ids)) == min(limit, len(eligible))

    @rule(account=st.sampled_from(ACCOUNTS), size=st.integers(1, 3))
    def page_through(self, account, size):
        seen, cursor = [], None
        while True:
            page = self.engine.list(account, "*", limit=size, cursor=cursor)
            seen += [m.id for m in page.memories]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert len(seen) == len(set(seen))
        assert set(seen) == {mid for mid, m in self.live.items() if m.account == account}
        if cursor is not None:
            other = next(a for a in ACCOUNTS if a != account)
            with pytest.raises(ValidationError):
                self.engine.list(other, "*", cursor=cursor)  # a cursor is its account's

    @rule(account=st.sampled_from(ACCOUNTS), item=st.sampled_from(HOSTILE))
    def hostile_remember(self, account, item):
        used = self.engine.usage(account).ops_used
        with pytest.raises(ValidationError):
            self.engine.remember_many(account, [item])
        assert self.engine.usage(account).ops_used == used

    # -- invariants
    @invariant()
    def listing_and_sessions_match_the_model(self):
        for account in ACCOUNTS:
            page = self.engine.list(account, "*", limit=1000)
            mine = {mid for mid, m in self.live.items() if m.account == account}
            assert {m.id for m in page.memories} == mine
            counts: dict[str | None, int] = {}
            for mid in mine:
                counts[self.live[mid].session] = counts.get(self.live[mid].session, 0) + 1
            assert {s.session: s.count for s in self.engine.sessions(account)} == counts


def _settings(examples: int, steps: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def test_engine_sequences_keep_their_invariants():
    EngineMachine.TestCase.settings = _settings(15, 20)
    EngineMachine.TestCase().runTest()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_many_more_engine_sequences_keep_their_invariants():
    EngineMachine.TestCase.settings = _settings(100, 30)
    EngineMachine.TestCase().runTest()
