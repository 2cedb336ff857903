"""An in-memory BM25 posting index for one account, scoring exactly as SQLite's FTS5 does.

FTS5 computes bm25() for every row that matches any query term (~1.1 us a row; a LoCoMo
question matches ~11,500 of 100k rows), so a top-100 costs tens of milliseconds. Here each
term's postings are numpy arrays of (row, term frequency), and a query's scores are a few
vectorised operations over the postings of its terms.

Tokens come from FTS5's own tokenizer (a private in-memory FTS5 table with the store's
``tokenize=`` option), and the score is FTS5's bm25 expression evaluated in the same order
in float64 (k1 = 1.2, b = 0.75). The collection statistics (rows, total tokens, each term's
document count) are the *account's own*, not the whole table's as FTS5's bm25() reads them:
one tenant's words must not move another tenant's ranking (that would tell it which words
other tenants use). So an account's scores are exactly what FTS5 would give if the account
were alone in the store. Ties are broken by ascending ``seq``, as FTS5's sort leaves them.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections.abc import Iterable

import numpy as np

K1 = 1.2
B = 0.75
Postings = tuple[np.ndarray, np.ndarray]  # (rows, term frequencies)
_TOKENIZE = re.compile(r"tokenize\s*=\s*'((?:[^']|'')*)'", re.IGNORECASE)


def tokenize_option(create_sql: str) -> str:
    """The ``tokenize=`` option of an FTS5 ``CREATE VIRTUAL TABLE`` statement."""
    found = _TOKENIZE.search(create_sql)
    return found.group(1).replace("''", "'") if found else "unicode61"


class Tokenizer:
    """FTS5's tokenizer run on demand: text in, (token, document, frequency) out."""

    def __init__(self, option: str) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        quoted = option.replace("'", "''")
        self._db.execute(
            f"CREATE VIRTUAL TABLE tok USING fts5(content, content='', tokenize='{quoted}')"
        )
        self._db.execute("CREATE VIRTUAL TABLE tok_v USING fts5vocab(tok, instance)")
        self._lock = threading.Lock()
        self._queries: dict[str, tuple[str, ...]] = {}

    def documents(self, docs: list[tuple[int, str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Tokenise ``docs`` ((seq, text) pairs): the distinct tokens, and for each token
        ``i`` the run ``bounds[i]:bounds[i+1]`` of ``pairs`` ((seq, frequency) rows, seqs
        ascending)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT INTO tok (rowid, content) VALUES (?, ?)", docs)
                grouped = self._db.execute(
                    "SELECT term, group_concat(doc, ' ') FROM tok_v GROUP BY term"
                ).fetchall()
            finally:
                self._db.execute("ROLLBACK")  # leaves the table empty for the next call
        terms = [t for t, _ in grouped]
        counts = np.fromiter((d.count(" ") + 1 for _, d in grouped), np.int64, len(grouped))
        # parsed in C: a Python string per instance would cost ~50 bytes each
        seqs = np.fromstring(" ".join(d for _, d in grouped), dtype=np.int64, sep=" ")
        term_of = np.repeat(np.arange(len(terms)), counts)
        # one instance per occurrence, ordered by (term, doc): runs are term frequencies
        new = np.ones(seqs.size, dtype=bool)
        new[1:] = (term_of[1:] != term_of[:-1]) | (seqs[1:] != seqs[:-1])
        starts = np.flatnonzero(new)
        freqs = np.diff(np.append(starts, seqs.size))
        pairs = np.stack([seqs[starts], freqs], axis=1)
        bounds = np.searchsorted(term_of[starts], np.arange(len(terms) + 1))
        return terms, pairs, bounds

    def sequences(self, docs: list[tuple[int, str]]) -> dict[int, list[str]]:
        """Tokenise ``docs`` ((seq, text) pairs): each document's tokens in text order."""
        out: dict[int, list[str]] = {seq: [] for seq, _ in docs}
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT INTO tok (rowid, content) VALUES (?, ?)", docs)
                for doc, term in self._db.execute(
                    "SELECT doc, term FROM tok_v ORDER BY doc, offset"
                ):
                    out[doc].append(term)
            finally:
                self._db.execute("ROLLBACK")
        return out

    def query(self, term: str) -> tuple[str, ...]:
        """The tokens FTS5 makes of one quoted query phrase (cached)."""
        tokens = self._queries.get(term)
        if tokens is None:
            with self._lock:
                self._db.execute("BEGIN")
                try:
                    self._db.execute("INSERT INTO tok (rowid, content) VALUES (1, ?)", (term,))
                    rows = self._db.execute("SELECT term FROM tok_v ORDER BY offset").fetchall()
                finally:
                    self._db.execute("ROLLBACK")
            tokens = tuple(r[0] for r in rows)
            if len(self._queries) >= 100_000:
                self._queries.clear()
            self._queries[term] = tokens
        return tokens

    def close(self) -> None:
        # under the lock: a keyword search left running beside a failed embedding may still
        # be tokenising, and closing a connection under a running statement crashes sqlite3
        with self._lock:
            self._db.close()


def idf(rows: int, hits: int) -> float:
    """FTS5's idf of a phrase held by ``hits`` of ``rows`` rows (floored at 1e-6)."""
    value = math.log((rows - hits + 0.5) / (hits + 0.5))
    return 1e-6 if value <= 0.0 else value


def phrase_count(tokens: list[str], phrase: tuple[str, ...]) -> int:
    """How many times ``phrase`` occurs in ``tokens`` (at each start position, as FTS5
    counts a phrase's instances)."""
    size = len(phrase)
    return sum(1 for i in range(len(tokens) - size + 1) if tuple(tokens[i : i + size]) == phrase)


class KeywordIndex:
    """Rows of (seq, id, session, expires_at, length) and per-token postings, with exact
    top-k BM25 search. Rows replaced or removed stay in the postings, marked dead, until
    ``stale()`` asks the owner to rebuild."""

    def __init__(self) -> None:
        self.n = 0
        self._cap = 0
        self._seqs = np.empty(0, dtype=np.int64)
        self._sessions = np.empty(0, dtype=np.int32)
        self._expires = np.empty(0, dtype=np.float64)
        self._lengths = np.empty(0, dtype=np.float64)
        self._alive = np.empty(0, dtype=bool)
        self._hashes = np.empty(0, dtype=np.int64)
        self._ids: list[str] = []
        self._pos: dict[int, int] = {}
        self._session_codes: dict[str, int] = {}
        self._base_terms: dict[str, int] = {}  # token -> j: its bulk postings run
        self._base_bounds = np.zeros(1, dtype=np.int64)  # ... from bounds[j] to bounds[j + 1]
        self._base_rows = np.empty(0, dtype=np.int32)
        self._base_freqs = np.empty(0, dtype=np.float64)
        self._extra: dict[str, list[tuple[int, int]]] = {}  # token -> (row, freq) added later
        self._added = 0  # rows added after the bulk load
        self._dead = 0
        self._tokens = 0.0  # tokens of the live rows (the account's, for bm25's average length)
        self._writes = 0  # bumped when a row's length may change (invalidates _norm)
        self._norm = np.empty(0, dtype=np.float64)
        self._norm_key: tuple[float, int, int] = (0.0, -1, 0)
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._pos)

    def stale(self) -> bool:
        """Whether enough rows were replaced or added one by one that a rebuild pays."""
        return max(self._dead, self._added) > max(1000, self.n // 4)

    def _grow(self, need: int) -> None:
        if need <= self._cap:
            return
        cap = max(need, self._cap * 2, 1024)
        for name in ("_seqs", "_sessions", "_expires", "_lengths", "_alive", "_hashes"):
            old = getattr(self, name)
            arr = np.zeros(cap, dtype=old.dtype)
            arr[: self.n] = old[: self.n]
            setattr(self, name, arr)
        self._cap = cap

    def _code(self, session: str) -> int:
        code = self._session_codes.get(session)
        if code is None:
            code = self._session_codes[session] = len(self._session_codes)
        return code

    def _new_row(self, seq: int, memory_id: str, session: str, expires_at: float | None) -> int:
        old = self._pos.get(seq)
        if old is not None:
            self._kill(old)
        self._grow(self.n + 1)
        i = self.n
        self.n += 1
        self._pos[seq] = i
        self._ids.append(memory_id)
        self._seqs[i] = seq
        self._alive[i] = True
        self._set_fields(i, session, expires_at)
        return i

    def _kill(self, i: int) -> None:
        """Mark row ``i`` dead (replaced or removed): it stays in the postings, unscored."""
        self._alive[i] = False
        self._dead += 1
        self._tokens -= self._lengths[i]

    def _set_fields(self, i: int, session: str, expires_at: float | None) -> None:
        self._sessions[i] = self._code(session)
        self._expires[i] = np.inf if expires_at is None else expires_at

    def load(
        self, batches: Iterable[list[tuple[int, str, str, float | None, str]]], tok: Tokenizer
    ) -> None:
        """Bulk-load batches of (seq, id, session, expires_at, content) rows, seqs ascending,
        into an empty index (in batches, so that tokenising never holds the whole text)."""
        ids: dict[str, int] = {}
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (term ids, rows, freqs)
        for rows in batches:
            first = self.n
            for seq, memory_id, session, expires_at, content in rows:
                i = self._new_row(seq, memory_id, session, expires_at)
                self._hashes[i] = hash(content)
            terms, pairs, bounds = tok.documents([(r[0], r[4]) for r in rows])
            term_ids = np.fromiter((ids.setdefault(t, len(ids)) for t in terms), np.int64)
            seqs = self._seqs[first : self.n]
            rows_of = first + np.searchsorted(seqs, pairs[:, 0])
            parts.append((np.repeat(term_ids, np.diff(bounds)), rows_of, pairs[:, 1]))
        if not parts:
            return
        term_of = np.concatenate([p[0] for p in parts])
        order = np.argsort(term_of, kind="stable")  # rows stay ascending within a term
        self._base_rows = np.concatenate([p[1] for p in parts]).astype(np.int32)[order]
        self._base_freqs = np.concatenate([p[2] for p in parts]).astype(np.float64)[order]
        self._base_terms = ids
        self._base_bounds = np.searchsorted(term_of[order], np.arange(len(ids) + 1))
        self._lengths[: self.n] = np.bincount(self._base_rows, self._base_freqs, minlength=self.n)
        self._tokens = float(self._lengths[: self.n].sum())

    def upsert(
        self,
        rows: list[tuple[int, str, str, float | None, str]],
        tok: Tokenizer,
    ) -> None:
        """Add or replace (seq, id, session, expires_at, content) rows; a row whose content
        is unchanged only takes its new session and expiry."""
        with self.lock:
            changed: list[tuple[int, str]] = []
            for seq, memory_id, session, expires_at, content in rows:
                i = self._pos.get(seq)
                if i is not None and self._hashes[i] == hash(content):
                    self._ids[i] = memory_id
                    self._set_fields(i, session, expires_at)
                    continue
                i = self._new_row(seq, memory_id, session, expires_at)
                self._hashes[i] = hash(content)
                self._added += 1
                changed.append((seq, content))
            if not changed:
                return
            self._writes += 1
            terms, pairs, bounds = tok.documents(changed)
            for j, term in enumerate(terms):
                postings = self._extra.setdefault(term, [])
                for seq, freq in pairs[bounds[j] : bounds[j + 1]].tolist():
                    row = self._pos[seq]
                    postings.append((row, freq))
                    self._lengths[row] += freq
                    self._tokens += freq

    def remove(self, seq: int) -> None:
        with self.lock:
            i = self._pos.pop(seq, None)
            if i is not None:
                self._kill(i)

    def _norms(self, avgdl: float) -> np.ndarray:
        """Each row's length part of FTS5's bm25 denominator, kept until ``avgdl`` or a
        row's length changes."""
        if self._norm_key != (avgdl, self.n, self._writes):
            self._norm = K1 * ((1 - B) + B * self._lengths[: self.n] / avgdl)
            self._norm_key = (avgdl, self.n, self._writes)
        return self._norm

    def _postings(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        j = self._base_terms.get(token)
        start, end = (0, 0) if j is None else self._base_bounds[j : j + 2].tolist()
        rows, freqs = self._base_rows[start:end], self._base_freqs[start:end]
        extra = self._extra.get(token)
        if extra:
            more = np.array(extra, dtype=np.int64)
            rows = np.concatenate([rows, more[:, 0].astype(np.int32)])
            freqs = np.concatenate([freqs, more[:, 1].astype(np.float64)])
        return rows, freqs

    def postings_of(self, found: Iterable[tuple[int, str, int]]) -> Postings:
        """Postings built from (seq, content, frequency) found outside the index (a phrase of
        several tokens): only rows the index holds with that same content (a row written
        since the index last caught up is left out, as from every other posting)."""
        with self.lock:
            pairs = [
                (i, freq)
                for seq, content, freq in found
                if freq
                and (i := self._pos.get(seq)) is not None
                and self._hashes[i] == hash(content)
            ]
        rows = np.array([i for i, _ in pairs], dtype=np.int32)
        return rows, np.array([f for _, f in pairs], dtype=np.float64)

    def search(
        self,
        phrases: list[str | Postings],
        k: int,
        now: float,
        sessions: list[str] | None = None,
        allowed_seqs: np.ndarray | None = None,
    ) -> list[tuple[str, float]]:
        """Top ``k`` (id, bm25) among live rows of ``sessions`` (all when None; only those
        whose seq is in ``allowed_seqs`` when given) holding any of ``phrases``, in query
        order (FTS5 sums their scores in that order): a token, or the postings of a phrase of
        several tokens (``postings_of``)."""
        with self.lock:
            n, rows_held = self.n, len(self._pos)
            if n == 0 or k <= 0 or rows_held == 0:
                return []
            avgdl = self._tokens / float(rows_held)
            scores = np.zeros(n, dtype=np.float64)
            matched = np.zeros(n, dtype=bool)
            norms = self._norms(avgdl)
            for phrase in phrases:
                rows, freqs = self._postings(phrase) if isinstance(phrase, str) else phrase
                if rows.size == 0:
                    continue
                weight = idf(rows_held, int(np.count_nonzero(self._alive[rows])))
                # FTS5's expression, operation for operation (fts5_aux.c, fts5Bm25Function)
                scores[rows] += weight * ((freqs * (K1 + 1.0)) / (freqs + norms[rows]))
                matched[rows] = True
            hit = np.flatnonzero(matched)
            keep = self._alive[hit] & (self._expires[hit] > now)
            if sessions is not None and not set(self._session_codes) <= set(sessions):
                wanted = np.zeros(len(self._session_codes), dtype=bool)
                wanted[[self._session_codes[s] for s in sessions if s in self._session_codes]] = 1
                keep &= wanted[self._sessions[hit]]
            if allowed_seqs is not None:
                keep &= np.isin(self._seqs[hit], allowed_seqs)
            hit = hit[keep]
            if hit.size == 0:
                return []
            got = scores[hit]
            if hit.size > k:  # every row tied with the k-th stays in, for the tie-break
                kth = np.partition(got, hit.size - k)[hit.size - k]
                hit, got = hit[got >= kth], got[got >= kth]
            best = np.lexsort((self._seqs[hit], -got))[:k]
            return [(self._ids[i], float(s)) for i, s in zip(hit[best], got[best], strict=True)]
