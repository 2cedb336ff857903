"""Export and import memories as JSON Lines: one account, or the whole store.

The first line is a header naming the embedder; each later line is one memory with its
vector (base64 float32). Import reuses the vectors when the embedder matches and
re-embeds the text when it does not. A whole-store export (``export_store``) also names
each memory's account, and its header lists the accounts (name, plan) and API keys (their
hashes, so the same keys work after a restore; a key itself is never stored anywhere).
Monthly usage counters are not exported: a restored store counts from zero.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO, Any

import numpy as np

from memstore import validation as check
from memstore.accounts import DEFAULT_ACCOUNT
from memstore.engine import MemoryEngine
from memstore.errors import ValidationError
from memstore.models import content_hash
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
        page = engine.list(account_id, session="*", limit=1000, cursor=cursor)
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
    """Import a file written by ``export_jsonl`` (or plain {"content", ...} lines) into one
    account. Returns (imported, skipped as duplicates, re-embedded)."""

    def setup(header: dict[str, Any]) -> None:
        if "accounts" in header:
            raise ValidationError(
                "this file is a whole-store export (several accounts); import it with --all"
            )

    return _import(engine, lines, progress, lambda record, number: account_id, setup)


def import_store(
    engine: MemoryEngine, lines: IO[str], progress: Callable[[int], None] | None = None
) -> tuple[int, int, bool]:
    """Import a file written by ``export_store``: accounts, keys, and each memory into its
    account (a memory without one goes to the default account)."""
    ids: dict[str, str] = {}

    def account_of(name: Any, plan: Any = "unlimited") -> str:
        if not isinstance(name, str) or not name:
            raise ValidationError(f"account must be a non-empty string, not {name!r}")
        if name not in ids:
            ids[name] = engine.accounts.ensure(name, str(plan)).id
        return ids[name]

    def setup(header: dict[str, Any]) -> None:
        for account in header.get("accounts") or []:
            if not isinstance(account, dict):
                raise ValidationError("line 1: accounts must be a list of objects")
            account_of(account.get("name"), account.get("plan", "unlimited"))
        for key in header.get("keys") or []:
            if not isinstance(key, dict) or not all(
                isinstance(key.get(f), str) for f in ("id", "account", "prefix", "key_hash")
            ):
                raise ValidationError("line 1: each key needs id, account, prefix, key_hash")
            if not isinstance(key.get("created_at"), int | float) or not isinstance(
                key.get("revoked_at"), int | float | None
            ):
                raise ValidationError("line 1: a key's created_at/revoked_at must be numbers")
            engine.accounts.restore_key(key, account_of(key["account"]))

    def account_for(record: dict[str, Any], number: int) -> str:
        name = record.get("account", DEFAULT_ACCOUNT)
        try:
            return account_of(name)
        except ValidationError as exc:
            raise ValidationError(f"line {number}: {exc.message}") from None

    return _import(engine, lines, progress, account_for, setup)


def _import(
    engine: MemoryEngine,
    lines: IO[str],
    progress: Callable[[int], None] | None,
    account_for: Callable[[dict[str, Any], int], str],
    setup: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[int, int, bool]:
    reuse = False
    imported = skipped = 0
    batch: list[MemoryRow] = []
    vectors: list[np.ndarray | None] = []

    def flush() -> None:
        nonlocal imported, skipped
        if not batch:
            return
        use = reuse and all(v is not None for v in vectors)
        stacked = np.stack([v for v in vectors if v is not None]) if use else None
        results = engine.import_rows(batch[0].account_id, batch, stacked)
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
            if setup is not None:
                setup(record)
            continue
        account_id = account_for(record, number)
        if batch and batch[0].account_id != account_id:
            flush()
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
