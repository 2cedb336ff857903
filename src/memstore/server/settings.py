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
    # Slow or hostile clients (issue 14, items 2 and 3; see docs/limits.md). 0 turns one off.
    header_timeout_seconds: float = 10.0  # to send the request line and headers
    body_timeout_seconds: float = 30.0  # to send the whole body, once the headers are in
    keep_alive_seconds: float = 5.0  # an idle keep-alive connection is closed after this
    limit_concurrency: int = 1000  # open connections + tasks per worker; 503 beyond
    rate_limit_per_minute: int = 6000  # requests per account (token bucket, burst = 1 minute)
    max_concurrent_per_account: int = 8  # requests of one account served at once
    concurrency_wait_seconds: float = 10.0  # a request waits this long for a slot, then 429
