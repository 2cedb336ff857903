"""The SQLite store's in-memory keyword index answers exactly what FTS5 would answer if
the account were alone in the store: FTS5's bm25, with the account's own statistics.

Each test opens two stores on one real SQLite file: ``fts`` runs the FTS5 query (the index
turned off) and ``indexed`` the in-memory BM25 index; writes come from a third store in
another process, as from another ``memstore serve`` worker. The reference answer is the
FTS5 query over a fresh file holding only the account's rows (``alone``).
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memstore.models import content_hash, new_memory_id
from memstore.stores.base import MemoryRow
from memstore.stores.keyword_index import Tokenizer
from memstore.stores.sqlite import SQLiteStore
from tests.crossproc import write_elsewhere

A, B = "acct_a", "acct_b"
NOW = 1_700_000_000.0
TEXTS = [
    "Caroline went to the LGBTQ support group yesterday",
    "Melanie painted a sunrise over the lake, the lake was calm",
    "support support support: the group met again at the café",
    "Cafe opening in Stockholm — naïve résumé of the plan",
    "🎉 party at the lake 🎉 with Caroline and Melanie",
    'quotes "inside" and (parens) OR AND NOT near:* -- the FTS5 syntax',
    "painting painted paints: the porter stemmer folds them",
    "snake_case and kebab-case words with under_scores",
    "kebab-case, kebab case and kebab-case again: a phrase three times",
    "Caroline",
    "the the the the",
    "🎉🎉🎉",
]
QUERIES = [
    ["caroline", "support", "group"],
    ["lake", "painted"],
    ["café", "cafe", "naive"],
    ["paint", "painting", "paints"],
    ["🎉", "party"],
    ["🎉"],
    ['"', "OR", "near", "*", "(", "--"],
    ["snake_case", "case"],
    ["kebab-case", "lake"],
    ["under", "scores"],
    ["the"],
    ["nothing", "matches", "this"],
    ["x" * 5000, "lake"],
    [f"w{i}" for i in range(32)] + ["caroline"],
]


def row(content: str, session: str = "s1", account: str = A, **kw: object) -> MemoryRow:
    return MemoryRow(
        id=new_memory_id(),
        account_id=account,
        session=session,
        content=content,
        content_hash=content_hash(content),
        created_at=NOW,
        updated_at=NOW,
        **kw,  # type: ignore[arg-type]
    )


def add(store: SQLiteStore, rows: list[MemoryRow]) -> list[MemoryRow]:
    vectors = np.ones((len(rows), 4), dtype=np.float32)
    return [r for r, _ in store.insert(rows, vectors)]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[SQLiteStore, SQLiteStore, str]]:
    path = str(tmp_path / "memstore.db")
    fts = SQLiteStore(path, keyword_index_max_rows=0)
    indexed = SQLiteStore(path)
    yield fts, indexed, path
    fts.close()
    indexed.close()


def alone(fts: SQLiteStore, account: str) -> SQLiteStore:
    """A store on a fresh file holding only ``account``'s rows (expired and superseded ones
    too, as FTS5 counts them), in seq order, searched by FTS5 alone."""
    got = fts._read(
        "SELECT id, session, content, content_hash, metadata, created_at, updated_at,"
        " expires_at FROM memories WHERE account_id = ? ORDER BY seq",
        (account,),
    )
    folder = Path(fts.path).parent / f"alone-{new_memory_id()}"
    folder.mkdir()
    store = SQLiteStore(folder / "memstore.db", keyword_index_max_rows=0)
    rows = [MemoryRow(r[0], account, r[1], r[2], r[3], json.loads(r[4]), *r[5:]) for r in got]
    for r in rows:  # one at a time: seqs keep their order
        store.insert([r], np.ones((1, 4), dtype=np.float32))
    return store


def assert_same(
    fts: SQLiteStore,
    indexed: SQLiteStore,
    account: str = A,
    sessions: list[str] | None = None,
    now: float = NOW,
    k: int = 100,
    filters: dict[str, object] | None = None,
) -> None:
    """The index gives the same ids, order and (bit for bit) scores for every query as FTS5
    over the account alone, and it answered every query itself."""
    reference = alone(fts, account)
    try:
        for terms in QUERIES:
            want = reference.keyword_search(account, sessions, terms, k, now, filters)
            got = indexed.keyword_search(account, sessions, terms, k, now, filters)
            assert got == want, terms
            allowed = indexed._allowed_seqs(account, sessions, filters)
            answered = indexed.indexed_keyword_search(account, sessions, terms, k, now, allowed)
            assert answered == want, terms
    finally:
        reference.close()


def test_same_results_as_fts5_on_hostile_text(stores):
    fts, indexed, _ = stores
    add(fts, [row(t) for t in TEXTS] + [row(t, session="s2") for t in TEXTS[:4]])
    for sessions in (None, ["s1"], ["s2"], ["s1", "s2"], ["nope"], []):
        for k in (1, 3, 100):
            assert_same(fts, indexed, sessions=sessions, k=k)


def test_exact_ties_come_in_seq_order_on_both_paths(stores):
    fts, indexed, _ = stores
    add(fts, [row("the lake was calm", session=f"s{i}") for i in range(30)])
    want = fts.keyword_search(A, None, ["lake"], 10, NOW, None)
    got = indexed.keyword_search(A, None, ["lake"], 10, NOW, None)
    assert got == want and len({s for _, s in got}) == 1
    seqs = {r.id: r.seq for r in fts.list_memories(A, None, 100, None, NOW)}
    assert [seqs[m] for m, _ in got] == sorted(seqs.values())[:10]


def test_index_follows_writes_of_another_process(stores):
    fts, indexed, path = stores
    kept = add(fts, [row(t) for t in TEXTS] + [row(t, session="s2") for t in TEXTS[:5]])
    assert_same(fts, indexed)  # builds the index
    steps: list[list[list[object]]] = [
        [["remember", A, "s1", "a new memory about the lake and Caroline", None]],
        [["update", A, kept[1].id, {"content": "Melanie now paints mountains, not the lake"}]],
        [["update", A, kept[2].id, {"expires_at": NOW + 10}]],  # same text, new expiry
        [["forget", A, kept[0].id]],
        [["forget_session", A, "s2"]],
        [["remember", A, "s3", f"support group note {i} at the lake", NOW + i] for i in range(20)],
        [["remember", B, "s1", "the lake the lake the lake support", None]],
    ]
    for ops in steps:
        write_elsewhere(path, ops)
        for now in (NOW, NOW + 5, NOW + 50):
            assert_same(fts, indexed, now=now)
            assert_same(fts, indexed, sessions=["s1", "s3"], now=now)


def test_index_rebuilds_after_many_writes(stores):
    fts, indexed, _ = stores
    add(fts, [row(t) for t in TEXTS])
    assert_same(fts, indexed)
    add(fts, [row(f"lake note {i} from Caroline") for i in range(1200)])
    assert_same(fts, indexed)
    assert indexed._kw_indexes[A][0]._added == 0  # rebuilt from the database


def test_another_tenants_words_never_move_an_accounts_ranking(stores):
    fts, indexed, _ = stores
    add(fts, [row("the lake"), row("a painted boat at sunrise over the hills")])
    add(fts, [row(f"nothing to see {i}") for i in range(8)])
    query = ["lake", "painted"]
    before = indexed.keyword_search(A, None, query, 100, NOW, None)
    # Alone, A's two words are equally rare and the shorter row comes first. B writes "lake"
    # many times: with whole-table statistics (FTS5's bm25) "lake" becomes common and A's
    # order flips, which would tell A which words B uses.
    theirs = add(fts, [row(f"the lake, again {i}", account=B) for i in range(50)])
    mine = indexed.keyword_search(A, None, query, 100, NOW, None)
    assert mine == before
    assert not {m for m, _ in mine} & {r.id for r in theirs}
    whole_table = fts.keyword_search(A, None, query, 100, NOW, None)
    assert [m for m, _ in whole_table] == [m for m, _ in reversed(before)]
    assert_same(fts, indexed)
    assert_same(fts, indexed, account=B)


def test_environment_variable_turns_the_index_off(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMSTORE_KEYWORD_INDEX_MAX_ROWS", "0")
    store = SQLiteStore(tmp_path / "memstore.db")
    add(store, [row(t) for t in TEXTS])
    assert store.indexed_keyword_search(A, None, ["lake"], 10, NOW) is None
    assert store.keyword_search(A, None, ["lake"], 10, NOW, None)
    store.close()


def test_metadata_filters_go_through_the_index(stores):
    fts, indexed, _ = stores
    add(fts, [row(t, metadata={"n": i % 2}) for i, t in enumerate(TEXTS)])
    add(fts, [row(t, account=B, metadata={"n": 1}) for t in TEXTS])
    for filters in ({"n": 1}, {"n": 0}, {"n": 2}, {"n": 1, "m": None}):
        for sessions in (None, ["s1"], ["nope"]):
            assert_same(fts, indexed, sessions=sessions, filters=filters)


def test_the_size_cap_uses_fts5(tmp_path):
    path = str(tmp_path / "memstore.db")
    capped = SQLiteStore(path, keyword_index_max_rows=5)
    fts = SQLiteStore(path, keyword_index_max_rows=0)
    add(fts, [row(t, metadata={"n": i % 2}) for i, t in enumerate(TEXTS)])
    assert capped.indexed_keyword_search(A, None, ["lake"], 10, NOW) is None
    assert capped.keyword_search(A, None, ["lake"], 10, NOW, None) == fts.keyword_search(
        A, None, ["lake"], 10, NOW, None
    )
    for store in (capped, fts):
        found = store.keyword_search(A, None, ["lake"], 10, NOW, {"n": 1})
        assert {m for m, _ in found} == {
            r.id
            for r in store.list_memories(A, None, 100, None, NOW)
            if "lake" in r.content.lower() and r.metadata == {"n": 1}
        }
    capped.close()
    fts.close()


def test_closing_the_tokenizer_during_a_search_raises_not_crashes():
    # recall searches keywords on a thread beside the embedding; when the embedding fails
    # that search may still be tokenising while the store closes
    tok = Tokenizer("porter unicode61 remove_diacritics 2")
    errors: list[BaseException] = []

    def search() -> None:
        try:
            for i in range(1_000_000):
                tok.query(f"term{i}")
        except sqlite3.ProgrammingError as exc:  # "Cannot operate on a closed database."
            errors.append(exc)

    worker = threading.Thread(target=search)
    worker.start()
    time.sleep(0.2)
    tok.close()
    worker.join(10)
    assert not worker.is_alive() and len(errors) == 1


def test_a_phrase_counts_its_newest_rows_only(stores, monkeypatch):
    # a query word FTS5 splits into several tokens is matched by FTS5 and its rows are
    # tokenised again: bounded to the newest PHRASE_ROWS, so no query can make it read them all
    import memstore.stores.sqlite_keywords as sqlite_keywords

    monkeypatch.setattr(sqlite_keywords, "PHRASE_ROWS", 3)
    fts, indexed, _ = stores
    rows = add(fts, [row(f"kebab-case note {i}") for i in range(5)])
    found = indexed.keyword_search(A, None, ["kebab-case"], 10, NOW, None)
    assert {m for m, _ in found} == {r.id for r in rows[2:]}


WORDS = ["lake", "lake-side", "side", "e-mail", "mail", "3.5", "3", "la-la", "la", "café",
         "cafe", "the", "snake_case", "case", "🎉", "O'Neil", "x_y_z", "y"]  # fmt: skip


@given(
    texts=st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8), max_size=12),
    theirs=st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8), max_size=6),
    # any text but NUL, which recall's validation refuses before a store sees it
    terms=st.lists(
        st.sampled_from(WORDS)
        | st.text(
            st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=6
        ),
        min_size=1,
        max_size=5,
    ),
    filtered=st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_any_text_and_query_score_as_fts5_over_the_account_alone(
    texts: list[list[str]], theirs: list[list[str]], terms: list[str], filtered: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "memstore.db")
        fts, indexed = SQLiteStore(path, keyword_index_max_rows=0), SQLiteStore(path)
        try:
            add(fts, [row(" ".join(t), metadata={"n": i % 2}) for i, t in enumerate(texts)])
            add(fts, [row(" ".join(t), account=B) for t in theirs])
            filters = {"n": 1} if filtered else None
            reference = alone(fts, A)
            try:
                want = reference.keyword_search(A, None, terms, 100, NOW, filters)
            finally:
                reference.close()
            assert indexed.keyword_search(A, None, terms, 100, NOW, filters) == want
        finally:
            fts.close()
            indexed.close()
