"""Every setting of memstore in one place: the ``MEMSTORE_*`` environment variables.

``Settings()`` reads them once; the server (``create_app``), the CLI and the SDK (local and
remote mode) take their defaults from it, and explicit arguments win over it. The README's
"Configuration" table lists the same fields (a test keeps the two in step).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8420
DEFAULT_BASE_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_DATA_DIR = "memstore-data"
DEFAULT_ACCOUNT = "default"  # the CLI's, Memstore.local's and the first key's account


class Settings(BaseSettings):
    # An empty variable counts as unset (as click treated the CLI's flags' variables).
    model_config = SettingsConfigDict(env_prefix="MEMSTORE_", extra="ignore", env_ignore_empty=True)

    data_dir: str = Field(DEFAULT_DATA_DIR, description="Directory of the embedded SQLite store.")
    database_url: str | None = Field(
        None, description="postgresql://... to use PostgreSQL + pgvector instead of SQLite."
    )
    database_pool_size: int = Field(10, description="PostgreSQL connections per server process.")
    account: str = Field(DEFAULT_ACCOUNT, description="Account the CLI and Memstore.local work in.")
    embedder: str | None = Field(None, description="Embedding model: e5-small-q4 or st:<model>.")
    embed_handles: int = Field(
        0, description="Model handles of the default embedder (0: one per core, at most 4)."
    )
    embed_threads: int = Field(
        0,
        description="OpenMP threads of a text the default embedder embeds while otherwise idle"
        " (a lone query or remember; 1: always one; 0: as many as handles, at most the cores).",
    )
    max_body_bytes: int = Field(1024 * 1024, description="Largest request body the server reads.")
    api_key: str | None = Field(None, description="API key of the SDK's remote mode.")
    base_url: str = Field(DEFAULT_BASE_URL, description="Server URL of the SDK's remote mode.")
    # Slow or hostile clients (issue 14, items 2 and 3; see docs/limits.md). 0 turns one off.
    header_timeout_seconds: float = Field(
        10.0, description="Seconds a client has to send the request line and headers."
    )
    body_timeout_seconds: float = Field(
        30.0, description="Seconds a client has to send the whole body, once the headers are in."
    )
    keep_alive_seconds: float = Field(
        5.0, description="An idle keep-alive connection is closed after this many seconds."
    )
    limit_concurrency: int = Field(
        1000, description="Open connections + tasks per worker; 503 beyond (0: no limit)."
    )
    rate_limit_per_minute: int = Field(
        6000, description="Requests per account per minute (token bucket; 0: no limit)."
    )
    max_concurrent_per_account: int = Field(
        8, description="Requests of one account served at once (0: no limit)."
    )
    concurrency_wait_seconds: float = Field(
        10.0, description="How long a request waits for its account's slot before a 429."
    )
    keyword_index_max_rows: int = Field(
        1_000_000,
        description="SQLite: memories of one account above which keyword search stays on FTS5"
        " instead of the in-memory index (0: always FTS5; docs/keyword-index.md).",
    )
    vector_codes_min_rows: int = Field(
        20_000,
        description="SQLite: memories of one account from which dense search shortlists with"
        " int8 codes before its exact float32 scoring, when simsimd is installed (0: never;"
        " docs/performance.md).",
    )
    # Operating it (memstore serve --metrics / --log-format / --log-user-data; see
    # docs/operations.md).
    metrics: bool = Field(False, description="Serve GET /metrics (Prometheus); 404 when off.")
    log_format: str = Field("text", description="Access log format: text or json.")
    log_user_data: bool = Field(
        False, description="Debug only: the access log adds the full URL and client address."
    )
