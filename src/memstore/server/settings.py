"""Server settings, from arguments or MEMSTORE_* environment variables."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEMSTORE_")

    data_dir: str = "memstore-data"
    database_url: str | None = None
    database_pool_size: int = 10  # PostgreSQL connections per server process
    embedder: str | None = None
    max_body_bytes: int = 1024 * 1024
