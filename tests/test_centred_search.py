"""The centred query's shortlist from the plain query's pass (VectorIndex.search_centred)
answers exactly what two searches do: same ids, same order, same scores, on the float32 scan
and on the int8 codes, through writes that move the sessions' means."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memstore.models import content_hash
from memstore.ranking import centred_query
from memstore.stores import vector_codes
from memstore.stores.base import MemoryRow
from memstore.stores.sqlite import SQLiteStore
from memstore.stores.vector_index import VectorIndex

DIM = 48
NOW = 1_700_000_000.0
SESSIONS = ["s1", "s2", "s3"]
CODES = [0] + ([1] if vector_codes.available() else [])  # codes_min_rows: 0 = never coded


def clustered(n: int, seed: int, length: float = 1.0) -> np.ndarray:
    """Vectors sharing one large direction (as e5's do), in clusters, with exact duplicates."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 20), DIM)).astype(np.float32) + 3.0
    vectors = centres[rng.integers(0, len(centres), n)]
    vectors = vectors + 0.3 * rng.standard_normal((n, DIM)).astype(np.float32)
    vectors[n // 2 : n // 2 + n // 10] = vectors[: n // 10]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors * np.float32(length)).astype(np.float32)


def both(index: VectorIndex, q: np.ndarray, centred: np.ndarray, shift: np.ndarray, *args):
    return index.search_centred(q, centred, shift, *args), (
        index.search(q, *args),
        index.search(centred, *args),
    )


@pytest.mark.parametrize("codes_min_rows", CODES)
@pytest.mark.parametrize("length", [1.0, 7.0])
def test_search_centred_answers_as_two_searches_through_writes(codes_min_rows, length):
    index = VectorIndex(DIM, codes_min_rows=codes_min_rows)
    for seq, vector in enumerate(clustered(2000, seed=1, length=length), start=1):
        expires = NOW + (seq % 7 - 3) if seq % 5 == 0 else None  # some already expired
        index.upsert(seq, f"m{seq}", SESSIONS[seq % 3], vector, expires)
    rng = np.random.default_rng(2)
    for step in range(3):
        for q in clustered(12, seed=10 + step, length=length):
            for scope in (None, ["s1"], ["s2", "s3"], SESSIONS):
                mean = index.session_mean(scope)
                assert mean is not None
                centred = centred_query(q, mean)
                assert centred is not None
                for k in (1, 10, 100):
                    got, expected = both(index, q, centred, mean, k, NOW, scope)
                    assert got == expected
            # a shift that writes do not move: its cached dot products must still follow
            fixed = clustered(1, seed=99, length=length)[0]
            centred = centred_query(q, fixed)
            got, expected = both(index, q, centred, fixed, 30, NOW, ["s2", "s3"])
            assert got == expected
            allowed = rng.choice(np.arange(1, 2001), size=500, replace=False)
            mean = index.session_mean(None)
            centred = centred_query(q, mean)
            got, expected = both(index, q, centred, mean, 50, NOW, None, allowed)
            assert got == expected
        assert (index._codes is not None) == bool(codes_min_rows)  # the path meant ran
        # writes move the means and the rows: the cached dot products must follow
        for seq in rng.choice(np.arange(1, 2001), size=150, replace=False).tolist():
            index.remove(seq)
        for seq in rng.choice(np.arange(1, 2001), size=100, replace=False).tolist():
            index.upsert(seq, f"m{seq}", "s1", clustered(1, seed=seq, length=length)[0], None)


@pytest.mark.parametrize("codes_min_rows", CODES)
def test_any_centred_vector_and_shift_still_give_exact_answers(codes_min_rows):
    # the shift is a hint: a centred vector that is not normalise(q - shift) only widens
    # the shortlist; a shift equal to the query leaves nothing to bound with
    index = VectorIndex(DIM, codes_min_rows=codes_min_rows)
    vectors = clustered(1500, seed=4)
    for seq, vector in enumerate(vectors, start=1):
        index.upsert(seq, f"m{seq}", SESSIONS[seq % 3], vector, None)
    q, other, shift = clustered(3, seed=5)
    for centred, hint in ((other, shift), (q, q), (other, np.zeros(DIM, np.float32))):
        got, expected = both(index, q, centred, hint, 20, NOW, ["s1", "s2"])
        assert got == expected
    zero = np.zeros(DIM, np.float32)  # no int8 bound for a zero query: every row is scored
    got, expected = both(index, zero, other, shift, 20, NOW, None)
    assert got == expected
    assert index.search_centred(q, other, shift, 0, NOW, None) == ([], [])
    assert index.search_centred(q, other, shift, 5, NOW, ["none"]) == ([], [])


def test_store_passes_the_shift_and_answers_as_two_searches(tmp_path: Path):
    store = SQLiteStore.open_dir(tmp_path)
    store.set_embedder_info("test-vectors", DIM)
    vectors = clustered(600, seed=6)
    rows = [
        MemoryRow(
            f"m{i}", "acct", SESSIONS[i % 3], f"text {i}", content_hash(f"text {i}"),
            {"kind": "even" if i % 2 == 0 else "odd"}, NOW, NOW,
        )
        for i in range(len(vectors))
    ]  # fmt: skip
    store.insert(rows, vectors)
    q = clustered(1, seed=7)[0]
    for sessions, filters in ((["s1"], None), (None, {"kind": "even"}), (["s2", "s3"], None)):
        mean = store.session_mean("acct", sessions, NOW)
        assert mean is not None
        centred = centred_query(q, mean)
        assert centred is not None
        many = store.dense_search_many("acct", sessions, [q, centred], 30, NOW, filters, mean)
        assert many == [
            store.dense_search("acct", sessions, v, 30, NOW, filters) for v in (q, centred)
        ]
    store.close()
