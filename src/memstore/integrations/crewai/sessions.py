"""Which memstore session a crew's memory lives in, and how CrewAI's scope paths map to
sessions.

A memory has a root session (a project, a user, an agent role; None is the account's
shared session). CrewAI's scope ``/`` is that session; a scope path ``/a/b`` is the
session ``<root>/a/b``. A scope covers the sessions below it, as CrewAI's scopes do, so
recalling from ``/`` searches ``<root>`` and every ``<root>/...`` session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from crewai.memory.utils import normalize_scope_path

__all__ = ["SessionSpec", "by_agent_role", "scope_of", "scope_session", "sessions_under"]

SessionSpec = str | None | Callable[[Any], str | None]


def by_agent_role(prefix: str = "agent:") -> Callable[[Any], str]:
    """A session spec giving each agent its own session, named after its role."""

    def session_for(agent: Any) -> str:
        return f"{prefix}{agent.role}"

    return session_for


def scope_session(root: str | None, scope: str | None) -> str | None:
    """The session holding scope path ``scope`` of a memory whose root session is ``root``."""
    path = normalize_scope_path(scope or "/")
    return root if path == "/" else (root or "") + path


def scope_of(root: str | None, session: str | None) -> str:
    """The scope path of ``session`` in a memory whose root session is ``root``."""
    if session == root or session is None:
        return "/"
    return session[len(root or "") :] or "/"


def sessions_under(
    root: str | None, scope: str | None, existing: Iterable[str | None]
) -> list[str | None]:
    """The session of ``scope`` (first) and every session in ``existing`` below it."""
    own = scope_session(root, scope)
    below = (own or "") + "/"
    return [own] + sorted(s for s in existing if s is not None and s.startswith(below))
