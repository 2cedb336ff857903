"""The in-memory vector index returns exactly what brute force over its live rows returns."""

from __future__ import annotations

import numpy as np
import pytest

from memstore.stores.vector_index import VectorIndex

SESSIONS = ["", "a", "b", "c"]


def brute_force(rows: dict[int, tuple], vector, k, now, sessions, allowed):
    scored = [
        (memory_id, float(vec @ vector))
        for seq, (memory_id, session, vec, expires) in rows.items()
        if (expires is None or expires > now)
        and (sessions is None or session in sessions)
        and (allowed is None or seq in allowed)
    ]
    return sorted(scored, key=lambda x: -x[1])[:k]


@pytest.mark.parametrize("seed", range(6))
def test_search_matches_brute_force_through_writes(seed):
    rng = np.random.default_rng(seed)
    index, rows = VectorIndex(8), {}
    for step in range(400):
        seq = int(rng.integers(0, 150))
        if rng.random() < 0.25:
            index.remove(seq)
            rows.pop(seq, None)
        else:
            vec = rng.standard_normal(8).astype(np.float32)
            session = SESSIONS[int(rng.integers(0, 4))] if seed % 2 else "a"
            expires = float(rng.integers(0, 20)) if rng.random() < 0.2 * (seed % 3) else None
            index.upsert(seq, f"m{seq}-{step}", session, vec, expires)
            rows[seq] = (f"m{seq}-{step}", session, vec, expires)
        if step % 20 == 0:
            query = rng.standard_normal(8).astype(np.float32)
            for sessions in (None, ["a"], ["a", "c"], ["zzz"], ["", "b", "a", "c"]):
                for allowed in (None, np.arange(0, 150, 3)):
                    got = index.search(query, 7, 10.0, sessions, allowed)
                    want = brute_force(rows, query, 7, 10.0, sessions, allowed)
                    assert [m for m, _ in got] == [m for m, _ in want]
                    assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_vectors_by_id_match_the_live_rows_through_writes(seed):
    rng = np.random.default_rng(seed)
    index, rows = VectorIndex(8), {}
    asked: set[str] = set()
    for step in range(300):
        seq = int(rng.integers(0, 60))
        if rng.random() < 0.3:
            index.remove(seq)
            rows.pop(seq, None)
        else:
            vec = rng.standard_normal(8).astype(np.float32)
            index.upsert(seq, f"m{seq}-{step}", "a", vec, None)
            rows[seq] = (f"m{seq}-{step}", vec)
            asked.add(f"m{seq}-{step}")
        if step % 10 == 0:
            live = {memory_id: vec for memory_id, vec in rows.values()}
            got = index.vectors(sorted(asked))
            assert got.keys() == live.keys()
            assert all(np.array_equal(got[m], live[m]) for m in live)
