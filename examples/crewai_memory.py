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
import sys
from typing import Any

# The other example's crew builder, offline LLM and flags (it keeps crewai from phoning home
# before crewai is imported).
from crewai_research import Role, add_llm_flags, crew_of, make_llm, open_memstore, save_prompts

from memstore.integrations.crewai import MemstoreMemory

ROLES: list[Role] = [
    (
        "Researcher",
        "Research {topic}",
        "You dig up facts about markets and competitors.",
        "Research {topic}: the main players and what they lack.",
        "Research notes.",
    ),
    (
        "Writer",
        "Write a short brief on {topic}",
        "You write crisp briefs for busy founders.",
        "Write a three-sentence brief on {topic} from the research notes.",
        "A short brief.",
    ),
]


def offline_reply(role: str | None, messages: list[dict[str, Any]]) -> str:
    """Plausible answers that say whether memories reached the prompt."""
    seen = any("Relevant memories:" in (m["content"] or "") for m in messages)
    note = " (Used what memory recalled.)" if seen else " (Nothing recalled.)"
    if role == "Researcher":
        answer = "Acme Corp lacks API docs; Beta Inc has no self-hosted option." + note
    else:
        answer = "Brief: the gap is a documented, self-hostable product." + note
    return f"Thought: I now know the final answer\nFinal Answer: {answer}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", default="AI agent memory")
    parser.add_argument("--session", default="project:alpha", help="where the crew's memory lives")
    parser.add_argument("--data-dir", help="local memstore directory (default ./memstore-data)")
    add_llm_flags(parser)
    args = parser.parse_args(argv)

    ms = open_memstore(args.data_dir)  # a server with MEMSTORE_API_KEY, else local
    llm = make_llm(args, offline_reply)

    memory = MemstoreMemory(ms, session=args.session)
    output = crew_of(llm, ROLES, memory=memory).kickoff(inputs={"topic": args.topic})
    for task in output.tasks_output:
        print(f"{task.agent}: {task.raw}")

    save_prompts(llm, args.record)
    ms.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
