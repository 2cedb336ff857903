"""The seed's research crew with persistent memory: recall → backstory → kickoff → remember.

Two crews share one project session: the research crew (researcher + writer) stores what
it found, and the strategy crew starts from it; the next run of either starts from both.

    scripts/bootstrap.sh crewai            # or: pip install 'memstore-ai[crewai]' in your venv
    .venv/bin/python examples/crewai_research.py --offline               # scripted LLM, no key
    OPENAI_API_KEY=... .venv/bin/python examples/crewai_research.py --llm gpt-4o-mini

Run it with the python that has crewai installed (``.venv/bin/python``; a plain ``python``
fails with ``ModuleNotFoundError: crewai``). Each crew's recalled memories are printed before
its result. Memory is local (``--data-dir DIR``, default ``$MEMSTORE_DATA_DIR`` or
./memstore-data, as for the CLI) unless MEMSTORE_API_KEY is set, in which case it goes to the
server at MEMSTORE_BASE_URL. ``--record FILE`` writes every prompt the LLM received to FILE
(JSON), to see where the memories landed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

# Keep crewai from phoning home (and from stalling ~10 s when the network is unreachable).
for _key, _value in {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_TESTING": "true",
    "OTEL_SDK_DISABLED": "true",
}.items():
    os.environ.setdefault(_key, _value)

from crewai import LLM, Agent, Crew, Task  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from pydantic import PrivateAttr  # noqa: E402

from memstore import Memstore  # noqa: E402
from memstore.integrations.crewai import CrewMemory  # noqa: E402
from memstore.settings import Settings  # noqa: E402


class ScriptedLLM(BaseLLM):
    """An offline stand-in for a provider: answers from ``responses`` in order, or from
    ``reply(role, messages)``, and records every call it receives."""

    responses: list[str] = []
    reply: Any = None
    _calls: list[dict[str, Any]] = PrivateAttr(default_factory=list)

    def call(  # type: ignore[override]
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> str:
        msgs = [{"role": "user", "content": messages}] if isinstance(messages, str) else messages
        msgs = [{"role": m["role"], "content": m.get("content")} for m in msgs]
        role = getattr(from_agent, "role", None)
        self._calls.append({"agent": role, "messages": msgs})
        if self.reply is not None:
            return self.reply(role, msgs)
        index = len(self._calls) - 1
        if index >= len(self.responses):
            raise RuntimeError(f"ScriptedLLM: no response scripted for call {index + 1}")
        return self.responses[index]

    @property
    def calls(self) -> list[dict[str, Any]]:
        return self._calls

    def supports_stop_words(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 128_000

    def get_input_tokens_count(self, messages: Any, tools: Any = None, **_: Any) -> int:
        return sum(len(str(m.get("content") or "")) for m in messages) // 4


def offline_reply(role: str | None, messages: list[dict[str, Any]]) -> str:
    """Plausible answers for each agent; they mention when memories reached the prompt."""
    seen = "Relevant memories from earlier runs" in (messages[0]["content"] or "")
    note = " This builds on earlier runs." if seen else " This is a first pass."
    if role == "Researcher":
        return (
            "Thought: I now know the final answer\nFinal Answer: Research notes: Acme Corp "
            "lacks API docs; Beta Inc has no self-hosted option." + note
        )
    if role == "Writer":
        return (
            "Thought: I now know the final answer\nFinal Answer: Brief: the gap in the market "
            "is a documented, self-hostable product." + note
        )
    return (
        "Thought: I now know the final answer\nFinal Answer: Next step: ship API docs and a "
        "self-hosted edition first." + note
    )


# One agent per row, each with one task, run in order: role, goal, backstory, task, output.
Role = tuple[str, str, str, str, str]
RESEARCH: list[Role] = [
    (
        "Researcher",
        "Research {topic} for project {project}",
        "You dig up facts about markets and competitors and cite what you find.",
        "Research {topic}: the main players, what they lack, and open questions.",
        "Bullet-point research notes.",
    ),
    (
        "Writer",
        "Turn research on {topic} into a short brief",
        "You write crisp briefs for busy founders.",
        "Write a five-sentence brief on {topic} from the research notes.",
        "A short brief.",
    ),
]
STRATEGY: list[Role] = [
    (
        "Strategist",
        "Decide what project {project} should do next about {topic}",
        "You turn what the team already knows into the next concrete steps.",
        "Propose the next three steps on {topic}, using what the project knows.",
        "Three numbered steps.",
    ),
]


def crew_of(llm: Any, roles: list[Role], **options: Any) -> Crew:
    """A crew with one agent and one task per role; ``options`` go to ``Crew``."""
    agents, tasks = [], []
    for role, goal, backstory, description, expected_output in roles:
        agent = Agent(role=role, goal=goal, backstory=backstory, llm=llm, max_retry_limit=0)
        agents.append(agent)
        tasks.append(Task(description=description, expected_output=expected_output, agent=agent))
    return Crew(agents=agents, tasks=tasks, **options)


def research_crew(llm: Any) -> Crew:
    return crew_of(llm, RESEARCH, name="research")


def strategy_crew(llm: Any) -> Crew:
    return crew_of(llm, STRATEGY, name="strategy")


def open_memstore(data_dir: str | None) -> Memstore:
    """A server when MEMSTORE_API_KEY is set and no directory is given (MEMSTORE_BASE_URL
    names it), else the local store in ``data_dir`` (default $MEMSTORE_DATA_DIR or
    ./memstore-data): memstore's own settings decide, as for the CLI."""
    if data_dir is None and Settings().api_key:
        return Memstore()
    return Memstore.local(data_dir)


def make_llm(args: argparse.Namespace, reply: Any) -> Any:
    """The scripted offline LLM with ``--offline``, else the provider's model ``--llm``."""
    return ScriptedLLM(model="scripted", reply=reply) if args.offline else LLM(model=args.llm)


def add_llm_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm", default="gpt-4o-mini", help="any model crewai's LLM accepts")
    parser.add_argument("--offline", action="store_true", help="use a scripted LLM")
    parser.add_argument(
        "--record", metavar="FILE", help="write every prompt the LLM received to FILE (JSON)"
    )


def save_prompts(llm: Any, path: str | None) -> None:
    """With ``--record FILE``, every prompt the scripted LLM received, as JSON."""
    if path:
        with open(path, "w") as fh:
            json.dump(getattr(llm, "calls", []), fh, indent=1)


def show_recalled(memory: CrewMemory) -> None:
    """Print what each agent was given from earlier runs."""
    for who, memories in memory.recalled.items():
        print(f"-- recalled for {who}: {len(memories) or 'nothing yet'}")
        for m in memories:
            print(f"   {m.score:.2f}  {m.content[:100]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", default="AI agent memory")
    parser.add_argument("--project", default="alpha", help="session shared by both crews")
    parser.add_argument("--crew", choices=["research", "strategy", "both"], default="both")
    parser.add_argument(
        "--data-dir",
        "--data",
        dest="data",
        help="local memstore directory (default $MEMSTORE_DATA_DIR or ./memstore-data)",
    )
    add_llm_flags(parser)
    args = parser.parse_args(argv)

    llm = make_llm(args, offline_reply)
    ms = open_memstore(args.data)
    session = f"project:{args.project}"
    inputs = {"topic": args.topic, "project": args.project}
    crews = {"research": [research_crew], "strategy": [strategy_crew]}.get(
        args.crew, [research_crew, strategy_crew]
    )
    for build in crews:
        crew = build(llm)
        memory = CrewMemory(ms, session=session)
        output = memory.kickoff(crew, inputs)
        print(f"== {crew.name} crew ==")
        show_recalled(memory)
        print(f"{output.raw}\n")
    save_prompts(llm, args.record)
    ms.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
