"""CrewAI's own memory kept in memstore: ``Crew(memory=MemstoreMemory(ms, session=...))``.

    scripts/bootstrap.sh crewai            # or: pip install 'memstore-ai[crewai]' in your venv
    .venv/bin/python examples/crewai_memory.py --offline               # scripted LLM, no key
    OPENAI_API_KEY=... .venv/bin/python examples/crewai_memory.py --llm gpt-4o-mini

Run it twice. Before each task CrewAI recalls from memstore with the task's text; after each
task memstore keeps a note of who did what and the result. The memory itself makes no LLM
call and needs no embedding key. Memory is local (``--data-dir DIR``, default
``$MEMSTORE_DATA_DIR`` or ./memstore-data) unless MEMSTORE_API_KEY is set; then it goes to the
server at MEMSTORE_BASE_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

# Keep crewai from phoning home (and from stalling ~10 s when the network is unreachable).
for _key in ("CREWAI_DISABLE_TELEMETRY", "CREWAI_TESTING", "OTEL_SDK_DISABLED"):
    os.environ.setdefault(_key, "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

from crewai import LLM, Agent, Crew, Task  # noqa: E402
from crewai_research import ScriptedLLM  # noqa: E402  # the offline stand-in for a provider

from memstore import Memstore  # noqa: E402
from memstore.integrations.crewai import MemstoreMemory  # noqa: E402


def offline_reply(role: str | None, messages: list[dict[str, Any]]) -> str:
    """Plausible answers that say whether memories reached the prompt."""
    seen = any("Relevant memories:" in (m["content"] or "") for m in messages)
    note = " (Used what memory recalled.)" if seen else " (Nothing recalled.)"
    if role == "Researcher":
        answer = "Acme Corp lacks API docs; Beta Inc has no self-hosted option." + note
    else:
        answer = "Brief: the gap is a documented, self-hostable product." + note
    return f"Thought: I now know the final answer\nFinal Answer: {answer}"


def research_crew(llm: Any, memory: MemstoreMemory) -> Crew:
    researcher = Agent(
        role="Researcher",
        goal="Research {topic}",
        backstory="You dig up facts about markets and competitors.",
        llm=llm,
        max_retry_limit=0,
    )
    writer = Agent(
        role="Writer",
        goal="Write a short brief on {topic}",
        backstory="You write crisp briefs for busy founders.",
        llm=llm,
        max_retry_limit=0,
    )
    research = Task(
        description="Research {topic}: the main players and what they lack.",
        expected_output="Research notes.",
        agent=researcher,
    )
    brief = Task(
        description="Write a three-sentence brief on {topic} from the research notes.",
        expected_output="A short brief.",
        agent=writer,
    )
    return Crew(agents=[researcher, writer], tasks=[research, brief], memory=memory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", default="AI agent memory")
    parser.add_argument("--session", default="project:alpha", help="where the crew's memory lives")
    parser.add_argument("--data-dir", help="local memstore directory (default ./memstore-data)")
    parser.add_argument("--llm", default="gpt-4o-mini", help="any model crewai's LLM accepts")
    parser.add_argument("--offline", action="store_true", help="use a scripted LLM")
    parser.add_argument("--record", help="write the prompts the LLM received to this JSON file")
    args = parser.parse_args(argv)

    if args.data_dir is None and os.environ.get("MEMSTORE_API_KEY"):
        ms = Memstore()  # a server: MEMSTORE_API_KEY and MEMSTORE_BASE_URL
    else:
        ms = Memstore.local(args.data_dir)  # default: $MEMSTORE_DATA_DIR or ./memstore-data
    llm: Any = (
        ScriptedLLM(model="scripted", reply=offline_reply) if args.offline else LLM(model=args.llm)
    )

    memory = MemstoreMemory(ms, session=args.session)
    output = research_crew(llm, memory).kickoff(inputs={"topic": args.topic})
    for task in output.tasks_output:
        print(f"{task.agent}: {task.raw}")

    if args.record:
        with open(args.record, "w") as fh:
            json.dump(getattr(llm, "calls", []), fh, indent=1)
    ms.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
