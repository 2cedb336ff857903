"""An exact in-memory vector index (numpy) for one account, kept in step with SQLite.

Brute force over float32 rows is exact at every session selectivity and takes about
8 ms for 100k x 384 (memory-bound). From ``codes_min_rows`` rows on, when ``simsimd`` is
installed, a first pass over int8 codes shortlists the rows that can be in the top k and
only those are scored in float32 (vector_codes.py): the same answer, ~4x less memory read.
A search over sessions that hold every row skips all masks and gathers; a search over a
smaller session scores only that session's rows, whose positions are cached until the
next write (per-session pre-slicing). Scores are the row-wise float64 sums of
``vector_codes.exact_top``; ties go to the older row (lower seq).
"""

from __future__ import annotations

import threading

import numpy as np

from memstore.stores import vector_codes
from memstore.stores.session_order import SessionOrder
from memstore.stores.vector_codes import TIE_MARGIN, Int8Codes, exact_top


class VectorIndex:
    """Rows of (seq, id, session, expires_at, vector) with exact top-k cosine search."""

    def __init__(self, dim: int, codes_min_rows: int = vector_codes.MIN_ROWS) -> None:
        self.dim = dim
        self.codes_min_rows = codes_min_rows  # <= 0: never code (always the float32 scan)
        self._codes: Int8Codes | None = None  # built on the first search past codes_min_rows
        self._max_norm2 = 0.0  # the largest |vector|^2 stored (float rounding margins)
        self.n = 0
        self._cap = 0
        self._vectors = np.empty((0, dim), dtype=np.float32)
        self._seqs = np.empty(0, dtype=np.int64)
        self._sessions = np.empty(0, dtype=np.int32)
        self._expires = np.empty(0, dtype=np.float64)
        self._created = np.empty(0, dtype=np.float64)  # created_at, for neighbors()
        self._order = SessionOrder()
        self._ids: list[str] = []
        self._pos: dict[int, int] = {}
        self._row_of: dict[str, int] = {}  # memory id -> row
        self._session_codes: dict[str, int] = {}
        self._counts: dict[int, int] = {}  # rows per session code
        self._expiring = 0  # rows with an expiry time; when 0, searches skip the expiry mask
        self._session_rows: dict[tuple[int, ...], np.ndarray] = {}
        # (sessions, shift) -> (their rows or None for all, each row . shift): search_centred
        self._dots: dict[tuple[tuple[str, ...] | None, bytes], tuple[np.ndarray | None, np.ndarray]]
        self._dots = {}
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
        for name, dtype in (
            ("_seqs", np.int64),
            ("_sessions", np.int32),
            ("_expires", np.float64),
            ("_created", np.float64),
        ):
            arr = np.empty(cap, dtype=dtype)
            arr[: self.n] = getattr(self, name)[: self.n]
            setattr(self, name, arr)
        if self._codes is not None:
            self._codes.grow(cap, self.n)
        self._cap = cap

    def _code(self, session: str) -> int:
        code = self._session_codes.get(session)
        if code is None:
            code = self._session_codes[session] = len(self._session_codes)
        return code

    def upsert(
        self,
        seq: int,
        memory_id: str,
        session: str,
        vector: np.ndarray,
        expires_at: float | None,
        created_at: float = 0.0,
    ) -> None:
        with self.lock:
            self._session_rows.clear()
            self._dots.clear()
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
                self._order.discard(int(self._sessions[i]), seq)
            self._row_of[memory_id] = i
            code = self._code(session)
            self._order.add(code, seq)
            self._created[i] = created_at
            self._vectors[i] = vector
            self._max_norm2 = max(self._max_norm2, float(self._vectors[i] @ self._vectors[i]))
            if self._codes is not None:
                self._codes.set(i, self._vectors[i])
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
            self._dots.clear()
            self._forget_row_stats(i)
            self._order.discard(int(self._sessions[i]), seq)
            self._row_of.pop(self._ids[i], None)
            last = self.n - 1
            if i != last:
                self._vectors[i] = self._vectors[last]
                if self._codes is not None:
                    self._codes.move(last, i)
                self._seqs[i] = self._seqs[last]
                self._sessions[i] = self._sessions[last]
                self._expires[i] = self._expires[last]
                self._created[i] = self._created[last]
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

    def session_mean(
        self, sessions: list[str] | None = None, max_rows: int | None = None
    ) -> np.ndarray | None:
        """The mean vector of the rows of ``sessions`` (all when None), from running sums:
        O(dim) per session, never a scan. Rows that expired but are still held count too.
        None when those sessions hold no row, or more than ``max_rows``."""
        with self.lock:
            if sessions is None:
                if not self.n or (max_rows is not None and self.n > max_rows):
                    return None
                return np.asarray(self._total / self.n, dtype=np.float32)
            codes = [c for s in set(sessions) if (c := self._session_codes.get(s)) is not None]
            count = sum(self._counts.get(c, 0) for c in codes)
            if not count or (max_rows is not None and count > max_rows):
                return None
            total = np.sum([self._sums[c] for c in codes if self._counts.get(c)], axis=0)
            return np.asarray(total / count, dtype=np.float32)

    def neighbors(
        self, ids: list[str], radius: int, window: float, now: float
    ) -> dict[str, dict[int, str]]:
        """``Store.neighbors`` without filters, from memory: id -> {offset: id} of the live
        rows stored just before (-1, -2...) and after (1, 2...) each of ``ids`` in its
        session, each side stopping at the first created more than ``window`` seconds away."""
        with self.lock:
            pos, expires, created, row_ids = self._pos, self._expires, self._created, self._ids

            def expiring(seq: int) -> bool:
                return bool(expires[pos[seq]] > now)

            live = expiring if self._expiring else None
            found = [(mid, i) for mid in ids if (i := self._row_of.get(mid)) is not None]
            rows = [i for _, i in found]
            around = self._order.around
            sides = [
                around(session, seq, radius, live)
                for session, seq in zip(
                    self._sessions[rows].tolist(), self._seqs[rows].tolist(), strict=True
                )
            ]
            # every neighbour's row and time in one gather, then the walks over lists
            near = [pos[seq] for before, after in sides for seq in (*before, *after)]
            times = created[near].tolist()
            out: dict[str, dict[int, str]] = {}
            k = 0
            for (memory_id, _), at, (before, after) in zip(
                found, created[rows].tolist(), sides, strict=True
            ):
                offsets: dict[int, str] = {}
                for side, seqs in ((-1, before), (1, after)):
                    for step in range(1, len(seqs) + 1):
                        if abs(times[k + step - 1] - at) > window:
                            break
                        offsets[side * step] = row_ids[near[k + step - 1]]
                    k += len(seqs)
                if offsets:
                    out[memory_id] = offsets
            return out

    def _rows_of(self, codes: tuple[int, ...]) -> np.ndarray:
        """Row positions of the given sessions, cached until the next write."""
        rows = self._session_rows.get(codes)
        if rows is None:
            if len(self._session_rows) >= 256:
                self._session_rows.clear()
            self._dots.clear()
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
            if k <= 0 or (rows := self._scope(now, sessions, allowed_seqs)) is _NONE:
                return []
            coded = self._coded()
            if coded is not None:
                near = coded.shortlist(vector, k, self.n, rows)
            else:
                near = self._near(self._scan(vector, rows), k, rows, _scan_error(self, vector))
            return self._top(near, vector, k)

    def search_centred(
        self,
        vector: np.ndarray,
        centred: np.ndarray,
        shift: np.ndarray,
        k: int,
        now: float,
        sessions: list[str] | None = None,
        allowed_seqs: np.ndarray | None = None,
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """``search`` of ``vector`` and of ``centred`` (recall's centred query, about
        normalise(vector - shift)) from one pass over the scope: since
        x . centred = (x . vector - x . shift) / |vector - shift| + x . delta, the centred
        query's shortlist comes from the plain pass and each row's dot product with
        ``shift`` (one scan, cached until the next write), widened by the bound of each
        term. The answers are exactly those of two ``search`` calls."""
        with self.lock:
            if k <= 0 or (rows := self._scope(now, sessions, allowed_seqs)) is _NONE:
                return [], []
            coded, dots = self._coded(), self._shift_dots(shift, sessions, rows)
            q64, s64 = np.asarray(vector, np.float64), np.asarray(shift, np.float64)
            size, s_norm = float(np.sqrt(self._max_norm2)), float(np.linalg.norm(s64))
            gap = float(np.linalg.norm(q64 - s64))
            # |x . delta| <= |x| |delta|: what centred's rounding (or any other difference
            # from the exact centred direction) can move a score, times the gap
            margin = np.inf  # no bound when vector and shift (nearly) coincide: score all
            if gap > 1e-6:
                exact = (q64 - s64) / gap
                delta = float(np.linalg.norm(np.asarray(centred, np.float64) - exact))
                shift_error = float(TIE_MARGIN) * max(1.0, s_norm * size)  # of the dots' scan
                rounding = 1e-5 * max(1.0, (float(np.linalg.norm(q64)) + s_norm) * size)
                margin = (2 * gap * size * delta + 2 * shift_error + rounding) * _WIDEN
            if coded is not None:
                found = coded.bounds(vector, self.n, rows)
                if found is None:
                    near = near_centred = _every(self.n, rows)
                else:
                    lower, upper = found[0] - found[1], found[0] + found[1]
                    near = _above(lower, upper, k, rows)
                    near_centred = _above(lower - dots, upper - dots, k, rows, margin)
            else:
                scores = self._scan(vector, rows)
                error = _scan_error(self, vector)
                near = self._near(scores, k, rows, error)
                near_centred = self._near(scores - dots, k, rows, 2 * error + margin)
            return self._top(near, vector, k), self._top(near_centred, centred, k)

    def _scope(
        self, now: float, sessions: list[str] | None, allowed_seqs: np.ndarray | None
    ) -> np.ndarray | None:
        """Positions of the live rows of ``sessions`` that ``allowed_seqs`` lets through:
        None for every row (no gather, no masks), _NONE for no row."""
        n = self.n
        rows = self._session_scope(sessions)
        if rows is _NONE:
            return _NONE
        if self._expiring:
            live = self._expires[:n] > now
            rows = np.flatnonzero(live) if rows is None else rows[live[rows]]
        if allowed_seqs is not None:
            seqs = self._seqs[:n] if rows is None else self._seqs[rows]
            keep = np.isin(seqs, allowed_seqs)
            rows = np.flatnonzero(keep) if rows is None else rows[keep]
        if rows is not None and rows.size == 0:
            return _NONE
        return rows

    def _session_scope(self, sessions: list[str] | None) -> np.ndarray | None:
        """Positions of the rows of ``sessions``, expired ones too: None for every row,
        _NONE for no row."""
        if self.n == 0:
            return _NONE
        if sessions is None:
            return None
        codes = tuple(
            sorted({self._session_codes[s] for s in sessions if s in self._session_codes})
        )
        if not codes:
            return _NONE
        if sum(self._counts.get(c, 0) for c in codes) < self.n:
            return self._rows_of(codes)
        return None

    def _scan(self, vector: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """float32 BLAS scores of ``rows`` (every row when None), in their order."""
        n = self.n
        scores: np.ndarray
        if rows is None:
            scores = self._vectors[:n] @ vector
        elif rows.size * 3 < n:
            scores = self._vectors[rows] @ vector
        else:
            scores = (self._vectors[:n] @ vector)[rows]
        return scores

    def _near(
        self, scores: np.ndarray, k: int, rows: np.ndarray | None, margin: float
    ) -> np.ndarray:
        """Positions of the rows whose ``scores`` are within ``margin`` of the k-th best."""
        near = _within(scores, k, margin)
        return near if rows is None else rows[near]

    def _top(self, near: np.ndarray, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        where, scores = exact_top(self._vectors, self._seqs, near, vector, k)
        return [(self._ids[i], s) for i, s in zip(where.tolist(), scores.tolist(), strict=True)]

    def _shift_dots(
        self, shift: np.ndarray, sessions: list[str] | None, rows: np.ndarray | None
    ) -> np.ndarray:
        """The float32 dot product of each of ``rows`` with ``shift``, from one scan of the
        sessions' rows cached until the next write."""
        key = (None if sessions is None else tuple(sorted(set(sessions))), shift.tobytes())
        found = self._dots.get(key)
        if found is None:
            scope = self._session_scope(sessions)
            shift32 = np.asarray(shift, np.float32)
            dots = self._scan(shift32, scope)
            if len(self._dots) >= 16:
                self._dots.clear()
            found = self._dots[key] = (scope, dots)
        scope, dots = found
        if rows is not None:
            dots = dots[rows] if scope is None else dots[np.searchsorted(scope, rows)]
        return dots

    def _coded(self) -> Int8Codes | None:
        """The int8 codes of the rows, built on first use once the index is large enough
        (None: too small, turned off, or simsimd not installed)."""
        if self._codes is None and 0 < self.codes_min_rows <= self.n and vector_codes.available():
            self._codes = Int8Codes(self._vectors[: self.n], self._cap)
        return self._codes


_NONE = np.empty(0, dtype=np.int64)  # _scope: no row in scope
_WIDEN = 1.001  # float64 rounding of the centred bound's own arithmetic, generously


def _scan_error(index: VectorIndex, vector: np.ndarray) -> float:
    """How far a float32 BLAS score of ``vector`` can be from its canonical score."""
    size = float(np.sqrt(index._max_norm2)) * float(np.linalg.norm(vector))
    return float(TIE_MARGIN) * max(1.0, size)


def _within(scores: np.ndarray, k: int, margin: float) -> np.ndarray:
    """Indexes into ``scores`` of those within ``margin`` of the k-th best (all when at most
    ``k``; ``vector_codes.near_top`` with the margin given)."""
    if scores.size <= k:
        return np.arange(scores.size)
    kth = np.partition(scores, scores.size - k)[scores.size - k]
    return np.flatnonzero(scores >= kth - margin)


def _above(
    lower: np.ndarray, upper: np.ndarray, k: int, rows: np.ndarray | None, margin: float = 0.0
) -> np.ndarray:
    """Positions of the rows whose upper end (+ ``margin``) reaches the k-th largest lower
    end: a superset of the top ``k`` (``Int8Codes.shortlist`` from given bounds)."""
    if lower.size <= k:
        near = np.arange(lower.size)
    else:
        floor = np.partition(lower, lower.size - k)[lower.size - k]
        near = np.flatnonzero(upper + margin >= floor)
    return near if rows is None else rows[near]


def _every(n: int, rows: np.ndarray | None) -> np.ndarray:
    return np.arange(n) if rows is None else rows
