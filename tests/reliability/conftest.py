"""Helpers shared by the reliability tests: API keys in headers, store checks on disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from memstore.stores.sqlite import DB_FILENAME


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def integrity_check(data_dir: Path) -> str:
    """SQLite's own verdict on the store file ('ok' when it is sound)."""
    conn = sqlite3.connect(data_dir / DB_FILENAME)
    try:
        return "\n".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()
