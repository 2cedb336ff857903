"""Export and import an account's memories as JSON Lines.

The first line is a header naming the embedder; each later line is one memory with its
vector (base64 float32). Import reuses the vectors when the embedder matches and
re-embeds the text when it does not; it checks every line before it writes anything, and
writes everything in one transaction.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
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


def _parse_time(value: Any, field: str) -> float | None:
    """An exported time (ISO 8601; without a zone it is UTC) as a POSIX timestamp."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be an ISO 8601 time such as 2026-01-31T12:00:00Z")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"{field} must be an ISO 8601 time such as 2026-01-31T12:00:00Z, not {value[:40]!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _vector(blob: Any, dim: int, field: str) -> np.ndarray:
    """An exported vector: base64 of ``dim`` finite float32 values, not all zero."""
    if not isinstance(blob, str):
        raise ValidationError(f"{field} must be base64 text")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{field} is not valid base64") from None
    if len(raw) != dim * 4:
        raise ValidationError(
            f"{field} has {len(raw) // 4} dimensions; this store's embedder has {dim}"
        )
    vector = np.frombuffer(raw, dtype=np.float32)
    norm = float(np.linalg.norm(vector)) if np.isfinite(vector).all() else math.nan
    if not math.isfinite(norm) or norm == 0:
        raise ValidationError(f"{field} must be finite numbers, not all zero")
    return vector / norm


def _records(lines: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"line {number} is not JSON: {exc.msg}") from None
            if not isinstance(record, dict):
                raise ValidationError(f"line {number} must be a JSON object")
            yield number, record


def _memory(record: dict[str, Any], number: int, account_id: str, now: float) -> MemoryRow:
    """One line as a row; ValidationError naming the line and field if anything is off."""
    where = f"line {number}"
    text = check.content(record.get("content"), f"{where}: content")
    try:
        created = _parse_time(record.get("created_at"), "created_at") or now
        updated = _parse_time(record.get("updated_at"), "updated_at") or created
        expires = _parse_time(record.get("expires_at"), "expires_at")
        return MemoryRow(
            id="",
            account_id=account_id,
            session=check.session(record.get("session")),
            content=text,
            content_hash=content_hash(text),
            metadata=check.metadata(record.get("metadata")),
            created_at=created,
            updated_at=updated,
            expires_at=expires,
        )
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc.message}") from None


def import_jsonl(
    engine: MemoryEngine,
    account_id: str,
    lines: IO[str],
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int, bool]:
    """Import a file written by ``export_jsonl`` (or plain {"content", ...} lines).

    All or nothing: every line is read and checked first (a bad one raises ValidationError
    naming its line, and nothing is stored), missing vectors are embedded, then every
    memory is written in one transaction. Returns (imported, skipped as duplicates,
    re-embedded).
    """
    reuse = False
    dim = engine.embedder.dim
    rows: list[MemoryRow] = []
    vectors: list[np.ndarray | None] = []
    now = engine.clock()
    for number, record in _records(lines):
        if not rows and "format" in record and "content" not in record:
            if record.get("format") != FORMAT:
                raise ValidationError(f"line {number}: unknown format {record.get('format')!r}")
            reuse = (record.get("embedder"), record.get("dim")) == (engine.embedder.name, dim)
            continue
        rows.append(_memory(record, number, account_id, now))
        blob = record.get("embedding")
        vectors.append(
            _vector(blob, dim, f"line {number}: embedding") if reuse and blob is not None else None
        )
    if not rows:
        return 0, 0, not reuse
    missing = [i for i, v in enumerate(vectors) if v is None]
    for start in range(0, len(missing), IMPORT_BATCH):
        chunk = missing[start : start + IMPORT_BATCH]
        for i, vector in zip(
            chunk, engine.embedder.embed_documents([rows[i].content for i in chunk]), strict=True
        ):
            vectors[i] = vector
        if progress:
            progress(len(chunk))
    results = engine.import_rows(account_id, rows, np.stack(vectors))
    if progress and len(rows) > len(missing):
        progress(len(rows) - len(missing))
    imported = sum(not r.deduplicated for r in results)
    return imported, len(results) - imported, bool(missing) or not reuse
