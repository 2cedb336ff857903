"""Storage backends: SQLite (default, embedded) and PostgreSQL + pgvector (scale-out)."""

from memstore.stores.base import ApiKeyRow, MemoryRow, Store

__all__ = ["ApiKeyRow", "MemoryRow", "Store", "open_store"]


def open_store(*, data_dir: str | None = None, database_url: str | None = None) -> Store:
    """Open PostgreSQL at ``database_url``, else the SQLite file in ``data_dir``."""
    if database_url:
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("database_url must start with postgresql://")
        from memstore.stores.postgres import PostgresStore

        return PostgresStore(database_url)
    from memstore.stores.sqlite import SQLiteStore

    return SQLiteStore.open_dir(data_dir or "memstore-data")
