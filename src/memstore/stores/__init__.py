"""Storage backends: SQLite (default, embedded) and PostgreSQL + pgvector (scale-out)."""

from memstore.stores.base import ApiKeyRow, MemoryRow, Store

__all__ = ["ApiKeyRow", "MemoryRow", "Store", "open_store"]


def open_store(
    *, data_dir: str | None = None, database_url: str | None = None, pool_size: int = 10
) -> Store:
    """Open PostgreSQL at ``database_url`` (with up to ``pool_size`` connections), else the
    SQLite file in ``data_dir``."""
    if database_url:
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("database_url must start with postgresql://")
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        from memstore.stores.postgres import PostgresStore

        return PostgresStore(database_url, pool_size=pool_size)
    from memstore.settings import DEFAULT_DATA_DIR
    from memstore.stores.sqlite import SQLiteStore

    return SQLiteStore.open_dir(data_dir or DEFAULT_DATA_DIR)
