"""The seed pattern: recall before kickoff, inject into prompts, run, remember a summary after."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from memstore.backend import RememberItem
from memstore.client import Memstore
from memstore.integrations.crewai.sessions import SessionSpec
from memstore.integrations.crewai.summary import MAX_QUERY_CHARS, summarize_run

__all__ = ["CrewMemory", "kickoff_with_memory"]

Injection = Literal["backstory", "task"]
PLACEHOLDER = "memstore_memories_{}"


def _fill(template: str, inputs: dict[str, Any]) -> str:
    for key, value in inputs.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def _format_memories(header: str, memories: list[Any]) -> str:
    lines = [header]
    for m in memories:
        lines.append("- " + m.content.strip().replace("\n", "\n  "))
    return "\n".join(lines)


def _newest_runs_first(memories: list[Any]) -> list[Any]:
    """Memories in relevance order, except that earlier runs' summaries (which stay distinct,
    one per run) fill the places they won newest first."""
    runs = [i for i, m in enumerate(memories) if m.metadata.get("kind") == "crew_run"]
    newest = sorted((memories[i] for i in runs), key=lambda m: m.created_at, reverse=True)
    out = list(memories)
    for i, m in zip(runs, newest, strict=True):
        out[i] = m
    return out


class CrewMemory:
    """The seed pattern: recall before kickoff, inject, run, remember a summary after.

    ``session`` is a name (a user id, a project; None is the shared session) or a callable
    ``agent -> session`` such as ``by_agent_role()`` for per-agent memory. ``inject`` puts
    memories into each agent's backstory or into each task's description. After a kickoff,
    ``recalled`` maps each agent role (or ``"task N"``) to the memories it was given.
    """

    def __init__(
        self,
        memstore: Memstore,
        session: SessionSpec = None,
        *,
        inject: Injection = "backstory",
        limit: int = 5,
        min_score: float | None = None,
        query: str | Callable[[dict[str, Any]], str] | None = None,
        remember: bool = True,
        header: str = "Relevant memories from earlier runs:",
    ) -> None:
        if inject not in ("backstory", "task"):
            raise ValueError("inject must be 'backstory' or 'task'")
        self.memstore = memstore
        self.session = session
        self.inject = inject
        self.limit = limit
        self.min_score = min_score
        self.query = query
        self.remember = remember
        self.header = header
        self.recalled: dict[str, list[Any]] = {}
        self._crew: Any = None
        self._inputs: dict[str, Any] = {}
        self._saved: list[tuple[Any, str, Any, Any]] = []

    def session_for(self, agent: Any) -> str | None:
        """The session of ``agent``; work with no agent (a manager's) uses the shared one."""
        if not callable(self.session):
            return self.session
        return None if agent is None else self.session(agent)

    # -- callbacks
    def attach(self, crew: Any) -> Any:
        """Add this memory's kickoff callbacks to ``crew`` (once) and return the crew."""
        self._crew = crew
        if self.before_kickoff not in crew.before_kickoff_callbacks:
            crew.before_kickoff_callbacks.append(self.before_kickoff)
            crew.after_kickoff_callbacks.append(self.after_kickoff)
        return crew

    def before_kickoff(self, inputs: dict[str, Any] | None) -> dict[str, Any]:
        if self._crew is None:
            raise RuntimeError("CrewMemory.before_kickoff needs a crew: call attach(crew)")
        return self.prepare(self._crew, inputs)

    def after_kickoff(self, output: Any) -> Any:
        self.restore()
        if self.remember:
            self.remember_run(self._crew, output)
        return output

    def kickoff(self, crew: Any, inputs: dict[str, Any] | None = None) -> Any:
        """Run ``crew`` once with memory, without leaving callbacks or text behind on it."""
        self._crew = crew
        prepared = self.prepare(crew, inputs)
        try:
            output = crew.kickoff(inputs=prepared)
        finally:
            self.restore()
        if self.remember:
            self.remember_run(crew, output)
        return output

    # -- the steps
    def _targets(self, crew: Any) -> list[tuple[Any, str, Any]]:
        """(object, field, agent) pairs memories go into."""
        if self.inject == "task":
            return [(t, "description", t.agent) for t in crew.tasks]
        agents = list(crew.agents)
        agents += [t.agent for t in crew.tasks if t.agent is not None and t.agent not in agents]
        return [(a, "backstory", a) for a in agents]

    def _query(self, crew: Any, target: Any, agent: Any, inputs: dict[str, Any]) -> str:
        if callable(self.query):
            return self.query(inputs)
        if isinstance(self.query, str):
            return _fill(self.query, inputs)
        if self.inject == "task":
            parts = [target.description]
        else:
            parts = [agent.goal] + [t.description for t in crew.tasks if t.agent is agent]
        return _fill("\n".join(p for p in parts if p), inputs)[:MAX_QUERY_CHARS]

    def prepare(self, crew: Any, inputs: dict[str, Any] | None) -> dict[str, Any]:
        """Recall for each agent (or task) and add the memories as inputs that crewai's own
        interpolation puts into the text, so braces in memories are never parsed."""
        self.restore()
        inputs = dict(inputs or {})
        self._inputs = dict(inputs)
        self.recalled = {}
        try:
            for i, (target, field, agent) in enumerate(self._targets(crew)):
                self._inject(i, target, field, agent, crew, inputs)
        except BaseException:
            self.restore()
            raise
        return inputs

    def _inject(
        self, i: int, target: Any, field: str, agent: Any, crew: Any, inputs: dict[str, Any]
    ) -> None:
        """Recall for one target; if anything is found, end its text with a placeholder and
        put the memories in ``inputs`` under that placeholder's name."""
        found = self.memstore.recall(
            self._query(crew, target, agent, inputs),
            session=self.session_for(agent),
            limit=self.limit,
            min_score=self.min_score,
        )
        found = _newest_runs_first(found)
        label = agent.role if field == "backstory" else f"task {i}"
        self.recalled[label] = found
        if not found:
            return
        key = PLACEHOLDER.format(i)
        private = "_original_" + field
        template = getattr(target, private) or getattr(target, field)
        self._saved.append((target, field, getattr(target, field), getattr(target, private)))
        setattr(target, private, template + "\n\n{" + key + "}")
        setattr(target, field, template + "\n\n{" + key + "}")
        inputs[key] = _format_memories(self.header, found)

    def restore(self) -> None:
        """Put back the texts ``prepare`` changed."""
        while self._saved:
            target, field, value, original = self._saved.pop()
            setattr(target, "_original_" + field, original)
            setattr(target, field, value)

    def remember_run(self, crew: Any, output: Any) -> list[Any]:
        """Remember one summary per session the crew's agents write to."""
        groups: dict[str | None, list[Any]] = {}
        agents = {a.role: a for a in crew.agents}
        agents.update({t.agent.role: t.agent for t in crew.tasks if t.agent is not None})
        for out in output.tasks_output:
            session = self.session_for(agents.get(out.agent))
            groups.setdefault(session, []).append(out)
        items: list[RememberItem] = [
            {
                "content": summarize_run(outs, self._inputs),
                "session": session,
                "metadata": {
                    "source": "crewai",
                    "kind": "crew_run",
                    "crew": crew.name or "crew",
                    "tasks": len(outs),
                    "tool_failures": sum(len(o.tool_failures or []) for o in outs),
                },
                # A near-identical summary of an earlier run becomes history: one current
                # summary per kind of run (docs/memory-over-time.md).
                "on_similar": "supersede",
            }
            for session, outs in groups.items()
        ]
        return self.memstore.remember_many(items) if items else []


def kickoff_with_memory(
    crew: Any,
    memstore: Memstore,
    session: SessionSpec = None,
    *,
    inputs: dict[str, Any] | None = None,
    **options: Any,
) -> Any:
    """Recall → inject → ``crew.kickoff(inputs)`` → remember; returns the CrewOutput.
    ``options`` are CrewMemory's (inject, limit, min_score, query, remember, header)."""
    return CrewMemory(memstore, session, **options).kickoff(crew, inputs)
