"""SQLiteStore's keyword search through an in-memory BM25 index per account (keyword_index.py).

The index is a cache: it is built from the database on an account's first keyword search
and follows the ``changes`` log exactly as the vector index does, so several processes over
one file see each other's writes. The collection statistics (rows, tokens and document
counts over the whole FTS table, as FTS5's bm25 reads them) come from the database and are
cached until the log moves. A search the index cannot answer exactly returns ``None`` and
the store runs the FTS5 query: metadata filters, a term FTS5 splits into a phrase of several
tokens, an account over ``keyword_index_max_rows`` (0 turns the index off).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from memstore.settings import Settings
from memstore.stores.keyword_index import FtsStats, KeywordIndex, Tokenizer, tokenize_option

# Rows per account above which keyword search stays on FTS5 (the index holds ~65 MB per
# 100k memories, docs/keyword-index.md): Settings.keyword_index_max_rows, read here from
# its variable alone so that opening a store never validates unrelated settings.
KEYWORD_INDEX_MAX_ROWS: int = Settings.model_fields["keyword_index_max_rows"].default
ENV_MAX_ROWS = "MEMSTORE_KEYWORD_INDEX_MAX_ROWS"
_BATCH = 5000  # rows tokenised at a time when an index is built


def _varints(blob: bytes) -> list[int]:
    """SQLite's big-endian varints (FTS5's ``averages`` and ``docsize`` records)."""
    out, i = [], 0
    while i < len(blob):
        value = 0
        for j in range(9):
            byte = blob[i]
            i += 1
            if j == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        out.append(value)
    return out


class KeywordIndexes:
    """Per-account keyword indexes of a SQLite store (see module docstring)."""

    if TYPE_CHECKING:  # provided by SQLiteStore

        def _read(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]: ...
        def _reading(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def _changes_pruned_upto(self) -> int: ...
        def _changed_since(
            self, account_id: str, last: int, columns: str
        ) -> tuple[int, list[int], dict[int, tuple[Any, ...]]] | None: ...

    def _init_keyword_indexes(self, max_rows: int | None) -> None:
        if max_rows is None:
            max_rows = int(os.environ.get(ENV_MAX_ROWS) or KEYWORD_INDEX_MAX_ROWS)
        self.keyword_index_max_rows = max_rows
        self._kw_lock = threading.RLock()
        self._kw_indexes: dict[str, tuple[KeywordIndex, int]] = {}
        self._kw_over: dict[str, int] = {}  # account -> changes seq when found over the cap
        self._kw_stats: tuple[int, FtsStats] | None = None  # (changes seq, statistics)
        self._kw_tokenizer: Tokenizer | None = None

    def _close_keyword_indexes(self) -> None:
        with self._kw_lock:
            if self._kw_tokenizer is not None:
                self._kw_tokenizer.close()
                self._kw_tokenizer = None
            self._kw_indexes.clear()

    def _tokenizer(self) -> Tokenizer:
        with self._kw_lock:
            if self._kw_tokenizer is None:
                (sql,) = self._read("SELECT sql FROM sqlite_master WHERE name = 'memories_fts'")[0]
                self._kw_tokenizer = Tokenizer(tokenize_option(sql))
            return self._kw_tokenizer

    def indexed_keyword_search(
        self, account_id: str, sessions: list[str] | None, terms: list[str], k: int, now: float
    ) -> list[tuple[str, float]] | None:
        """The FTS5 query's exact answer from the account's index; None when the index
        cannot give it (the caller then asks FTS5)."""
        if self.keyword_index_max_rows <= 0:
            return None
        tok = self._tokenizer()
        phrases: dict[str, str] = {}  # token -> a query term that FTS5 turns into it
        order: list[str] = []
        for term in terms:
            tokens = tok.query(term)
            if len(tokens) > 1:
                return None
            if tokens:
                phrases.setdefault(tokens[0], term)
                order.append(tokens[0])
        if not order:
            return []
        index = self._keyword_index(account_id)
        if index is None:
            return None
        return index.search(order, self._fts_stats(phrases), k, now, sessions)

    def _fts_stats(self, phrases: dict[str, str]) -> FtsStats:
        """Rows, tokens and the document count of each token, over the whole FTS table."""
        version = self._read("SELECT coalesce(max(seq), 0) FROM changes")[0][0]
        with self._kw_lock:
            cached = self._kw_stats
            if cached is None or cached[0] != version:
                block = self._read("SELECT block FROM memories_fts_data WHERE id = 1")
                rows, tokens = (_varints(block[0][0]) + [0, 0])[:2] if block else (0, 0)
                cached = self._kw_stats = (version, FtsStats(rows, tokens, {}))
            stats = cached[1]
            for token, term in phrases.items():
                if token not in stats.documents:
                    # counted as FTS5's bm25 counts a phrase's hits: rows matching the phrase
                    match = '"' + term.replace('"', '""') + '"'
                    stats.documents[token] = self._read(
                        "SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?", (match,)
                    )[0][0]
            return stats

    def _keyword_index(self, account_id: str) -> KeywordIndex | None:
        """The account's keyword index brought up to date with the changes log (as
        ``SQLiteStore._index`` does for vectors); None when the account is over the cap."""
        with self._kw_lock:
            cached = self._kw_indexes.get(account_id)
            if cached is None or cached[1] < self._changes_pruned_upto() or cached[0].stale():
                return self._load_keyword_index(account_id)
            index, last = cached
            news = self._changed_since(account_id, last, "seq, id, session, expires_at, content")
            if news is None:
                return index
            newest, seqs, present = news
            for seq in seqs:
                if seq not in present:
                    index.remove(seq)
            index.upsert([present[s] for s in seqs if s in present], self._tokenizer())
            self._kw_indexes[account_id] = (index, newest)
            return self._load_keyword_index(account_id) if index.stale() else index

    def _load_keyword_index(self, account_id: str) -> KeywordIndex | None:
        with self._kw_lock:
            self._kw_indexes.pop(account_id, None)
            last = self._read("SELECT coalesce(max(seq), 0) FROM changes")[0][0]
            over = self._kw_over.get(account_id)
            if over is not None and last - over < max(1000, self.keyword_index_max_rows // 10):
                return None  # counted recently; too few writes since to have changed that
            (count,) = self._read(
                "SELECT count(*) FROM memories WHERE account_id = ?", (account_id,)
            )[0]
            if count > self.keyword_index_max_rows:
                self._kw_over[account_id] = last
                return None
            self._kw_over.pop(account_id, None)
            index = KeywordIndex()
            with self._reading() as conn:
                cursor = conn.execute(
                    "SELECT seq, id, session, expires_at, content FROM memories"
                    " WHERE account_id = ? ORDER BY seq",
                    (account_id,),
                )
                index.load(iter(lambda: cursor.fetchmany(_BATCH), []), self._tokenizer())
            self._kw_indexes[account_id] = (index, last)
            return index
