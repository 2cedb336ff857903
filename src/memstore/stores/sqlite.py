"""The default store: one SQLite file (WAL) with FTS5 for keywords and vectors as BLOBs.

Vectors are searched exactly with numpy from a per-account in-memory index. The index
follows the table through a ``changes`` log written by triggers, so several processes
(``memstore serve --workers N``) over one file all see each other's writes.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from memstore.stores import vector_codes
from memstore.stores.accounts import AccountsAndKeys, merge_local_into_default
from memstore.stores.base import (
    DuplicateError,
    Filters,
    FollowUp,
    MemoryRow,
    context_offsets,
)
from memstore.stores.hygiene import Hygiene
from memstore.stores.idempotency import SCHEMA as IDEMPOTENCY_SCHEMA
from memstore.stores.idempotency import IdempotencyRecords
from memstore.stores.sqlite_keywords import KeywordIndexes
from memstore.stores.stats import InstallStats
from memstore.stores.supersession import SCHEMA as SUPERSESSION_SCHEMA
from memstore.stores.supersession import Supersession
from memstore.stores.vector_index import VectorIndex

DB_FILENAME = "memstore.db"
CHANGES_KEPT = 200_000

MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        plan TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        prefix TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE TABLE usage (
        account_id TEXT NOT NULL,
        period TEXT NOT NULL,
        ops INTEGER NOT NULL,
        PRIMARY KEY (account_id, period)
    );
    CREATE TABLE memories (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL,
        session TEXT NOT NULL,
        content TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        expires_at REAL,
        -- last, so that reading the columns above never touches the vector's overflow pages
        embedding BLOB NOT NULL
    );
    CREATE UNIQUE INDEX memories_dedup ON memories (account_id, session, content_hash);
    CREATE INDEX memories_by_session ON memories (account_id, session, seq);
    CREATE INDEX memories_by_account ON memories (account_id, seq);
    CREATE INDEX memories_by_expiry ON memories (expires_at) WHERE expires_at IS NOT NULL;
    CREATE VIRTUAL TABLE memories_fts USING fts5(
        content, content='memories', content_rowid='seq',
        tokenize='porter unicode61 remove_diacritics 2'
    );
    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id TEXT NOT NULL,
        memory_seq INTEGER NOT NULL
    );
    CREATE INDEX changes_by_account ON changes (account_id, seq);
    CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, content) VALUES (new.seq, new.content);
        INSERT INTO changes (account_id, memory_seq) VALUES (new.account_id, new.seq);
    END;
    CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, content)
            VALUES ('delete', old.seq, old.content);
        INSERT INTO changes (account_id, memory_seq) VALUES (old.account_id, old.seq);
    END;
    CREATE TRIGGER memories_au AFTER UPDATE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, content)
            VALUES ('delete', old.seq, old.content);
        INSERT INTO memories_fts (rowid, content) VALUES (new.seq, new.content);
        INSERT INTO changes (account_id, memory_seq) VALUES (new.account_id, new.seq);
    END;
    """,
    # 2: answers to writes sent with an Idempotency-Key
    IDEMPOTENCY_SCHEMA.format(real="REAL"),
    # 3: repair metadata holding a lone UTF-16 surrogate (issue 14, item 4)
    "repair_lone_surrogates",
    # 4: one default account (see stores/accounts.py)
    merge_local_into_default(
        now="(julianday('now') - 2440587.5) * 86400.0",
        new_id="'acc_' || lower(hex(randomblob(8)))",
    ),
    # 5: admin keys (the console's key management) and when each key was last used
    "add_key_admin_and_last_use",
    # 6: operations per UTC day (the console's usage chart), counted by triggers on usage,
    # so the very statement that charges the monthly cap also counts the day
    """
    CREATE TABLE IF NOT EXISTS usage_daily (
        account_id TEXT NOT NULL,
        day TEXT NOT NULL,
        ops INTEGER NOT NULL,
        PRIMARY KEY (account_id, day)
    );
    CREATE TRIGGER IF NOT EXISTS usage_daily_ai AFTER INSERT ON usage BEGIN
        INSERT INTO usage_daily (account_id, day, ops) VALUES (new.account_id, date('now'), new.ops)
        ON CONFLICT (account_id, day) DO UPDATE SET ops = ops + excluded.ops;
    END;
    CREATE TRIGGER IF NOT EXISTS usage_daily_au AFTER UPDATE OF ops ON usage BEGIN
        INSERT INTO usage_daily (account_id, day, ops)
        VALUES (new.account_id, date('now'), new.ops - old.ops)
        ON CONFLICT (account_id, day) DO UPDATE SET ops = ops + excluded.ops;
    END;
    """,
    # 7: superseded memories, recall hits and purge counts (docs/memory-over-time.md)
    "add_supersession_and_hygiene",
]


_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid_unicode(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)  # json.loads has already joined valid pairs
    if isinstance(value, dict):
        return {_valid_unicode(k): _valid_unicode(v) for k, v in value.items()}
    return value


def add_key_admin_and_last_use(db: sqlite3.Connection) -> None:
    """api_keys.admin and api_keys.last_used_at (idempotent: SQLite has no ADD COLUMN IF
    NOT EXISTS, and a rerun from an earlier version must not fail)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(api_keys)")}
    if "admin" not in have:
        db.execute("ALTER TABLE api_keys ADD COLUMN admin INTEGER NOT NULL DEFAULT 0")
    if "last_used_at" not in have:
        db.execute("ALTER TABLE api_keys ADD COLUMN last_used_at REAL")


def add_supersession_and_hygiene(db: sqlite3.Connection) -> None:
    """memories.superseded_at / superseded_by and the hygiene tables (idempotent, like
    ``add_key_admin_and_last_use``)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(memories)")}
    if "superseded_at" not in have:
        db.execute("ALTER TABLE memories ADD COLUMN superseded_at REAL")
    if "superseded_by" not in have:
        db.execute("ALTER TABLE memories ADD COLUMN superseded_by TEXT")
    for statement in _split_sql(SUPERSESSION_SCHEMA.format(int="INTEGER", real="REAL")):
        db.execute(statement)


def repair_lone_surrogates(db: sqlite3.Connection) -> None:
    """Metadata written as ASCII-escaped JSON could carry ``\\ud800``, which no UTF-8 reader
    can return; earlier versions stored such rows. Only rows with an escape are read."""
    rows = db.execute("SELECT seq, metadata FROM memories WHERE instr(metadata, '\\u')").fetchall()
    for seq, text in rows:
        parsed = json.loads(text)
        fixed = _valid_unicode(parsed)
        if fixed != parsed:
            db.execute(
                "UPDATE memories SET metadata = ? WHERE seq = ?",
                (json.dumps(fixed, ensure_ascii=False), seq),
            )


_COLUMNS = (
    "seq, id, account_id, session, content, content_hash, metadata, created_at, updated_at, "
    "expires_at, superseded_at, superseded_by"
)
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_UNIQUE = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")


def _row(r: tuple[Any, ...]) -> MemoryRow:
    return MemoryRow(
        seq=r[0],
        id=r[1],
        account_id=r[2],
        session=r[3],
        content=r[4],
        content_hash=r[5],
        metadata=json.loads(r[6]),
        created_at=r[7],
        updated_at=r[8],
        expires_at=r[9],
        superseded_at=r[10],
        superseded_by=r[11],
    )


def _scope(sessions: list[str] | None, filters: Filters | None) -> tuple[str, list[Any]]:
    """SQL conditions (on table alias m) for a session list and metadata equality filters."""
    sql = ""
    args: list[Any] = []
    if sessions is not None:
        sql += f" AND m.session IN ({','.join('?' * len(sessions))})"
        args += sessions
    for key, value in (filters or {}).items():
        path = '$."' + key.replace('"', '""') + '"'
        if value is None:
            sql += " AND json_type(m.metadata, ?) = 'null'"
            args.append(path)
        else:
            sql += " AND json_extract(m.metadata, ?) = ? AND json_type(m.metadata, ?) = ?"
            jtype = {bool: "true" if value else "false", int: "integer", float: "real"}.get(
                type(value), "text"
            )
            args += [path, int(value) if isinstance(value, bool) else value, path, jtype]
    return sql, args


class SQLiteStore(
    AccountsAndKeys, IdempotencyRecords, InstallStats, Supersession, Hygiene, KeywordIndexes
):
    """Store over one SQLite database file (see module docstring)."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        keyword_index_max_rows: int | None = None,  # None: sqlite_keywords' default
    ) -> None:
        self.path = str(path)
        self._init_keyword_indexes(keyword_index_max_rows)
        # One writer connection behind a lock; reads use one connection per thread, so
        # they run side by side (WAL) and never wait for a write.
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[tuple[sqlite3.Connection, threading.RLock]] = []
        self._readers_lock = threading.Lock()
        self._index_lock = threading.RLock()
        self._conn.execute("PRAGMA busy_timeout = 10000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._sync_level = synchronous
        self._conn.execute(f"PRAGMA synchronous = {synchronous}")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._migrate()
        self._indexes: dict[str, tuple[VectorIndex, int]] = {}
        self.vector_codes_min_rows = vector_codes.min_rows()  # 0: dense search never codes

    @classmethod
    def open_dir(cls, data_dir: str | Path) -> SQLiteStore:
        path = Path(data_dir)
        path.mkdir(parents=True, exist_ok=True)
        return cls(path / DB_FILENAME)

    # -- plumbing
    def _migrate(self) -> None:
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this memstore "
                    f"({len(MIGRATIONS)}); upgrade memstore"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                if script.isidentifier():  # a data migration: a function of this module
                    globals()[script](db)
                else:
                    for statement in _split_sql(script):
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """The one writer connection, in a transaction; a taken unique key -> DuplicateError."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except sqlite3.IntegrityError as exc:
                self._conn.execute("ROLLBACK")
                if exc.sqlite_errorname in (
                    "SQLITE_CONSTRAINT_UNIQUE",
                    "SQLITE_CONSTRAINT_PRIMARYKEY",
                ):
                    raise DuplicateError(str(exc)) from exc
                raise
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _synchronous(self, level: str) -> Iterator[None]:
        """Run with another fsync level (a per-connection setting; callers hold the lock)."""
        self._conn.execute(f"PRAGMA synchronous = {level}")
        try:
            yield
        finally:
            self._conn.execute(f"PRAGMA synchronous = {self._sync_level}")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """This thread's read connection (opened on first use), held for the block so that
        ``close`` waits for a query in flight instead of freeing its connection under it."""
        reader: tuple[sqlite3.Connection, threading.RLock] | None = getattr(
            self._local, "reader", None
        )
        if reader is None:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA query_only = ON")
            reader = (conn, threading.RLock())
            self._local.reader = reader
            with self._readers_lock:
                self._readers.append(reader)
        with reader[1]:
            yield reader[0]

    def _read(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        with self._reading() as conn:
            return conn.execute(sql, args).fetchall()

    def close(self) -> None:
        self._close_keyword_indexes()
        with self._lock:
            self._conn.close()
        with self._readers_lock:
            for conn, lock in self._readers:
                with lock:  # a query running on it finishes first
                    conn.close()
            self._readers.clear()

    def check(self) -> None:
        self._read("SELECT 1")

    def database_bytes(self) -> int:
        """The database file plus its write-ahead log, as on disk now."""
        ((pages, size),) = self._read(
            "SELECT page_count, page_size FROM pragma_page_count, pragma_page_size"
        )
        wal = Path(self.path + "-wal")
        return int(pages) * int(size) + (wal.stat().st_size if wal.exists() else 0)

    # -- store identity
    def embedder_info(self) -> tuple[str, int] | None:
        rows = dict(self._read("SELECT key, value FROM meta WHERE key LIKE 'embedder_%'"))
        if "embedder_name" not in rows:
            return None
        return rows["embedder_name"], int(rows["embedder_dim"])

    def set_embedder_info(self, name: str, dim: int) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [("embedder_name", name), ("embedder_dim", str(dim))],
            )

    def install_secret(self, name: str, candidate: str) -> str:
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (name, candidate))
            row = db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
            return str(row[0])

    # -- accounts, keys, usage
    def _change(self, sql: str, args: Any) -> int:
        with self._write() as db:
            return db.execute(sql, args).rowcount

    def add_usage(self, account_id: str, period: str, ops: int, limit: int | None) -> int | None:
        # Every recall counts an op; an fsync per recall would cost more than the search.
        # In WAL mode, NORMAL still survives a killed process; only an OS crash or power
        # loss can drop the last few increments of this counter.
        with self._lock, self._synchronous("NORMAL"), self._write() as db:
            row = db.execute(
                "INSERT INTO usage (account_id, period, ops) SELECT ?, ?, ?"
                " WHERE ? IS NULL OR ? <= ?"
                " ON CONFLICT (account_id, period) DO UPDATE SET ops = ops + excluded.ops"
                " WHERE ? IS NULL OR ops + excluded.ops <= ?"
                " RETURNING ops",
                (account_id, period, ops, limit, ops, limit, limit, limit),
            ).fetchone()
        return None if row is None else int(row[0])

    def get_usage(self, account_id: str, period: str) -> int:
        rows = self._read(
            "SELECT ops FROM usage WHERE account_id = ? AND period = ?", (account_id, period)
        )
        return int(rows[0][0]) if rows else 0

    # -- memories
    def find_duplicates(
        self, account_id: str, keys: list[tuple[str, str]], now: float
    ) -> dict[tuple[str, str], MemoryRow]:
        found: dict[tuple[str, str], MemoryRow] = {}
        for session, content_hash in set(keys):
            rows = self._read(
                f"SELECT {_COLUMNS} FROM memories WHERE account_id = ? AND session = ?"
                f" AND content_hash = ? AND {_LIVE}",
                (account_id, session, content_hash, now),
            )
            if rows:
                found[(session, content_hash)] = _row(rows[0])
        return found

    def insert(self, rows: list[MemoryRow], vectors: np.ndarray) -> list[tuple[MemoryRow, bool]]:
        out: list[tuple[MemoryRow, bool]] = []
        with self._write() as db:
            for row, vector in zip(rows, vectors, strict=True):
                # An expired twin no longer counts: it makes way for the new memory.
                db.execute(
                    "DELETE FROM memories WHERE account_id = ? AND session = ? AND content_hash = ?"
                    " AND expires_at IS NOT NULL AND expires_at <= ?",
                    (row.account_id, row.session, row.content_hash, row.created_at),
                )
                cur = db.execute(
                    "INSERT INTO memories (id, account_id, session, content, content_hash,"
                    " metadata, embedding, created_at, updated_at, expires_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (account_id, session, content_hash) DO NOTHING",
                    (
                        row.id,
                        row.account_id,
                        row.session,
                        row.content,
                        row.content_hash,
                        # Not ASCII-escaped: sqlite3 then refuses a lone surrogate (which an
                        # escape would smuggle in) instead of storing it (issue 14, item 4).
                        json.dumps(row.metadata, ensure_ascii=False),
                        np.asarray(vector, dtype=np.float32).tobytes(),
                        row.created_at,
                        row.updated_at,
                        row.expires_at,
                    ),
                )
                if cur.rowcount:
                    out.append((MemoryRow(**{**row.__dict__, "seq": cur.lastrowid}), False))
                else:
                    existing = db.execute(
                        f"SELECT {_COLUMNS} FROM memories WHERE account_id = ? AND session = ?"
                        " AND content_hash = ?",
                        (row.account_id, row.session, row.content_hash),
                    ).fetchone()
                    out.append((_row(existing), True))
        return out

    def get(self, account_id: str, memory_id: str, now: float) -> MemoryRow | None:
        rows = self._read(
            f"SELECT {_COLUMNS} FROM memories WHERE id = ? AND account_id = ? AND {_LIVE}",
            (memory_id, account_id, now),
        )
        return _row(rows[0]) if rows else None

    def get_many(self, account_id: str, ids: list[str], now: float) -> dict[str, MemoryRow]:
        if not ids:
            return {}
        # "+account_id": without it SQLite walks the account's whole index (170 ms at 100k
        # memories) instead of looking the ids up in their unique index (0.3 ms).
        rows = self._read(
            f"SELECT {_COLUMNS} FROM memories WHERE +account_id = ? AND {_LIVE}"
            f" AND id IN ({','.join('?' * len(ids))})",
            (account_id, now, *ids),
        )
        return {r[1]: _row(r) for r in rows}

    def vectors(self, account_id: str, ids: list[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        if account_id in self._indexes:  # from memory: ~4x faster than reading the blobs
            return self._index(account_id).vectors(ids)
        rows = self._read(
            f"SELECT id, embedding FROM memories WHERE +account_id = ?"
            f" AND id IN ({','.join('?' * len(ids))})",
            (account_id, *ids),
        )
        return {r[0]: np.frombuffer(r[1], dtype=np.float32) for r in rows}

    def neighbors(
        self,
        account_id: str,
        ids: list[str],
        radius: int,
        window: float,
        now: float,
        filters: Filters | None,
    ) -> dict[str, dict[int, str]]:
        if not ids or radius <= 0:
            return {}
        if not filters:  # from the vector index's rows (session_order.py), no SQL
            return self._index(account_id).neighbors(ids, radius, window, now)
        return self._neighbors_sql(account_id, ids, radius, window, now, filters)

    def _neighbors_sql(
        self,
        account_id: str,
        ids: list[str],
        radius: int,
        window: float,
        now: float,
        filters: Filters | None,
    ) -> dict[str, dict[int, str]]:
        """``neighbors`` by SQL: any filters; the answer the in-memory path must equal."""
        scope, args = _scope(None, filters)
        marks = ",".join("?" * len(ids))
        sides = []
        for op, order in (("<", "DESC"), (">", "ASC")):
            sides.append(
                "SELECT c.id, n.id, n.seq - c.seq, n.created_at - c.created_at FROM memories c"
                " JOIN memories n ON n.seq IN (SELECT m.seq FROM memories m"
                " WHERE m.account_id = c.account_id AND m.session = c.session"
                f" AND m.seq {op} c.seq AND (m.expires_at IS NULL OR m.expires_at > ?){scope}"
                f" ORDER BY m.seq {order} LIMIT ?)"
                f" WHERE +c.account_id = ? AND c.id IN ({marks})"
            )
        side_args = (now, *args, radius, account_id, *ids)
        rows = self._read(" UNION ALL ".join(sides), side_args + side_args)
        return context_offsets(rows, window)

    def list_memories(
        self,
        account_id: str,
        sessions: list[str] | None,
        limit: int,
        before_seq: int | None,
        now: float,
    ) -> list[MemoryRow]:
        scope, args = _scope(sessions, None)
        rows = self._read(
            f"SELECT {_COLUMNS} FROM memories m WHERE account_id = ? AND {_LIVE}{scope}"
            " AND seq < ? ORDER BY seq DESC LIMIT ?",
            (account_id, now, *args, before_seq if before_seq is not None else 2**62, limit),
        )
        return [_row(r) for r in rows]

    def update(self, row: MemoryRow, vector: np.ndarray | None) -> bool:
        with self._write() as db:
            sql = (
                "UPDATE memories SET content = ?, content_hash = ?, metadata = ?, updated_at = ?,"
                " expires_at = ?"
            )
            args: list[Any] = [
                row.content,
                row.content_hash,
                json.dumps(row.metadata, ensure_ascii=False),
                row.updated_at,
                row.expires_at,  # a duplicate remember can set a new expiry (issue 14, item 9)
            ]
            if vector is not None:
                sql += ", embedding = ?"
                args.append(np.asarray(vector, dtype=np.float32).tobytes())
            cur = db.execute(
                sql + " WHERE id = ? AND account_id = ?", (*args, row.id, row.account_id)
            )
            return cur.rowcount > 0

    def delete(self, account_id: str, memory_id: str) -> bool:
        with self._write() as db:
            self._forget_hits(db, account_id, "id = ?", (memory_id,))
            cur = db.execute(
                "DELETE FROM memories WHERE id = ? AND account_id = ?", (memory_id, account_id)
            )
            return cur.rowcount > 0

    def delete_session(self, account_id: str, session: str) -> int:
        with self._write() as db:
            self._forget_hits(db, account_id, "session = ?", (session,))
            cur = db.execute(
                "DELETE FROM memories WHERE account_id = ? AND session = ?", (account_id, session)
            )
            return cur.rowcount

    def sessions(self, account_id: str, now: float) -> list[tuple[str, int, float]]:
        rows = self._read(
            "SELECT session, count(*), max(updated_at) FROM memories"
            f" WHERE account_id = ? AND {_LIVE} GROUP BY session ORDER BY session",
            (account_id, now),
        )
        return [(r[0], int(r[1]), float(r[2])) for r in rows]

    def purge_expired(self, account_id: str, now: float, session: str | None = None) -> int:
        where, args = "expires_at <= ?", list[Any]([now])
        if session is not None:
            where += " AND session = ?"
            args.append(session)
        sql = self._q(f"DELETE FROM memories WHERE account_id = ? AND {where}")
        with self._write() as db:
            self._forget_hits(db, account_id, where, args)
            gone = [r[0] for r in db.execute(sql + " RETURNING session", (account_id, *args))]
            purged = len(gone)
            self._count_purged(db, account_id, gone)
            top = db.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
            if top > CHANGES_KEPT:
                db.execute("DELETE FROM changes WHERE seq <= ?", (top - CHANGES_KEPT,))
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('changes_pruned_upto', ?)",
                    (str(top - CHANGES_KEPT),),
                )
        return purged

    # -- search
    def _changes_pruned_upto(self) -> int:
        """The log entry up to which the changes log was pruned (an index older than it must
        be rebuilt from the table)."""
        pruned = self._read("SELECT value FROM meta WHERE key = 'changes_pruned_upto'")
        return int(pruned[0][0]) if pruned else 0

    def _changed_since(
        self, account_id: str, last: int, columns: str
    ) -> tuple[int, list[int], dict[int, tuple[Any, ...]]] | None:
        """What an in-memory index of the account must apply after log entry ``last``: the
        newest log entry, the memory seqs that changed, and ``columns`` (``seq`` first) of
        those still present (a seq missing from them was deleted). None if nothing changed."""
        changed = self._read(
            "SELECT max(seq), memory_seq FROM changes WHERE account_id = ? AND seq > ?"
            " GROUP BY memory_seq",
            (account_id, last),
        )
        if not changed:
            return None
        seqs = [r[1] for r in changed]
        present = {
            r[0]: r
            for chunk in range(0, len(seqs), 500)
            for r in self._read(
                f"SELECT {columns} FROM memories"
                f" WHERE seq IN ({','.join('?' * len(seqs[chunk : chunk + 500]))})",
                seqs[chunk : chunk + 500],
            )
        }
        return max(r[0] for r in changed), seqs, present

    def _index(self, account_id: str) -> VectorIndex:
        """The account's vector index, brought up to date with the changes log."""
        with self._index_lock:
            cached = self._indexes.get(account_id)
            # One read settles the common case, nothing written anywhere since. Writes are
            # serialised, so every change up to ``top`` has committed and is read below.
            top = self._read("SELECT coalesce(max(seq), 0) FROM changes")[0][0]
            if cached is not None and cached[1] >= top:
                return cached[0]
            if cached is None or cached[1] < self._changes_pruned_upto():
                return self._load_index(account_id)
            index, last = cached
            news = self._changed_since(
                account_id, last, "seq, id, session, expires_at, embedding, created_at"
            )
            if news is None:
                self._indexes[account_id] = (index, top)  # other accounts' writes only
                return index
            newest, seqs, present = news
            for seq in seqs:
                r = present.get(seq)
                if r is None:
                    index.remove(seq)
                else:
                    index.upsert(
                        r[0], r[1], r[2], np.frombuffer(r[4], dtype=np.float32), r[3], r[5]
                    )
            self._indexes[account_id] = (index, max(newest, top))
            return index

    def _load_index(self, account_id: str) -> VectorIndex:
        with self._index_lock:
            info = self.embedder_info()
            index = VectorIndex(info[1] if info else 384, self.vector_codes_min_rows)
            last = self._read("SELECT coalesce(max(seq), 0) FROM changes")[0][0]
            with self._reading() as conn:
                cur = conn.execute(
                    "SELECT seq, id, session, expires_at, embedding, created_at FROM memories"
                    " WHERE account_id = ? ORDER BY seq",
                    (account_id,),
                )
                for seq, memory_id, session, expires_at, blob, created_at in cur:
                    vector = np.frombuffer(blob, np.float32)
                    index.upsert(seq, memory_id, session, vector, expires_at, created_at)
            self._indexes[account_id] = (index, last)
            return index

    def dense_search(
        self,
        account_id: str,
        sessions: list[str] | None,
        vector: np.ndarray,
        k: int,
        now: float,
        filters: Filters | None,
    ) -> list[tuple[str, float]]:
        allowed = self._allowed_seqs(account_id, sessions, filters)
        index = self._index(account_id)
        return index.search(np.asarray(vector, np.float32), k, now, sessions, allowed)

    def dense_search_many(
        self,
        account_id: str,
        sessions: list[str] | None,
        vectors: list[np.ndarray],
        k: int,
        now: float,
        filters: Filters | None,
        shift: np.ndarray | None = None,
        follow: FollowUp | None = None,
    ) -> list[list[tuple[str, float]]]:
        """One index search per vector, the filters' rows read once; with ``shift``, the
        centred query's shortlist comes from the plain query's pass
        (``VectorIndex.search_centred``). ``follow`` is not used: a search costs little."""
        allowed = self._allowed_seqs(account_id, sessions, filters)
        index = self._index(account_id)
        queries = [np.asarray(v, np.float32) for v in vectors]
        if shift is not None and len(queries) == 2:
            shift = np.asarray(shift, np.float32)
            plain, centred = queries
            return list(index.search_centred(plain, centred, shift, k, now, sessions, allowed))
        return [index.search(v, k, now, sessions, allowed) for v in queries]

    def session_mean(
        self,
        account_id: str,
        sessions: list[str] | None,
        now: float,
        max_rows: int | None = None,
    ) -> np.ndarray | None:
        """From the vector index's running sums (expired rows count until purged)."""
        return self._index(account_id).session_mean(sessions, max_rows)

    def _allowed_seqs(
        self, account_id: str, sessions: list[str] | None, filters: Filters | None
    ) -> np.ndarray | None:
        """The seqs of the account's rows that metadata ``filters`` let through (None: no
        filters), for the in-memory indexes to search among."""
        if not filters:
            return None
        scope, args = _scope(sessions, filters)
        seqs = self._read(
            f"SELECT seq FROM memories m WHERE account_id = ?{scope}", (account_id, *args)
        )
        return np.fromiter((r[0] for r in seqs), dtype=np.int64, count=len(seqs))

    def keyword_search(
        self,
        account_id: str,
        sessions: list[str] | None,
        terms: list[str],
        k: int,
        now: float,
        filters: Filters | None,
    ) -> list[tuple[str, float]]:
        if not terms:
            return []
        # the account's in-memory index (sqlite_keywords.py); FTS5 when it has none
        if self.keyword_index_max_rows > 0:
            allowed = self._allowed_seqs(account_id, sessions, filters)
            found = self.indexed_keyword_search(account_id, sessions, terms, k, now, allowed)
            if found is not None:
                return found
        rows = self._read(*keyword_query(account_id, sessions, terms, k, now, filters))
        return [(r[0], float(r[1])) for r in rows]


def keyword_query(
    account_id: str,
    sessions: list[str] | None,
    terms: list[str],
    k: int,
    now: float,
    filters: Filters | None,
) -> tuple[str, list[Any]]:
    """The full-text search as (SQL, arguments).

    ``CROSS JOIN`` fixes the plan: the FTS match runs once and each hit is looked up by its
    rowid, then checked against the account, sessions and filters. Left to itself, SQLite
    switched with many filters to walking the memories and running the match and its
    ranking once per row, which took minutes and held the store (issue 14, item 1).
    """
    match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
    scope, args = _scope(sessions, filters)
    # FTS5's rank column is bm25() computed once per row; calling bm25() in both the
    # SELECT and the ORDER BY computed it twice (4.2 ms vs 2.5 ms at 10k memories).
    sql = (
        "SELECT m.id, -memories_fts.rank AS score FROM memories_fts"
        " CROSS JOIN memories m ON m.seq = memories_fts.rowid"
        " WHERE memories_fts MATCH ? AND m.account_id = ?"
        " AND (m.expires_at IS NULL OR m.expires_at > ?)"
        f"{scope} ORDER BY memories_fts.rank LIMIT ?"
    )
    return sql, [match, account_id, now, *args, k]


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements
