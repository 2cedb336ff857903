"""SQLiteStore's keyword search through an in-memory BM25 index per account (keyword_index.py).

The index is a cache: it is built from the database on an account's first keyword search
and follows the ``changes`` log exactly as the vector index does, so several processes over
one file see each other's writes. Its bm25 uses the account's own statistics, so no other
tenant's words move an account's ranking. Metadata filters come in as the seqs they let
through; a term FTS5 splits into a phrase of several tokens is matched by FTS5 and counted
from the rows' tokens. Only an account over ``keyword_index_max_rows`` (0 turns the index
off) is left to the FTS5 query, whose bm25 counts the whole table.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from memstore.settings import Settings
from memstore.stores.keyword_index import (
    KeywordIndex,
    Postings,
    Tokenizer,
    phrase_count,
    tokenize_option,
)

# Rows per account above which keyword search stays on FTS5 (the index holds ~65 MB per
# 100k memories, docs/keyword-index.md): Settings.keyword_index_max_rows, read here from
# its variable alone so that opening a store never validates unrelated settings.
KEYWORD_INDEX_MAX_ROWS: int = Settings.model_fields["keyword_index_max_rows"].default
ENV_MAX_ROWS = "MEMSTORE_KEYWORD_INDEX_MAX_ROWS"
_BATCH = 5000  # rows tokenised at a time when an index is built
PHRASE_ROWS = 2000  # rows read for a query term FTS5 makes a phrase of several tokens


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
        self,
        account_id: str,
        sessions: list[str] | None,
        terms: list[str],
        k: int,
        now: float,
        allowed_seqs: np.ndarray | None = None,
    ) -> list[tuple[str, float]] | None:
        """The account's keyword top ``k`` from its index (among ``allowed_seqs`` when
        given: the rows metadata filters let through); None when the account has no index
        (over the cap, or the index turned off): the caller then asks FTS5."""
        if self.keyword_index_max_rows <= 0:
            return None
        tok = self._tokenizer()
        queried = [(term, tok.query(term)) for term in terms]
        if not any(tokens for _, tokens in queried):
            return []
        index = self._keyword_index(account_id)
        if index is None:
            return None
        phrases: list[str | Postings] = []
        for term, tokens in queried:
            if len(tokens) == 1:
                phrases.append(tokens[0])
            elif tokens:  # FTS5 makes this term a phrase of several tokens: read its rows
                phrases.append(index.postings_of(self._phrase_hits(account_id, term, tokens)))
        return index.search(phrases, k, now, sessions, allowed_seqs)

    def _phrase_hits(
        self, account_id: str, term: str, tokens: tuple[str, ...]
    ) -> list[tuple[int, str, int]]:
        """(seq, content, times the phrase occurs) of the account's rows that FTS5 says
        hold the phrase ``term`` makes: the newest ``PHRASE_ROWS`` of them (each is
        tokenised again here, so the work stays bounded; a phrase that common adds little)."""
        match = '"' + term.replace('"', '""') + '"'
        rows = self._read(
            "SELECT m.seq, m.content FROM memories_fts"
            " CROSS JOIN memories m ON m.seq = memories_fts.rowid"
            " WHERE memories_fts MATCH ? AND m.account_id = ?"
            " ORDER BY memories_fts.rowid DESC LIMIT ?",
            (match, account_id, PHRASE_ROWS),
        )
        words = self._tokenizer().sequences([(seq, content) for seq, content in rows])
        return [(seq, content, phrase_count(words[seq], tokens)) for seq, content in rows]

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
