"""Export and import an account's memories as JSON Lines.

The first line is a header naming the embedder; each later line is one memory with its
vector (base64 float32). Import reuses the vectors when the embedder matches and
re-embeds the text when it does not.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO, Any

import numpy as np

from memstore import validation as check
from memstore.engine import MemoryEngine, content_hash
from memstore.errors import ValidationError
from memstore.stores.base import MemoryRow

FORMAT = "memstore-export/1"
IMPORT_BATCH = 100


def export_jsonl(engine: MemoryEngine, account_id: str, out: IO[str]) -> int:
    """Write every live memory of the account, oldest first; returns how many."""
    out.write(
        json.dumps({"format": FORMAT, "embedder": engine.embedder.name, "dim": engine.embedder.dim})
        + "\n"
    )
    count, cursor, pages = 0, None, []
    while True:
        page = engine.list(account_id, session="*", limit=1000, cursor=cursor)
        pages.append(page.memories)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    for memories in reversed(pages):
        ordered = list(reversed(memories))
        vectors = engine.store.vectors(account_id, [m.id for m in ordered])
        for m in ordered:
            record = m.model_dump(mode="json")
            vector = vectors.get(m.id)
            if vector is not None:
                record["embedding"] = base64.b64encode(vector.astype(np.float32).tobytes()).decode()
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def _parse_time(value: Any) -> float | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _records(lines: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"line {number} is not JSON: {exc.msg}") from None


def import_jsonl(
    engine: MemoryEngine,
    account_id: str,
    lines: IO[str],
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int, bool]:
    """Import a file written by ``export_jsonl`` (or plain {"content", ...} lines).

    Returns (imported, skipped as duplicates, re-embedded).
    """
    reuse = False
    imported = skipped = 0
    batch: list[MemoryRow] = []
    vectors: list[np.ndarray | None] = []

    def flush() -> None:
        nonlocal imported, skipped
        if not batch:
            return
        use = reuse and all(v is not None for v in vectors)
        results = engine.import_rows(account_id, batch, np.stack(vectors) if use else None)
        imported += sum(not r.deduplicated for r in results)
        skipped += sum(r.deduplicated for r in results)
        if progress:
            progress(len(batch))
        batch.clear()
        vectors.clear()

    now = engine.clock()
    for number, record in _records(lines):
        if number == 1 and "format" in record:
            reuse = (record.get("embedder"), record.get("dim")) == (
                engine.embedder.name,
                engine.embedder.dim,
            )
            continue
        text = check.content(record.get("content"), f"line {number}: content")
        blob = record.get("embedding")
        batch.append(
            MemoryRow(
                id="",
                account_id=account_id,
                session=check.session(record.get("session")),
                content=text,
                content_hash=content_hash(text),
                metadata=check.metadata(record.get("metadata")),
                created_at=_parse_time(record.get("created_at")) or now,
                updated_at=_parse_time(record.get("updated_at")) or now,
                expires_at=_parse_time(record.get("expires_at")),
            )
        )
        vectors.append(
            np.frombuffer(base64.b64decode(blob), dtype=np.float32) if reuse and blob else None
        )
        if len(batch) >= IMPORT_BATCH:
            flush()
    flush()
    return imported, skipped, not reuse
