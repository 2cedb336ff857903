"""The scale-out store: PostgreSQL with pgvector, shared by any number of API processes.

Vector search is exact over the rows in scope (account, sessions, live, filters) while
that scope holds at most ``exact_limit`` rows: pgvector 0.6's HNSW index post-filters,
so a filtered index scan silently loses most of a small session's true neighbours. Only
scopes larger than that use the HNSW index, falling back to exact when post-filtering
leaves fewer than ``k`` rows. Keywords use a generated tsvector with a GIN index.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from memstore.stores.accounts import AccountsAndKeys, merge_local_into_default
from memstore.stores.base import DuplicateError, Filters, FollowUp, MemoryRow, context_offsets
from memstore.stores.hygiene import Hygiene
from memstore.stores.idempotency import SCHEMA as IDEMPOTENCY_SCHEMA
from memstore.stores.idempotency import IdempotencyRecords
from memstore.stores.pg_bounds import bounds_ef, score_floors
from memstore.stores.pg_follow_up import KeptAnswers, answer_key, guess_ef, guess_top
from memstore.stores.pg_session_sums import SCHEMA as SESSION_SUMS_SCHEMA
from memstore.stores.pg_session_sums import SessionSums, SumChanges, move_sums, sent_vector
from memstore.stores.stats import InstallStats
from memstore.stores.supersession import SCHEMA as SUPERSESSION_SCHEMA
from memstore.stores.supersession import Supersession

# pg_advisory_xact_lock key serialising schema changes across processes ("memstore").
SCHEMA_LOCK = 0x6D656D73746F7265
EXACT_LIMIT = 100_000
EF_SEARCH = 400
# A follow-up search (recall's local list) joins the plain query's exact pass when the HNSW
# index guesses the plain query's best hits right (checked against that pass): worth its
# ~2-5 ms from GUESS_MIN_ROWS rows in scope, where a pass costs more. The index
# post-filters, so it is asked for GUESS_EF / (the scope's share of the table) candidates,
# and not at all past GUESS_MAX_EF (a scope too small a part of the table).
GUESS_MIN_ROWS = 2_000
GUESS_EF = 50
GUESS_MAX_EF = 400
KEPT_ANSWERS = 32  # follow-up answers waiting for their dense_search (per store)
# From FLOORS_MIN_ROWS rows in scope, the exact pass keeps only the rows above score floors
# the HNSW index finds (pg_bounds.py): keeping and sorting every row costs about as much
# as the scan there.
FLOORS_MIN_ROWS = 30_000
# The exact pass plans with this random_page_cost (PostgreSQL's default, 4, prices a read
# from a spinning disk): memstore's rows are meant to sit in memory, where reading a scope's
# own pages through its index beats scanning the table once the scope is clustered (the
# planner knows from the index's correlation). Set for the pass's transaction only.
PASS_RANDOM_PAGE_COST = 1.1
HNSW_INDEX = "memories_embedding_hnsw"

VECTOR_STORAGE = "ALTER TABLE memories ALTER COLUMN embedding SET STORAGE MAIN;"

MIGRATIONS: list[str] = [
    # 1: initial schema (the embedding column gets its dimension from set_embedder_info)
    """
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
    CREATE TABLE accounts (
        id text PRIMARY KEY,
        name text NOT NULL UNIQUE,
        plan text NOT NULL,
        created_at double precision NOT NULL
    );
    CREATE TABLE api_keys (
        id text PRIMARY KEY,
        account_id text NOT NULL REFERENCES accounts(id),
        prefix text NOT NULL,
        key_hash text NOT NULL UNIQUE,
        created_at double precision NOT NULL,
        revoked_at double precision
    );
    CREATE TABLE usage (
        account_id text NOT NULL,
        period text NOT NULL,
        ops bigint NOT NULL,
        PRIMARY KEY (account_id, period)
    );
    CREATE TABLE memories (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text NOT NULL UNIQUE,
        account_id text COLLATE "C" NOT NULL,
        session text COLLATE "C" NOT NULL,
        content text NOT NULL,
        content_hash text NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}',
        embedding vector NOT NULL,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL,
        expires_at double precision,
        tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
    );
    CREATE UNIQUE INDEX memories_dedup ON memories (account_id, session, content_hash);
    CREATE INDEX memories_by_session ON memories (account_id, session, seq);
    CREATE INDEX memories_by_account ON memories (account_id, seq);
    CREATE INDEX memories_by_expiry ON memories (expires_at) WHERE expires_at IS NOT NULL;
    CREATE INDEX memories_tsv ON memories USING gin (tsv);
    CREATE AGGREGATE tsquery_any (tsquery) (SFUNC = tsquery_or, STYPE = tsquery);
    """,
    # 2: answers to writes sent with an Idempotency-Key
    IDEMPOTENCY_SCHEMA.format(real="double precision"),
    # 3: one default account (see stores/accounts.py)
    merge_local_into_default(
        now="extract(epoch FROM now())", new_id="'acc_' || substr(md5(random()::text), 1, 16)"
    ),
    # 4: admin keys (the console's key management) and when each key was last used
    """
    ALTER TABLE api_keys ADD COLUMN admin boolean NOT NULL DEFAULT false,
        ADD COLUMN last_used_at double precision;
    """,
    # 5: operations per UTC day (the console's usage chart), counted by a trigger on usage,
    # so the very statement that charges the monthly cap also counts the day
    """
    CREATE TABLE usage_daily (
        account_id text NOT NULL,
        day text NOT NULL,
        ops bigint NOT NULL,
        PRIMARY KEY (account_id, day)
    );
    CREATE FUNCTION usage_daily_count() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO usage_daily AS d (account_id, day, ops)
        VALUES (
            NEW.account_id,
            to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
            NEW.ops - CASE WHEN TG_OP = 'UPDATE' THEN OLD.ops ELSE 0 END
        )
        ON CONFLICT (account_id, day) DO UPDATE SET ops = d.ops + excluded.ops;
        RETURN NEW;
    END $$;
    CREATE TRIGGER usage_daily_count AFTER INSERT OR UPDATE OF ops ON usage
        FOR EACH ROW EXECUTE FUNCTION usage_daily_count();
    """,
    # 6: superseded memories, recall hits and purge counts (docs/memory-over-time.md)
    """
    ALTER TABLE memories ADD COLUMN IF NOT EXISTS superseded_at double precision,
        ADD COLUMN IF NOT EXISTS superseded_by text;
    """
    + SUPERSESSION_SCHEMA.format(int="bigint", real="double precision"),
    # 7: per-session sums of the vectors, for recall's centring mean (pg_session_sums.py)
    SESSION_SUMS_SCHEMA,
    # 8: the exact vector scan of a scope (docs/performance-server.md). The planner took
    # account and session for independent, so a 1% session of a big account was estimated
    # at half its rows and scanned through the whole account: joint statistics let it use
    # memories_by_session. And a vector past the 2 KB row threshold went out of line
    # (pgvector's default storage), costing a TOAST lookup per row scanned: MAIN keeps it
    # in the row unless nothing else can make room (new and updated rows).
    """
    CREATE STATISTICS IF NOT EXISTS memories_account_session ON account_id, session
        FROM memories;
    """
    + VECTOR_STORAGE,
]

_COLUMNS = (
    "m.seq, m.id, m.account_id, m.session, m.content, m.content_hash, m.metadata, m.created_at,"
    " m.updated_at, m.expires_at, m.superseded_at, m.superseded_by"
)
_LIVE = "(m.expires_at IS NULL OR m.expires_at > %s)"


def _row(r: tuple[Any, ...]) -> MemoryRow:
    return MemoryRow(
        seq=r[0],
        id=r[1],
        account_id=r[2],
        session=r[3],
        content=r[4],
        content_hash=r[5],
        metadata=r[6],
        created_at=r[7],
        updated_at=r[8],
        expires_at=r[9],
        superseded_at=r[10],
        superseded_by=r[11],
    )


def _scope(
    account_id: str, sessions: list[str] | None, now: float, filters: Filters | None
) -> tuple[str, list[Any]]:
    """WHERE conditions (table alias m) with the SQLite store's filter semantics: a filter
    value matches only a JSON value of the same type (an int never matches 1.0 or true)."""
    sql, args = f"m.account_id = %s AND {_LIVE}", [account_id, now]
    if sessions is not None:
        sql += " AND m.session = ANY(%s)"
        args.append(sessions)
    for key, value in (filters or {}).items():
        sql += " AND m.metadata -> %s = %s::jsonb"
        args += [key, json.dumps(value)]
        if isinstance(value, int | float) and not isinstance(value, bool):
            # jsonb compares numbers by value; the literal's spelling keeps int vs real apart.
            sql += " AND m.metadata ->> %s " + ("!~" if isinstance(value, int) else "~")
            sql += " '[.eE]'"
            args.append(key)
    return sql, args


class PostgresStore(
    AccountsAndKeys, IdempotencyRecords, InstallStats, Supersession, Hygiene, SessionSums
):
    """Store over a PostgreSQL database with pgvector (see module docstring)."""

    param = "%s"

    def __init__(
        self,
        database_url: str,
        *,
        exact_limit: int = EXACT_LIMIT,
        ef_search: int = EF_SEARCH,
        pool_size: int = 10,
        guess_min_rows: int | None = None,
        floors_min_rows: int | None = None,
    ) -> None:
        self.database_url = database_url
        self.exact_limit = exact_limit
        self.ef_search = ef_search
        self.guess_min_rows = GUESS_MIN_ROWS if guess_min_rows is None else guess_min_rows
        self.floors_min_rows = FLOORS_MIN_ROWS if floors_min_rows is None else floors_min_rows
        self._kept = KeptAnswers(KEPT_ANSWERS)  # follow-up answers (pg_follow_up.py)
        migrate(database_url)
        self._pool = ConnectionPool(
            database_url,
            min_size=1,
            max_size=pool_size,
            configure=register_vector,
            open=True,
        )

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        """A pooled connection inside one transaction (committed on success); a taken
        unique key -> DuplicateError."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.errors.UniqueViolation as exc:
            raise DuplicateError(str(exc)) from exc

    def _read(
        self, sql: str, args: Sequence[Any] | Mapping[str, Any] = (), *, binary: bool = False
    ) -> list[tuple[Any, ...]]:
        with self._tx() as conn:
            # One statement needs no BEGIN/COMMIT around it: two round trips fewer per read.
            conn.autocommit = True
            try:
                return conn.execute(sql, args, binary=binary).fetchall()
            finally:
                if not conn.closed:
                    conn.autocommit = False

    def close(self) -> None:
        self._pool.close()

    def check(self) -> None:
        self._read("SELECT 1")

    def database_bytes(self) -> int:
        return int(self._read("SELECT pg_database_size(current_database())")[0][0])

    # -- store identity
    def embedder_info(self) -> tuple[str, int] | None:
        rows = dict(
            self._read("SELECT key, value FROM meta WHERE key IN ('embedder_name', 'embedder_dim')")
        )
        if "embedder_name" not in rows:
            return None
        return rows["embedder_name"], int(rows["embedder_dim"])

    def set_embedder_info(self, name: str, dim: int) -> None:
        """Record the embedder and give the vector column its dimension and HNSW index."""
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('embedder_name', %s), ('embedder_dim', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (name, str(dim)),
            )
            conn.execute(f"ALTER TABLE memories ALTER COLUMN embedding TYPE vector({int(dim)})")
            conn.execute(VECTOR_STORAGE)  # a new type brings back its default storage
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {HNSW_INDEX} ON memories"
                " USING hnsw (embedding vector_cosine_ops)"
            )

    def install_secret(self, name: str, candidate: str) -> str:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                (name, candidate),
            )
            row = conn.execute("SELECT value FROM meta WHERE key = %s", (name,)).fetchone()
            assert row is not None  # inserted just above, or already there
            return str(row[0])

    # -- accounts, keys, usage
    def _change(self, sql: str, args: Any) -> int:
        with self._tx() as conn:
            return conn.execute(sql, args).rowcount

    def add_usage(self, account_id: str, period: str, ops: int, limit: int | None) -> int | None:
        # One statement: the conflicting row is locked and the cap re-checked on its latest
        # version, so any number of processes can never push the total past ``limit``.
        rows = self._read(
            "INSERT INTO usage AS u (account_id, period, ops) SELECT %(a)s, %(p)s, %(n)s"
            " WHERE %(lim)s::bigint IS NULL OR %(n)s <= %(lim)s::bigint"
            " ON CONFLICT (account_id, period) DO UPDATE SET ops = u.ops + excluded.ops"
            " WHERE %(lim)s::bigint IS NULL OR u.ops + excluded.ops <= %(lim)s::bigint"
            " RETURNING ops",
            {"a": account_id, "p": period, "n": ops, "lim": limit},
        )
        return int(rows[0][0]) if rows else None

    def get_usage(self, account_id: str, period: str) -> int:
        rows = self._read(
            "SELECT ops FROM usage WHERE account_id = %s AND period = %s", (account_id, period)
        )
        return int(rows[0][0]) if rows else 0

    # -- memories
    def find_duplicates(
        self, account_id: str, keys: list[tuple[str, str]], now: float
    ) -> dict[tuple[str, str], MemoryRow]:
        if not keys:
            return {}
        sessions, hashes = zip(*set(keys), strict=True)
        rows = self._read(
            f"SELECT {_COLUMNS} FROM memories m"
            " JOIN unnest(%s::text[], %s::text[]) AS k(session, content_hash)"
            " ON m.session = k.session AND m.content_hash = k.content_hash"
            f" WHERE m.account_id = %s AND {_LIVE}",
            (list(sessions), list(hashes), account_id, now),
        )
        return {(r[3], r[5]): _row(r) for r in rows}

    def insert(self, rows: list[MemoryRow], vectors: np.ndarray) -> list[tuple[MemoryRow, bool]]:
        out: list[tuple[MemoryRow, bool]] = []
        sums = SumChanges()
        with self._tx() as conn:
            for row, vector in zip(rows, vectors, strict=True):
                # An expired twin no longer counts: it makes way for the new memory.
                for (twin,) in conn.execute(
                    "DELETE FROM memories WHERE account_id = %s AND session = %s"
                    " AND content_hash = %s AND expires_at IS NOT NULL AND expires_at <= %s"
                    " RETURNING embedding",
                    (row.account_id, row.session, row.content_hash, row.created_at),
                ):
                    sums.remove(row.account_id, row.session, twin)
                inserted = conn.execute(
                    "INSERT INTO memories (id, account_id, session, content, content_hash,"
                    " metadata, embedding, created_at, updated_at, expires_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (account_id, session, content_hash) DO NOTHING RETURNING seq",
                    (
                        row.id,
                        row.account_id,
                        row.session,
                        row.content,
                        row.content_hash,
                        Jsonb(row.metadata),
                        np.asarray(vector, dtype=np.float32),
                        row.created_at,
                        row.updated_at,
                        row.expires_at,
                    ),
                ).fetchone()
                if inserted:
                    out.append((MemoryRow(**{**row.__dict__, "seq": inserted[0]}), False))
                    sums.add(row.account_id, row.session, vector)
                else:
                    existing = conn.execute(
                        f"SELECT {_COLUMNS} FROM memories m WHERE account_id = %s"
                        " AND session = %s AND content_hash = %s",
                        (row.account_id, row.session, row.content_hash),
                    ).fetchone()
                    assert existing is not None  # the conflicting row, committed before us
                    out.append((_row(existing), True))
            move_sums(conn, sums)
        return out

    def get(self, account_id: str, memory_id: str, now: float) -> MemoryRow | None:
        rows = self._read(
            f"SELECT {_COLUMNS} FROM memories m WHERE id = %s AND account_id = %s AND {_LIVE}",
            (memory_id, account_id, now),
        )
        return _row(rows[0]) if rows else None

    def get_many(self, account_id: str, ids: list[str], now: float) -> dict[str, MemoryRow]:
        if not ids:
            return {}
        rows = self._read(
            f"SELECT {_COLUMNS} FROM memories m WHERE account_id = %s AND {_LIVE} AND id = ANY(%s)",
            (account_id, now, ids),
        )
        return {r[1]: _row(r) for r in rows}

    def vectors(self, account_id: str, ids: list[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        # pgvector's binary form (vector_send: int16 dim, int16 unused, big-endian float4s),
        # decoded by numpy: parsing text took 28 ms for 250 vectors, a Vector per row 3 ms.
        rows = self._read(
            "SELECT id, vector_send(embedding) FROM memories WHERE account_id = %s"
            " AND id = ANY(%s)",
            (account_id, ids),
            binary=True,
        )
        return {r[0]: sent_vector(r[1]) for r in rows}

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
        rows = self._read(*neighbors_sql(account_id, ids, radius, now, filters))
        return context_offsets(rows, window)

    def list_memories(
        self,
        account_id: str,
        sessions: list[str] | None,
        limit: int,
        before_seq: int | None,
        now: float,
    ) -> list[MemoryRow]:
        scope, args = _scope(account_id, sessions, now, None)
        rows = self._read(
            f"SELECT {_COLUMNS} FROM memories m WHERE {scope} AND m.seq < %s"
            " ORDER BY m.seq DESC LIMIT %s",
            (*args, before_seq if before_seq is not None else 2**62, limit),
        )
        return [_row(r) for r in rows]

    def update(self, row: MemoryRow, vector: np.ndarray | None) -> bool:
        sql = (
            "UPDATE memories SET content = %s, content_hash = %s, metadata = %s,"
            " updated_at = %s, expires_at = %s"
        )
        args: list[Any] = [
            row.content,
            row.content_hash,
            Jsonb(row.metadata),
            row.updated_at,
            row.expires_at,  # a duplicate remember can set a new expiry (issue 14, item 9)
        ]
        if vector is not None:
            sql += ", embedding = %s"
            args.append(np.asarray(vector, dtype=np.float32))
        with self._tx() as conn:
            old = None
            if vector is not None:
                old = conn.execute(
                    "SELECT session, embedding FROM memories WHERE id = %s AND account_id = %s"
                    " FOR UPDATE",
                    (row.id, row.account_id),
                ).fetchone()
            cur = conn.execute(
                sql + " WHERE id = %s AND account_id = %s", (*args, row.id, row.account_id)
            )
            if old is not None and cur.rowcount:
                sums = SumChanges()
                sums.remove(row.account_id, old[0], old[1])
                sums.add(row.account_id, old[0], vector)
                move_sums(conn, sums)
            return cur.rowcount > 0

    def delete(self, account_id: str, memory_id: str) -> bool:
        with self._tx() as conn:
            self._forget_hits(conn, account_id, "id = ?", (memory_id,))
            gone = conn.execute(
                "DELETE FROM memories WHERE id = %s AND account_id = %s"
                " RETURNING session, embedding",
                (memory_id, account_id),
            ).fetchall()
            sums = SumChanges()
            for session, vector in gone:
                sums.remove(account_id, session, vector)
            move_sums(conn, sums)
            return bool(gone)

    def delete_session(self, account_id: str, session: str) -> int:
        with self._tx() as conn:
            self._forget_hits(conn, account_id, "session = ?", (session,))
            ((n, total),) = conn.execute(
                "WITH gone AS (DELETE FROM memories WHERE account_id = %s AND session = %s"
                " RETURNING embedding) SELECT count(*), sum(embedding) FROM gone",
                (account_id, session),
            ).fetchall()
            if n:
                sums = SumChanges()
                sums.remove(account_id, session, total, n)
                move_sums(conn, sums)
            return int(n)

    def sessions(self, account_id: str, now: float) -> list[tuple[str, int, float]]:
        rows = self._read(
            "SELECT session, count(*), max(updated_at) FROM memories m"
            f" WHERE account_id = %s AND {_LIVE} GROUP BY session ORDER BY session",
            (account_id, now),
        )
        return [(r[0], int(r[1]), float(r[2])) for r in rows]

    def purge_expired(self, account_id: str, now: float, session: str | None = None) -> int:
        where, args = "expires_at <= ?", list[Any]([now])
        if session is not None:
            where += " AND session = ?"
            args.append(session)
        sql = self._q(f"DELETE FROM memories WHERE account_id = ? AND {where}")
        with self._tx() as conn:
            self._forget_hits(conn, account_id, where, args)
            per_session = conn.execute(
                f"WITH gone AS ({sql} RETURNING session, embedding)"
                " SELECT session, count(*), sum(embedding) FROM gone GROUP BY session",
                (account_id, *args),
            ).fetchall()
            self._count_purged(conn, account_id, [s for s, n, _ in per_session for _ in range(n)])
            sums = SumChanges()
            for session, n, total in per_session:
                sums.remove(account_id, session, total, n)
            move_sums(conn, sums)
            return sum(n for _, n, _ in per_session)

    # -- search
    def dense_search(
        self,
        account_id: str,
        sessions: list[str] | None,
        vector: np.ndarray,
        k: int,
        now: float,
        filters: Filters | None,
    ) -> list[tuple[str, float]]:
        if k <= 0 or sessions == []:
            return []
        kept = self._kept.take(answer_key(account_id, sessions, vector, k, now, filters))
        if kept is not None:  # scored in the pass of dense_search_many (pg_follow_up.py)
            return kept
        scope, args = _scope(account_id, sessions, now, filters)
        query = np.asarray(vector, dtype=np.float32)
        with self._tx() as conn:
            if self._scope_is_big(conn, account_id, sessions):
                conn.execute(
                    "SELECT set_config('hnsw.ef_search', %s, true)", (str(self.ef_search),)
                )
                rows = conn.execute(
                    f"SELECT m.id, 1 - (m.embedding <=> %s) FROM memories m WHERE {scope}"
                    " ORDER BY m.embedding <=> %s LIMIT %s",
                    (query, *args, query, k),
                ).fetchall()
                if len(rows) >= k:
                    return [(r[0], float(r[1])) for r in rows]
            # cosine_distance() (unlike <=>) cannot use the HNSW index: the planner scans
            # the scope through the btree indexes and sorts every row in it — exact.
            rows = conn.execute(
                f"SELECT m.id, 1 - cosine_distance(m.embedding, %s) AS score FROM memories m"
                f" WHERE {scope} ORDER BY score DESC, m.seq LIMIT %s",
                (query, *args, k),
            ).fetchall()
        return [(r[0], float(r[1])) for r in rows]

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
        """Exact scopes: one scan scores the rows against every vector (reading the rows,
        not the cosines, is most of a search), each vector's top ``k`` ordered as in
        ``dense_search``, and ``follow`` too when the HNSW index guesses its hits right
        (pg_follow_up.py); from ``floors_min_rows`` rows, only rows above the index's score
        floors are kept for sorting (pg_bounds.py). Scopes big enough for the HNSW index:
        one search per vector. ``shift`` is not needed here."""
        if k <= 0 or sessions == []:
            return [[] for _ in vectors]
        queries = [np.asarray(v, dtype=np.float32) for v in vectors]
        scope, args = _scope(account_id, sessions, now, filters)
        guessed: dict[str, np.ndarray] | None = None
        extra = None
        with self._tx() as conn:  # one transaction: the guess's settings end with it
            table, in_scope = self._sizes(conn, account_id, sessions)
            big = self._scope_is_big(conn, account_id, sessions, table)
            if follow is not None and not big and not filters:
                ef = guess_ef(in_scope, table, self.guess_min_rows, GUESS_EF, GUESS_MAX_EF)
                if ef is not None:
                    guessed = guess_top(conn, scope, args, queries[0], follow.top, ef)
            if follow is not None and guessed is not None:
                extra = follow.query(guessed)
                if extra is not None:
                    queries.append(np.asarray(extra, dtype=np.float32))
            if len(queries) >= 2 and not big:
                ef = bounds_ef(in_scope, table, k, self.floors_min_rows, GUESS_MAX_EF)
                floors = None if ef is None else score_floors(conn, scope, args, queries, k, ef)
                found = _scan(conn, scope, args, queries, k, floors)
        if len(queries) < 2 or big:
            return [self.dense_search(account_id, sessions, v, k, now, filters) for v in vectors]
        if extra is not None and guessed is not None:
            answer = found.pop()
            if [mid for mid, _ in found[0][: len(guessed)]] == list(guessed):
                key = answer_key(account_id, sessions, extra, k, now, filters)
                self._kept.keep(key, answer)
        return found

    def _sizes(
        self, conn: psycopg.Connection, account_id: str, sessions: list[str] | None
    ) -> tuple[float, int]:
        """(the planner's estimate of the rows in memories, -1 if never analysed; the
        memories in the account/sessions by the running sums, expired ones until purged
        and superseded ones too), in one statement: sizes to plan by. The same statement
        sets the transaction's random_page_cost to PASS_RANDOM_PAGE_COST."""
        sql = (
            "SELECT (SELECT reltuples FROM pg_class WHERE oid = 'memories'::regclass),"
            " set_config('random_page_cost', %s, true),"
            " (SELECT coalesce(sum(n), 0) FROM session_vector_sums WHERE account_id = %s"
        )
        args: list[Any] = [str(PASS_RANDOM_PAGE_COST), account_id]
        if sessions is not None:
            sql += " AND session = ANY(%s)"
            args.append(sessions)
        row = conn.execute(sql + ")", args).fetchone()
        assert row is not None  # an aggregate of scalars: one row
        return (-1.0 if row[0] is None else float(row[0])), int(row[2])

    def _scope_is_big(
        self,
        conn: psycopg.Connection,
        account_id: str,
        sessions: list[str] | None,
        table_rows: float | None = None,
    ) -> bool:
        """More than ``exact_limit`` rows in the account/sessions (ignoring expiry and filters,
        which only shrink it)? Counted index-only and never past the limit, and not at all
        while the whole table (by the planner's estimate, read unless given) is smaller."""
        if (_table_rows(conn) if table_rows is None else table_rows) <= self.exact_limit:
            return False
        where = "account_id = %s"
        args: list[Any] = [account_id]
        if sessions is not None:
            where += " AND session = ANY(%s)"
            args.append(sessions)
        size = conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM memories WHERE {where} LIMIT %s) s",
            (*args, self.exact_limit + 1),
        ).fetchone()
        return size is not None and size[0] > self.exact_limit

    def keyword_search(
        self,
        account_id: str,
        sessions: list[str] | None,
        terms: list[str],
        k: int,
        now: float,
        filters: Filters | None,
    ) -> list[tuple[str, float]]:
        if not terms or sessions == []:
            return []
        scope, args = _scope(account_id, sessions, now, filters)
        rows = self._read(keyword_sql(scope), (terms, *args, k))
        return [(r[0], float(r[1])) for r in rows if r[1] > 0]


def _scan(
    conn: psycopg.Connection,
    scope: str,
    args: list[Any],
    queries: list[np.ndarray],
    k: int,
    floors: list[float] | None = None,
) -> list[list[tuple[str, float]]]:
    """Each query's top ``k`` rows of ``scope`` from one exact pass, as ``dense_search``
    orders them. The pass keeps seqs and scores only (and with ``floors``, only the rows at
    or above one query's floor: pg_bounds.py); the ids of the winners come after."""
    n = len(queries)
    scores = ", ".join(f"1 - cosine_distance(m.embedding, %s) AS s{i}" for i in range(n))
    kept = f"SELECT m.seq, {scores} FROM memories m WHERE {scope}"
    if floors is not None:  # OFFSET 0: scored once, not again in the floors' test
        kept = f"SELECT * FROM ({kept} OFFSET 0) x WHERE " + " OR ".join(
            f"s{i} >= %s" for i in range(n)
        )
    tops = " UNION ALL ".join(
        f"(SELECT {i} AS i, seq, s{i} AS s FROM scored ORDER BY s{i} DESC, seq LIMIT %s)"
        for i in range(n)
    )
    rows = conn.execute(
        f"WITH scored AS MATERIALIZED ({kept}), best AS ({tops})"
        " SELECT b.i, m.id, b.seq, b.s FROM best b JOIN memories m ON m.seq = b.seq",
        (*queries, *args, *(floors or []), *[k] * n),
    ).fetchall()
    found: list[list[tuple[float, int, str]]] = [[] for _ in queries]
    for i, memory_id, seq, score in rows:
        found[i].append((-float(score), seq, memory_id))
    return [[(mid, -neg) for neg, _, mid in sorted(one)] for one in found]


def _table_rows(conn: psycopg.Connection) -> float:
    """The planner's estimate of the rows in memories (-1: never analysed)."""
    table = conn.execute(
        "SELECT reltuples FROM pg_class WHERE oid = 'memories'::regclass"
    ).fetchone()
    return -1.0 if table is None else float(table[0])


def keyword_sql(scope: str) -> str:
    """The keyword search over ``scope`` (``_scope``'s conditions); parameters: the terms,
    the scope's, k. Each term becomes its own plainto_tsquery (a bound parameter, never
    tsquery syntax), then tsquery_any ORs them together, once: MATERIALIZED, since inlined,
    the planner may rebuild the query for every row it tests (4 ms per 1,000 rows)."""
    return (
        "WITH q AS MATERIALIZED (SELECT tsquery_any(plainto_tsquery('english', t)) AS q"
        " FROM unnest(%s::text[]) AS t)"
        " SELECT m.id, ts_rank(m.tsv, q.q) AS score FROM memories m, q"
        f" WHERE m.tsv @@ q.q AND {scope} ORDER BY score DESC, m.seq LIMIT %s"
    )


def neighbors_sql(
    account_id: str, ids: list[str], radius: int, now: float, filters: Filters | None
) -> tuple[str, list[Any]]:
    """The ``radius`` live rows before and after each of ``ids`` in its session. Each side
    walks memories_by_session from the row's (session, seq): the rows next to it in that
    order, of its session first, then of the next session (dropped outside the LIMIT).
    Written as ``m.session = c.session ... ORDER BY m.seq``, the planner could walk the
    whole table by seq instead, testing every row for account and session (a 1% session:
    ~700 rows per candidate, 40 ms a recall at 10k)."""
    scope, args = _scope(account_id, None, now, filters)
    sides = []
    for op, order in (("<", "DESC"), (">", "ASC")):
        sides.append(
            "SELECT c.id, n.id, n.seq - c.seq, n.created_at - c.created_at FROM memories c"
            " CROSS JOIN LATERAL (SELECT m.id, m.session, m.seq, m.created_at FROM memories m"
            f" WHERE {scope} AND (m.session, m.seq) {op} (c.session, c.seq)"
            f" ORDER BY m.session {order}, m.seq {order} LIMIT %s) n"
            " WHERE c.account_id = %s AND c.id = ANY(%s) AND n.session = c.session"
        )
    side_args = [*args, radius, account_id, ids]
    return " UNION ALL ".join(sides), side_args + side_args


def migrate(database_url: str) -> int:
    """Apply missing migrations under an advisory lock; return the schema version."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        (version,) = conn.execute(
            "SELECT coalesce(max(version), 0) FROM schema_migrations"
        ).fetchone() or (0,)
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"the database has schema version {version}, newer than this memstore "
                f"({len(MIGRATIONS)}); upgrade memstore"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            conn.execute(script.encode())  # a runtime-built script, not a literal
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))
        return max(int(version), len(MIGRATIONS))
