"""Store-level behaviour every backend must share (the engine suite covers the rest)."""

from __future__ import annotations

import numpy as np
import pytest

from memstore.engine import content_hash, new_memory_id
from memstore.stores.base import MemoryRow

A = "acct_a"
DIM = 8
NOW = 1_700_000_000.0


def make_row(content: str, session: str = "", metadata: dict | None = None, **kw) -> MemoryRow:
    return MemoryRow(
        id=new_memory_id(),
        account_id=A,
        session=session,
        content=content,
        content_hash=content_hash(content),
        metadata=metadata or {},
        created_at=NOW,
        updated_at=NOW,
        **kw,
    )


@pytest.fixture
def filled(store):
    store.set_embedder_info("test-embedder", DIM)
    store.create_account(A, A, "unlimited", NOW)
    values = {"int": 1, "float": 1.0, "true": True, "str": "1", "null": None, "big": 2}
    rows = [make_row(f"value kind {name}", metadata={"v": v}) for name, v in values.items()]
    rows.append(make_row("no value at all"))
    vectors = np.eye(len(rows), DIM, dtype=np.float32)
    store.insert(rows, vectors)
    return store


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, {"value kind int"}),
        (1.0, {"value kind float"}),
        (True, {"value kind true"}),
        ("1", {"value kind str"}),
        (None, {"value kind null"}),
        (2, {"value kind big"}),
        (3, set()),
    ],
)
def test_metadata_filters_match_only_the_same_json_type(filled, value, expected):
    query = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    found = filled.dense_search(A, None, query, 20, NOW, {"v": value})
    rows = filled.get_many(A, [mid for mid, _ in found], NOW)
    assert {r.content for r in rows.values()} == expected


@pytest.mark.parametrize(
    "term", ["'", "a'b", "&", "|", "!", "(", "foo:*", "<->", "\\", "kind:A", '"', "--"]
)
def test_keyword_search_treats_terms_as_words_not_query_syntax(filled, term):
    found = filled.keyword_search(A, None, [term, "kind"], 10, NOW, None)
    assert len(found) == 6 and all(score > 0 for _, score in found)


def test_keyword_search_ors_the_terms(filled):
    found = filled.keyword_search(A, None, ["float", "null"], 10, NOW, None)
    rows = filled.get_many(A, [mid for mid, _ in found], NOW)
    assert {r.content for r in rows.values()} == {"value kind float", "value kind null"}


def test_dense_search_scores_are_cosine_similarities_best_first(filled):
    query = np.zeros(DIM, dtype=np.float32)
    query[2] = 1.0
    found = filled.dense_search(A, None, query, 3, NOW, None)
    assert found[0][1] == pytest.approx(1.0, abs=1e-6)
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
