"""An exact in-memory vector index (numpy) for one account, kept in step with SQLite.

Brute force over float32 rows is exact at every session selectivity and takes about
3 ms for 100k x 384 on two cores; restricting to a small session first is faster still.
"""

from __future__ import annotations

import threading

import numpy as np


class VectorIndex:
    """Rows of (seq, id, session, expires_at, vector) with exact top-k cosine search."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self._cap = 0
        self._vectors = np.empty((0, dim), dtype=np.float32)
        self._seqs = np.empty(0, dtype=np.int64)
        self._sessions = np.empty(0, dtype=np.int32)
        self._expires = np.empty(0, dtype=np.float64)
        self._ids: list[str] = []
        self._pos: dict[int, int] = {}
        self._session_codes: dict[str, int] = {}
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return self.n

    def _grow(self, need: int) -> None:
        if need <= self._cap:
            return
        cap = max(need, self._cap * 2, 1024)
        vectors = np.empty((cap, self.dim), dtype=np.float32)
        vectors[: self.n] = self._vectors[: self.n]
        self._vectors = vectors
        for name, dtype in (("_seqs", np.int64), ("_sessions", np.int32), ("_expires", np.float64)):
            arr = np.empty(cap, dtype=dtype)
            arr[: self.n] = getattr(self, name)[: self.n]
            setattr(self, name, arr)
        self._cap = cap

    def _code(self, session: str) -> int:
        code = self._session_codes.get(session)
        if code is None:
            code = self._session_codes[session] = len(self._session_codes)
        return code

    def upsert(
        self, seq: int, memory_id: str, session: str, vector: np.ndarray, expires_at: float | None
    ) -> None:
        with self.lock:
            i = self._pos.get(seq)
            if i is None:
                self._grow(self.n + 1)
                i = self.n
                self.n += 1
                self._pos[seq] = i
                self._ids.append(memory_id)
            else:
                self._ids[i] = memory_id
            self._vectors[i] = vector
            self._seqs[i] = seq
            self._sessions[i] = self._code(session)
            self._expires[i] = np.inf if expires_at is None else expires_at

    def remove(self, seq: int) -> None:
        with self.lock:
            i = self._pos.pop(seq, None)
            if i is None:
                return
            last = self.n - 1
            if i != last:
                self._vectors[i] = self._vectors[last]
                self._seqs[i] = self._seqs[last]
                self._sessions[i] = self._sessions[last]
                self._expires[i] = self._expires[last]
                self._ids[i] = self._ids[last]
                self._pos[int(self._seqs[i])] = i
            self._ids.pop()
            self.n = last

    def search(
        self,
        vector: np.ndarray,
        k: int,
        now: float,
        sessions: list[str] | None = None,
        allowed_seqs: np.ndarray | None = None,
    ) -> list[tuple[str, float]]:
        """Top ``k`` (id, cosine) among live rows of ``sessions`` (all when None)."""
        with self.lock:
            n = self.n
            if n == 0 or k <= 0:
                return []
            mask = self._expires[:n] > now
            if sessions is not None:
                codes = [self._session_codes[s] for s in sessions if s in self._session_codes]
                if not codes:
                    return []
                mask &= np.isin(self._sessions[:n], codes)
            if allowed_seqs is not None:
                mask &= np.isin(self._seqs[:n], allowed_seqs)
            rows = np.flatnonzero(mask)
            if rows.size == 0:
                return []
            if rows.size * 3 < n:
                scores = self._vectors[rows] @ vector
            else:
                scores = (self._vectors[:n] @ vector)[rows]
            top = min(k, rows.size)
            best = np.argpartition(-scores, top - 1)[:top]
            best = best[np.argsort(-scores[best], kind="stable")]
            return [(self._ids[rows[j]], float(scores[j])) for j in best]
