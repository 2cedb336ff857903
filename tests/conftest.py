"""Shared fixtures: real stores on disk, the real local embedder, a controllable clock."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from memstore import Memstore
from memstore.embedding import load_embedder
from memstore.engine import MemoryEngine
from memstore.stores.sqlite import SQLiteStore
from tests.servers import ServerProcess

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")


class Clock:
    """A clock tests can move forward; starts at the real time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """One real `memstore serve` process on a free loopback port, shared by a test run."""
    proc = ServerProcess(tmp_path_factory.mktemp("server") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture
def ms(tmp_path) -> Iterator[Memstore]:
    """The SDK on an embedded store in this test's directory."""
    store = Memstore.local(tmp_path / "memstore")
    yield store
    store.close()


@pytest.fixture(params=["local", "server"])
def backend_ms(request, tmp_path) -> Iterator[Memstore]:
    """The SDK in each mode: embedded, and over HTTP to the real `memstore serve` (as a new
    account)."""
    if request.param == "local":
        store = Memstore.local(tmp_path / "memstore")
    else:
        server = request.getfixturevalue("server")
        store = Memstore(api_key=server.key(f"ms-{uuid.uuid4().hex[:8]}").key, base_url=server.url)
    yield store
    store.close()


@pytest.fixture(scope="session")
def embedder():
    return load_embedder()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _start_pgserver(base: Path) -> tuple[str, object]:
    """A throwaway PostgreSQL 16 + pgvector from the pgserver wheel; returns (URL, server)."""
    runtime = Path(tempfile.gettempdir()) / f"memstore-xdg-{os.geteuid()}"
    runtime.mkdir(mode=0o700, exist_ok=True)
    runtime.chmod(0o700)
    # pgserver picks its lock directory at import time, from a private XDG_RUNTIME_DIR.
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import pgserver

    server = pgserver.get_server(base / "pgdata", cleanup_mode="delete")
    url = server.get_uri()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(f"ALTER SYSTEM SET {setting} = off")  # test data only
        conn.execute("SELECT pg_reload_conf()")
    return url, server


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def pg_template() -> Iterator[tuple[str, str]]:
    """(server URL, template database): a migrated schema each test database starts from."""
    import psycopg

    from memstore.stores.postgres import migrate

    server = None
    url = os.environ.get("MEMSTORE_TEST_DATABASE_URL")
    if not url:
        # Not under pytest's basetemp: concurrent pytest runs reset it to mode 700, which
        # locks out the server's own system user.
        base = Path(tempfile.mkdtemp(prefix="memstore-pg-"))
        url, server = _start_pgserver(base)
    template = f"memstore_template_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {template}")
        conn.execute(f"CREATE DATABASE {template}")
    migrate(_with_database(url, template))
    yield url, template
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {template}")
    if server is not None:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


_databases = itertools.count()


def _database(pg_template: tuple[str, str], template: str | None) -> Iterator[str]:
    """A new database for one test (a copy of ``template``, or empty), dropped after it."""
    import psycopg

    url, _ = pg_template
    name = f"memstore_test_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    yield _with_database(url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_template) -> Iterator[str]:
    """The URL of a fresh, migrated, empty database for this test alone."""
    yield from _database(pg_template, pg_template[1])


@pytest.fixture
def empty_pg_url(pg_template) -> Iterator[str]:
    """The URL of a new database with nothing in it (not even the schema)."""
    yield from _database(pg_template, None)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path) -> Iterator[object]:
    """Every store backend; each test using it runs once per backend."""
    if request.param == "sqlite":
        s = SQLiteStore.open_dir(tmp_path / "data")
    else:
        from memstore.stores.postgres import PostgresStore

        s = PostgresStore(request.getfixturevalue("pg_url"), pool_size=4)
    yield s
    s.close()


@pytest.fixture
def engine(store, embedder, clock) -> MemoryEngine:
    eng = MemoryEngine(store, embedder, clock=clock)
    eng.ensure_account("acct_a")
    eng.ensure_account("acct_b")
    return eng
