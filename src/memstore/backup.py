"""Online backup of the SQLite store, safe while servers are writing to it.

SQLite's backup API copies the database page by page inside one read transaction: in WAL
mode that reader never blocks the writers, and the copy is the consistent state of the
moment it began (a copy made in steps would restart whenever another connection writes).
For PostgreSQL use ``pg_dump`` (see docs/backup.md).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from memstore.errors import ValidationError
from memstore.stores.sqlite import DB_FILENAME


def backup_sqlite(data_dir: str | Path, dest_dir: str | Path) -> Path:
    """Copy the store in ``data_dir`` to a new data directory ``dest_dir``; returns the file.

    The copy is checked with ``PRAGMA integrity_check`` and is a complete data directory:
    ``memstore serve --data-dir DEST`` runs on it as it is.
    """
    source = Path(data_dir) / DB_FILENAME
    if not source.is_file():
        raise ValidationError(f"no memstore database at {source}")
    target = Path(dest_dir) / DB_FILENAME
    if target.exists():
        raise ValidationError(f"{target} already exists; back up into a new directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source)
    try:
        src.execute("PRAGMA busy_timeout = 10000")
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: one consistent snapshot
            verdict = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if verdict != "ok":
                raise RuntimeError(f"the backup in {target} failed its integrity check: {verdict}")
            dst.execute("PRAGMA journal_mode = WAL")
        finally:
            dst.close()
    finally:
        src.close()
    return target
