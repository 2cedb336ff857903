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
    # -- operations (memstore serve --metrics / --log-format / --log-user-data; docs/operations.md)
    metrics: bool = False  # GET /metrics in the Prometheus text format; 404 when off
    log_format: str = "text"  # or "json": one object per line
    log_user_data: bool = False  # debug only: the access log adds the full URL and client
