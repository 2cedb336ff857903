"""Reading whole sessions through the public SDK, for the CrewAI calls that scan a scope
(list, info, categories, filtered forget) rather than recall from it.

Sessions go to the SDK at most ``MAX_SESSIONS_PER_CALL`` at a time (the most one read may
name), and each batch is read a page of ``MAX_LIST_LIMIT`` at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from memstore.client import Memstore
from memstore.models import MAX_LIST_LIMIT, MAX_SESSIONS, Memory

__all__ = ["MAX_SESSIONS_PER_CALL", "chunks", "memories_in"]

MAX_SESSIONS_PER_CALL = MAX_SESSIONS


def chunks(names: Sequence[str | None]) -> Iterator[list[str | None]]:
    """``names`` in lists of at most MAX_SESSIONS_PER_CALL."""
    for start in range(0, len(names), MAX_SESSIONS_PER_CALL):
        yield list(names[start : start + MAX_SESSIONS_PER_CALL])


def memories_in(memstore: Memstore, sessions: Sequence[str | None]) -> Iterator[Memory]:
    """Every memory of ``sessions``, newest first within each chunk of sessions."""
    for chunk in chunks(sessions):
        cursor = None
        while True:
            page = memstore.list(session=chunk, limit=MAX_LIST_LIMIT, cursor=cursor)
            yield from page.memories
            cursor = page.next_cursor
            if cursor is None:
                break
