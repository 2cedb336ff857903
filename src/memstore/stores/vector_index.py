"""An exact in-memory vector index (numpy) for one account, kept in step with SQLite.

Brute force over float32 rows is exact at every session selectivity and takes about
3 ms for 100k x 384 on two cores. A search over sessions that hold every row skips all
masks and gathers; a search over a smaller session scores only that session's rows, whose
positions are cached until the next write (per-session pre-slicing).
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
        self._row_of: dict[str, int] = {}  # memory id -> row
        self._session_codes: dict[str, int] = {}
        self._counts: dict[int, int] = {}  # rows per session code
        self._expiring = 0  # rows with an expiry time; when 0, searches skip the expiry mask
        self._session_rows: dict[tuple[int, ...], np.ndarray] = {}
        self._sums: dict[int, np.ndarray] = {}  # float64 sum of the vectors per session code
        self._total = np.zeros(dim)  # and of all rows
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
            self._session_rows.clear()
            i = self._pos.get(seq)
            if i is None:
                self._grow(self.n + 1)
                i = self.n
                self.n += 1
                self._pos[seq] = i
                self._ids.append(memory_id)
            else:
                self._row_of.pop(self._ids[i], None)
                self._ids[i] = memory_id
                self._forget_row_stats(i)
            self._row_of[memory_id] = i
            code = self._code(session)
            self._vectors[i] = vector
            self._seqs[i] = seq
            self._sessions[i] = code
            self._expires[i] = np.inf if expires_at is None else expires_at
            self._counts[code] = self._counts.get(code, 0) + 1
            self._expiring += expires_at is not None
            if code not in self._sums:
                self._sums[code] = np.zeros(self.dim)
            self._sums[code] += self._vectors[i]
            self._total += self._vectors[i]

    def _forget_row_stats(self, i: int) -> None:
        code = int(self._sessions[i])
        self._counts[code] -= 1
        self._expiring -= bool(np.isfinite(self._expires[i]))
        self._total -= self._vectors[i]
        if self._counts[code]:
            self._sums[code] -= self._vectors[i]
        else:  # no rounding residue left behind in an emptied session
            self._sums[code][:] = 0.0

    def remove(self, seq: int) -> None:
        with self.lock:
            i = self._pos.pop(seq, None)
            if i is None:
                return
            self._session_rows.clear()
            self._forget_row_stats(i)
            self._row_of.pop(self._ids[i], None)
            last = self.n - 1
            if i != last:
                self._vectors[i] = self._vectors[last]
                self._seqs[i] = self._seqs[last]
                self._sessions[i] = self._sessions[last]
                self._expires[i] = self._expires[last]
                self._ids[i] = self._ids[last]
                self._pos[int(self._seqs[i])] = i
                self._row_of[self._ids[i]] = i
            self._ids.pop()
            self.n = last

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """The vectors of those ``ids`` the index holds (copies: rows move on writes)."""
        with self.lock:
            found = [(mid, i) for mid in ids if (i := self._row_of.get(mid)) is not None]
            if not found:
                return {}
            block = self._vectors[[i for _, i in found]]
        return {mid: block[j] for j, (mid, _) in enumerate(found)}

    def session_mean(self, sessions: list[str] | None = None) -> np.ndarray | None:
        """The mean vector of the rows of ``sessions`` (all when None), from running sums:
        O(dim) per session, never a scan. Rows that expired but are still held count too.
        None when those sessions hold no row."""
        with self.lock:
            if sessions is None:
                return np.asarray(self._total / self.n, dtype=np.float32) if self.n else None
            codes = [c for s in set(sessions) if (c := self._session_codes.get(s)) is not None]
            count = sum(self._counts.get(c, 0) for c in codes)
            if not count:
                return None
            total = np.sum([self._sums[c] for c in codes if self._counts.get(c)], axis=0)
            return np.asarray(total / count, dtype=np.float32)

    def _rows_of(self, codes: tuple[int, ...]) -> np.ndarray:
        """Row positions of the given sessions, cached until the next write."""
        rows = self._session_rows.get(codes)
        if rows is None:
            if len(self._session_rows) >= 256:
                self._session_rows.clear()
            if len(codes) == 1:
                rows = np.flatnonzero(self._sessions[: self.n] == codes[0])
            else:
                wanted = np.zeros(len(self._session_codes), dtype=bool)
                wanted[list(codes)] = True
                rows = np.flatnonzero(wanted[self._sessions[: self.n]])
            self._session_rows[codes] = rows
        return rows

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
            rows: np.ndarray | None = None  # None: every row, so no gather and no masks
            if sessions is not None:
                codes = tuple(
                    sorted({self._session_codes[s] for s in sessions if s in self._session_codes})
                )
                if not codes:
                    return []
                if sum(self._counts.get(c, 0) for c in codes) < n:
                    rows = self._rows_of(codes)
            if self._expiring:
                live = self._expires[:n] > now
                rows = np.flatnonzero(live) if rows is None else rows[live[rows]]
            if allowed_seqs is not None:
                seqs = self._seqs[:n] if rows is None else self._seqs[rows]
                keep = np.isin(seqs, allowed_seqs)
                rows = np.flatnonzero(keep) if rows is None else rows[keep]
            if rows is None:
                scores = self._vectors[:n] @ vector
            elif rows.size == 0:
                return []
            elif rows.size * 3 < n:
                scores = self._vectors[rows] @ vector
            else:
                scores = (self._vectors[:n] @ vector)[rows]
            top = min(k, scores.size)
            best = np.argpartition(-scores, top - 1)[:top]
            best = best[np.argsort(-scores[best], kind="stable")]
            where = best if rows is None else rows[best]
            return [(self._ids[i], float(scores[j])) for i, j in zip(where, best, strict=True)]
