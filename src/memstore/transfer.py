"""Export and import memories as JSON Lines: one account, or the whole store.

The first line is a header naming the embedder; each later line is one memory with its
vector (base64 float32). Import reuses the vectors when the embedder matches and
re-embeds the text when it does not; it checks every line before it writes anything, and
writes each account's memories in one transaction. A whole-store export (``export_store``)
also names each memory's account, and its header lists the accounts (name, plan) and API
keys (their hashes, so the same keys work after a restore; a key itself is never stored
anywhere). Monthly usage counters are not exported: a restored store counts from zero.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import IO, Any

import numpy as np

from memstore import validation as check
from memstore.accounts import DEFAULT_ACCOUNT, DEFAULT_PLAN
from memstore.engine import MemoryEngine
from memstore.errors import ValidationError
from memstore.models import MAX_LIST_LIMIT, content_hash
from memstore.stores.base import MemoryRow

FORMAT = "memstore-export/1"
IMPORT_BATCH = 100


def _header(engine: MemoryEngine, **more: Any) -> str:
    head = {"format": FORMAT, "embedder": engine.embedder.name, "dim": engine.embedder.dim}
    return json.dumps({**head, **more}) + "\n"


def export_jsonl(engine: MemoryEngine, account_id: str, out: IO[str]) -> int:
    """Write every live memory of the account, oldest first; returns how many."""
    out.write(_header(engine))
    return _write_memories(engine, account_id, out, {})


def export_store(engine: MemoryEngine, out: IO[str]) -> int:
    """Write every account (name, plan), key (hash) and live memory; returns how many
    memories."""
    accounts = engine.accounts.list_accounts()
    out.write(
        _header(
            engine,
            accounts=[{"name": a.name, "plan": a.plan} for a in accounts],
            keys=engine.accounts.backup_keys(),
        )
    )
    return sum(_write_memories(engine, a.id, out, {"account": a.name}) for a in accounts)


def _write_memories(
    engine: MemoryEngine, account_id: str, out: IO[str], extra: dict[str, Any]
) -> int:
    count, cursor, pages = 0, None, []
    while True:
        page = engine.list(
            account_id, session="*", limit=MAX_LIST_LIMIT, cursor=cursor, include_superseded=True
        )
        pages.append(page.memories)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    for memories in reversed(pages):
        ordered = list(reversed(memories))
        vectors = engine.store.vectors(account_id, [m.id for m in ordered])
        for m in ordered:
            record = {**m.model_dump(mode="json"), **extra}
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


def _exported_id(value: Any) -> str:
    """A memory id as the file names it (only to link ``superseded_by``), or ""."""
    return value if isinstance(value, str) and 0 < len(value) <= 64 else ""


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
        superseded = _parse_time(record.get("superseded_at"), "superseded_at")
        return MemoryRow(
            id=_exported_id(record.get("id")),
            account_id=account_id,
            session=check.session(record.get("session")),
            content=text,
            content_hash=content_hash(text),
            metadata=check.metadata(record.get("metadata")),
            created_at=created,
            updated_at=updated,
            expires_at=expires,
            superseded_at=superseded,
            superseded_by=_exported_id(record.get("superseded_by")) or None,
        )
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc.message}") from None


def import_jsonl(
    engine: MemoryEngine,
    account_id: str,
    lines: IO[str],
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int, bool]:
    """Import a file written by ``export_jsonl`` (or plain {"content", ...} lines) into one
    account.

    All or nothing: every line is read and checked first (a bad one raises ValidationError
    naming its line, and nothing is stored), missing vectors are embedded, then every
    memory is written in one transaction. Returns (imported, skipped as duplicates,
    re-embedded).
    """
    header, rows, vectors = _read(engine, lines, lambda record, number: account_id)
    if "accounts" in header:
        raise ValidationError(
            "this file is a whole-store export (several accounts); import it with --all"
        )
    return _write(engine, rows, vectors, progress)


def import_store(
    engine: MemoryEngine, lines: IO[str], progress: Callable[[int], None] | None = None
) -> tuple[int, int, bool]:
    """Import a file written by ``export_store``: accounts, keys, and each memory into its
    account (a memory without one goes to the default account). Every line is checked
    before accounts, keys or memories are written."""

    def account_name(record: dict[str, Any], number: int) -> str:
        name = record.get("account", DEFAULT_ACCOUNT)
        if not isinstance(name, str) or not name:
            raise ValidationError(f"line {number}: account must be a non-empty string")
        return name

    header, rows, vectors = _read(engine, lines, account_name)
    accounts: dict[str, str] = {}
    for account in header.get("accounts") or []:
        if not isinstance(account, dict) or not isinstance(account.get("name"), str):
            raise ValidationError("line 1: accounts must be a list of {name, plan} objects")
        accounts[account["name"]] = str(account.get("plan", DEFAULT_PLAN))
    keys = header.get("keys") or []
    for key in keys:
        if not isinstance(key, dict) or not all(
            isinstance(key.get(f), str) for f in ("id", "account", "prefix", "key_hash")
        ):
            raise ValidationError("line 1: each key needs id, account, prefix, key_hash")
        if not isinstance(key.get("created_at"), int | float) or not isinstance(
            key.get("revoked_at"), int | float | None
        ):
            raise ValidationError("line 1: a key's created_at/revoked_at must be numbers")
    names = {**{r.account_id: DEFAULT_PLAN for r in rows}, **accounts}
    names.update({k["account"]: names.get(k["account"], DEFAULT_PLAN) for k in keys})
    ids = {name: engine.accounts.ensure(name, plan).id for name, plan in names.items()}
    for key in keys:
        engine.accounts.restore_key(key, ids[key["account"]])
    rows = [replace(r, account_id=ids[r.account_id]) for r in rows]
    return _write(engine, rows, vectors, progress)


def _read(
    engine: MemoryEngine, lines: IO[str], account_for: Callable[[dict[str, Any], int], str]
) -> tuple[dict[str, Any], list[MemoryRow], list[np.ndarray | None]]:
    """The header, and every memory line checked and read as a row (with its vector when the
    file's embedder is this store's); ValidationError naming the first bad line."""
    header: dict[str, Any] = {}
    dim = engine.embedder.dim
    rows: list[MemoryRow] = []
    vectors: list[np.ndarray | None] = []
    now = engine.clock()
    for number, record in _records(lines):
        if not rows and not header and "format" in record and "content" not in record:
            if record.get("format") != FORMAT:
                raise ValidationError(f"line {number}: unknown format {record.get('format')!r}")
            header = record
            continue
        reuse = (header.get("embedder"), header.get("dim")) == (engine.embedder.name, dim)
        rows.append(_memory(record, number, account_for(record, number), now))
        blob = record.get("embedding")
        vectors.append(
            _vector(blob, dim, f"line {number}: embedding") if reuse and blob is not None else None
        )
    return header, rows, vectors


def _write(
    engine: MemoryEngine,
    rows: list[MemoryRow],
    vectors: list[np.ndarray | None],
    progress: Callable[[int], None] | None,
) -> tuple[int, int, bool]:
    """Embed what has no vector, then store each account's rows in one transaction."""
    missing = [i for i, v in enumerate(vectors) if v is None]
    for start in range(0, len(missing), IMPORT_BATCH):
        chunk = missing[start : start + IMPORT_BATCH]
        for i, vector in zip(
            chunk, engine.embedder.embed_documents([rows[i].content for i in chunk]), strict=True
        ):
            vectors[i] = vector
        if progress:
            progress(len(chunk))
    imported = total = 0
    for account_id in dict.fromkeys(r.account_id for r in rows):
        mine = [i for i, r in enumerate(rows) if r.account_id == account_id]
        stacked = np.stack([v for i in mine if (v := vectors[i]) is not None])
        results = engine.import_rows(account_id, [rows[i] for i in mine], stacked)
        imported += sum(not r.deduplicated for r in results)
        total += len(results)
    if progress and len(rows) > len(missing):
        progress(len(rows) - len(missing))
    return imported, total - imported, bool(missing)
