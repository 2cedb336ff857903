"""The CrewAI integration with the real crewai package and a scripted offline LLM."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from tests.crewai_offline import (
    EXAMPLES,
    ScriptedLLM,
    example,
    final,
    one_agent_crew,
    prompt_text,
    sandbox,
    subprocess_env,
)

# isort: split
# (crewai_offline imports crewai first, in its sandbox)
from crewai import Crew
from crewai.memory import Memory as CrewAIMemory
from crewai.memory.types import MemoryRecord
from crewai.tools import BaseTool

from memstore import Memstore
from memstore.integrations.crewai import (
    CrewMemory,
    MemstoreStorage,
    RecallMemoryTool,
    RememberTool,
    by_agent_role,
    kickoff_with_memory,
)

pytestmark = pytest.mark.crewai
EXAMPLE = EXAMPLES / "crewai_research.py"
ROOT = EXAMPLES.parent


@pytest.fixture(autouse=True)
def _crewai_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    sandbox(monkeypatch, tmp_path)


# -- the seed pattern


def test_run_one_remembers_what_the_crew_did(tmp_path):
    data = tmp_path / "memstore"
    example.main(["--offline", "--crew", "research", "--data", str(data)])
    with Memstore.local(data) as ms:
        [memory] = ms.list(session="project:alpha").memories
    assert memory.content.startswith("Crew run for topic=AI agent memory, project=alpha.")
    assert "Researcher: Research AI agent memory" in memory.content
    assert "Acme Corp lacks API docs" in memory.content  # the researcher's finding
    assert "Result: Brief: the gap in the market" in memory.content  # the crew's result
    assert memory.metadata == {
        "source": "crewai",
        "kind": "crew_run",
        "crew": "research",
        "tasks": 2,
        "tool_failures": 0,
    }


def test_a_fresh_process_sees_run_ones_memory_in_the_prompt(tmp_path):
    data = tmp_path / "memstore"
    example.main(["--offline", "--crew", "research", "--data", str(data)])
    record = tmp_path / "prompts.json"
    cmd = [sys.executable, str(EXAMPLE), "--offline", "--crew", "research"]
    cmd += ["--topic", "vector databases", "--data", str(data), "--record", str(record)]
    run = subprocess.run(
        cmd, env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert "This builds on earlier runs." in run.stdout
    researcher = next(c for c in json.loads(record.read_text()) if c["agent"] == "Researcher")
    system = researcher["messages"][0]["content"]
    assert "Relevant memories from earlier runs:\n- Crew run for topic=AI agent memory" in system
    assert "Acme Corp lacks API docs" in system
    assert "Your personal goal is: Research vector databases" in system


def test_two_crews_share_a_project_session(backend_ms):
    ms = backend_ms
    llm = ScriptedLLM(model="scripted", reply=example.offline_reply)
    inputs = {"topic": "agent memory", "project": "alpha"}
    kickoff_with_memory(example.research_crew(llm), ms, session="project:alpha", inputs=inputs)
    kickoff_with_memory(example.strategy_crew(llm), ms, session="project:alpha", inputs=inputs)
    strategist = next(c for c in llm.calls if c["agent"] == "Strategist")
    assert "Acme Corp lacks API docs" in strategist["messages"][0]["content"]
    crews = [m.metadata["crew"] for m in ms.list(session="project:alpha").memories]
    assert sorted(crews) == ["research", "strategy"]


def test_per_user_sessions_never_leak(ms):
    llm = ScriptedLLM(
        model="scripted",
        responses=[final("Alice's budget is 40k EUR."), final("Bob wants a demo."), final("ok")],
    )
    crew = one_agent_crew(llm)
    for user in ("alice", "bob"):
        kickoff_with_memory(crew, ms, session=f"user:{user}", inputs={"topic": "the budget"})
    kickoff_with_memory(crew, ms, session="user:alice", inputs={"topic": "the budget"})
    alice_1, bob, alice_2 = (prompt_text(c) for c in llm.calls)
    assert "40k" not in bob and "Relevant memories" not in bob
    assert "40k" in alice_2 and "Bob wants a demo" not in alice_2
    assert all("40k" not in m.content for m in ms.recall("budget", session="user:bob"))
    assert "Relevant memories" not in alice_1


def test_per_agent_role_sessions_keep_each_agents_memory_apart(ms):
    llm = ScriptedLLM(model="scripted", reply=example.offline_reply)
    inputs = {"topic": "agent memory", "project": "alpha"}
    kickoff_with_memory(example.research_crew(llm), ms, session=by_agent_role(), inputs=inputs)
    [researcher] = ms.list(session="agent:Researcher").memories
    [writer] = ms.list(session="agent:Writer").memories
    assert "Acme Corp" in researcher.content and "Writer" not in researcher.content
    assert "Brief:" in writer.content and "Researcher" not in writer.content


@pytest.mark.parametrize("inject", ["backstory", "task"])
def test_memories_go_where_configured_and_are_removed_after_kickoff(ms, inject):
    ms.remember("Earlier: the client wants {json: 'braces'} kept verbatim", session="p")
    llm = ScriptedLLM(model="scripted", responses=[final("done")])
    crew = one_agent_crew(llm)
    agent, task = crew.agents[0], crew.tasks[0]
    kickoff_with_memory(crew, ms, session="p", inputs={"topic": "the client"}, inject=inject)
    system, user = (m["content"] for m in llm.calls[0]["messages"][:2])
    where, other = (system, user) if inject == "backstory" else (user, system)
    assert "- Earlier: the client wants {json: 'braces'} kept verbatim" in where
    assert "Relevant memories" not in other
    assert "Relevant memories" not in agent.backstory + task.description
    assert "memstore" not in str(agent._original_backstory) + str(task._original_description)


def test_kickoff_callbacks_recall_and_remember_on_every_kickoff(ms):
    llm = ScriptedLLM(model="scripted", responses=[final("First finding: X."), final("Second.")])
    crew = CrewMemory(ms, session="shared").attach(one_agent_crew(llm))
    crew.kickoff(inputs={"topic": "X"})
    crew.kickoff(inputs={"topic": "X"})
    first, second = (c["messages"][0]["content"] for c in llm.calls)
    assert "Relevant memories" not in first
    assert second.count("Relevant memories") == 1 and "First finding: X." in second
    assert len(ms.list(session="shared", include_superseded=True).memories) == 2
    # the same crew on the same inputs: the second summary supersedes the first (issue 16)
    assert len(ms.list(session="shared").memories) == 1


class BrokenSearch(BaseTool):
    name: str = "web_search"
    description: str = "Searches the web."

    def _run(self, query: str) -> str:
        raise RuntimeError("rate limited by the search provider")


def test_the_summary_says_what_to_avoid_when_a_tool_failed(ms):
    llm = ScriptedLLM(
        model="scripted",
        responses=[
            'Thought: search\nAction: web_search\nAction Input: {"query": "x"}',
            final("Could not search."),
        ],
    )
    kickoff_with_memory(one_agent_crew(llm, tools=[BrokenSearch()]), ms, session="p")
    [memory] = ms.list(session="p").memories
    assert "What to avoid: web_search failed: " in memory.content
    assert "rate limited" in memory.content
    assert memory.metadata["tool_failures"] == 1


# -- tools


def test_agents_remember_and_recall_through_the_tools(ms):
    ms.remember("Acme Corp lacks API docs", session="project:alpha")
    llm = ScriptedLLM(
        model="scripted",
        responses=[
            'Thought: save it\nAction: remember\nAction Input: {"content": "Beta Inc is cheap"}',
            'Thought: look\nAction: recall_memory\nAction Input: {"query": "Acme API docs"}',
            final("Acme lacks docs; Beta is cheap."),
        ],
    )
    tools = [RememberTool(ms, session="project:alpha"), RecallMemoryTool(ms, "project:alpha")]
    kickoff_with_memory(one_agent_crew(llm, tools=tools), ms, session="other")
    assert "Remembered (mem_" in prompt_text(llm.calls[1])
    assert "- Acme Corp lacks API docs (score " in prompt_text(llm.calls[2])
    contents = {m.content for m in ms.list(session="project:alpha").memories}
    assert contents == {"Acme Corp lacks API docs", "Beta Inc is cheap"}


def test_tools_describe_their_arguments():
    ms = object()
    recall, remember = RecallMemoryTool(ms), RememberTool(ms, session="s")
    assert list(recall.args_schema.model_json_schema()["properties"]) == ["query"]
    assert list(remember.args_schema.model_json_schema()["properties"]) == ["content"]
    assert (recall.name, remember.name) == ("recall_memory", "remember")


# -- native storage backend


class HashEmbedder:
    """Offline deterministic bag-of-words vectors, as crewai's embedder callable."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    def __call__(self, texts: list[str]) -> list[list[float]]:
        out = []
        for text in texts:
            v = [0.0] * self.dim
            for word in text.lower().split():
                v[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            norm = math.sqrt(sum(x * x for x in v)) or 1.0
            out.append([x / norm for x in v])
        return out


def record(content: str, scope: str, **fields) -> MemoryRecord:
    return MemoryRecord(
        content=content, scope=scope, embedding=HashEmbedder()([content])[0], **fields
    )


def test_storage_backend_round_trips_every_operation(backend_ms):
    storage = MemstoreStorage(backend_ms)
    old = datetime.utcnow() - timedelta(days=3)
    paris = record("Paris is the capital of France", "/geo", categories=["geo"], importance=0.7)
    fox = record("The quick brown fox", "/crew/a/agent/writer", categories=["trivia"])
    stale = record("Old note about foxes", "/crew/a", created_at=old, metadata={"k": "v"})
    storage.save([paris, fox, stale])

    got = storage.get_record(paris.id)
    assert got.model_dump() == paris.model_dump() and got.embedding == paris.embedding
    [(best, score)] = storage.search(HashEmbedder()(["capital of France"])[0], limit=1)
    assert best.id == paris.id and 0 < score <= 1
    assert [r.id for r, _ in storage.search(fox.embedding, scope_prefix="/crew")][0] == fox.id
    assert storage.search(fox.embedding, scope_prefix="/geo", categories=["nope"]) == []
    assert storage.count() == 3 and storage.count("/crew") == 2
    assert storage.list_scopes("/") == ["/crew", "/geo"]
    assert storage.list_scopes("/crew") == ["/crew/a"]
    assert storage.list_categories() == {"geo": 1, "trivia": 1}
    assert [r.id for r in storage.list_records("/crew")] == [fox.id, stale.id]
    info = storage.get_scope_info("/crew")
    assert (info.record_count, info.categories, info.child_scopes) == (2, ["trivia"], ["/crew/a"])
    assert info.oldest_record == old

    storage.update(paris.model_copy(update={"content": "Paris is in France", "importance": 0.9}))
    assert storage.get_record(paris.id).content == "Paris is in France"
    assert storage.get_record(paris.id).importance == 0.9
    moved = fox.model_copy(update={"scope": "/crew/b"})
    storage.update(moved)
    assert storage.get_record(fox.id).scope == "/crew/b" and storage.count("/crew/a") == 1

    assert storage.delete(older_than=datetime.utcnow() - timedelta(days=1)) == 1
    assert storage.delete(record_ids=[fox.id]) == 1 and storage.get_record(fox.id) is None
    storage.reset("/geo")
    assert storage.count() == 0 and storage.list_scopes() == []


def test_storage_backend_async_methods_answer_as_the_sync_ones(ms):
    storage = MemstoreStorage(ms)
    paris = record("Paris is the capital of France", "/geo", categories=["geo"])
    fox = record("The quick brown fox", "/crew", categories=["trivia"])

    async def run() -> tuple[list, int]:
        await storage.asave([paris, fox])
        found = await storage.asearch(paris.embedding, scope_prefix="/geo", limit=5)
        return found, await storage.adelete(categories=["trivia"])

    found, deleted = asyncio.run(run())
    assert [(r.id, round(s, 6)) for r, s in found] == [(paris.id, 1.0)]
    assert deleted == 1 and storage.count() == 1 and storage.get_record(fox.id) is None


def test_identical_content_in_a_scope_is_kept_once_with_the_newest_record(backend_ms):
    ms = backend_ms
    storage = MemstoreStorage(ms)
    first, second = record("same text", "/s"), record("same text", "/s", importance=0.9)
    storage.save([first])
    storage.save([second])
    assert storage.count() == 1
    assert storage.get_record(second.id).importance == 0.9


def test_large_embeddings_fit_as_float16(backend_ms):
    ms = backend_ms
    storage = MemstoreStorage(ms)
    vector = [math.sin(i) for i in range(3072)]  # text-embedding-3-large, crewai's default
    storage.save([MemoryRecord(content="big", embedding=vector)])
    [(found, score)] = storage.search(vector)
    assert score == pytest.approx(1.0, abs=1e-3)
    assert found.embedding == pytest.approx(vector, abs=1e-3)


def test_crewai_memory_over_memstore_saves_searches_and_forgets(backend_ms):
    ms = backend_ms
    llm = ScriptedLLM(model="scripted", responses=[])  # any LLM call would fail the test
    memory = CrewAIMemory(storage=MemstoreStorage(ms), embedder=HashEmbedder(), llm=llm)
    saved = memory.remember(
        "Acme Corp lacks API docs", scope="/research", categories=["market"], importance=0.8
    )
    memory.remember("Beta Inc is cheap", scope="/research", categories=[], importance=0.5)
    [match] = memory.recall("Acme API docs", scope="/research", limit=1, depth="shallow")
    assert match.record.id == saved.id and match.record.categories == ["market"]
    assert [m.content for m in ms.list(session="crewai:/research").memories] == [
        "Beta Inc is cheap",
        "Acme Corp lacks API docs",
    ]
    assert memory.forget(record_ids=[saved.id]) == 1
    assert [m.record.content for m in memory.recall("Acme API docs", depth="shallow")] == [
        "Beta Inc is cheap"
    ]
    assert memory._llm.calls == []


def test_importing_memstore_does_not_import_crewai():
    code = "import sys, memstore; sys.exit('crewai' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def memory_analysis(role, messages):
    """What crewai's Memory asks its LLM, answered as a model would (JSON)."""
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    if system.startswith("You extract discrete"):
        return json.dumps({"memories": ["Acme Corp lacks API docs"]})
    if system.startswith("You analyze content to be stored"):
        return json.dumps(
            {
                "suggested_scope": "/facts",
                "categories": ["market"],
                "importance": 0.8,
                "extracted_metadata": {"entities": ["Acme Corp"], "dates": [], "topics": []},
            }
        )
    if system.startswith("You are comparing new content"):
        return json.dumps({"actions": [], "insert_new": True, "insert_reason": "new"})
    if system.startswith("You analyze a query"):
        return json.dumps(
            {
                "keywords": [],
                "suggested_scopes": ["/"],
                "complexity": "simple",
                "recall_queries": ["Acme"],
                "time_filter": None,
            }
        )
    return "nothing missing"


def test_a_crew_with_native_memory_keeps_it_in_memstore_across_crews(ms):
    def crew_with_memory(answer: str) -> tuple[Crew, ScriptedLLM]:
        llm = ScriptedLLM(model="scripted", responses=[final(answer)])
        memory = CrewAIMemory(
            storage=MemstoreStorage(ms),
            embedder=HashEmbedder(),
            llm=ScriptedLLM(model="memory", reply=memory_analysis),
            root_scope="/crew/research",
        )
        return one_agent_crew(llm, description="Research Acme Corp API docs.", memory=memory), llm

    first, _ = crew_with_memory("Acme Corp lacks API docs.")
    first.kickoff()
    stored = {
        s.session: [m.content for m in ms.list(session=s.session).memories] for s in ms.sessions()
    }
    assert stored == {"crewai:/crew/research/agent/analyst/facts": ["Acme Corp lacks API docs"]}
    second, llm = crew_with_memory("Acme still lacks docs.")
    second.kickoff()
    assert "Acme Corp lacks API docs" in prompt_text(llm.calls[0])


def test_importing_these_tests_leaves_home_alone():
    code = (
        "import os; home = os.environ.get('HOME'); import tests.test_crewai; "
        "assert os.environ.get('HOME') == home, os.environ.get('HOME')"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def test_repeated_runs_keep_one_current_summary_and_their_history(backend_ms):
    """Issue 16: runs of one crew on the same inputs supersede the previous summary; a run
    on other inputs stays current beside it."""
    ms = backend_ms
    results = [
        "Acme leads on pricing; five competitors reviewed; focus on API docs next.",
        "Acme leads on pricing; six competitors reviewed; focus on API docs next.",
        "Acme leads on pricing; six competitors reviewed; focus on the API docs next quarter.",
    ]
    for text in results:
        llm = ScriptedLLM(model="scripted", responses=[final(text)])
        kickoff_with_memory(one_agent_crew(llm), ms, session="p", inputs={"topic": "Acme"})
    llm = ScriptedLLM(model="scripted", responses=[final("Hire two backend engineers in May.")])
    kickoff_with_memory(one_agent_crew(llm), ms, session="p", inputs={"topic": "hiring"})
    current = ms.list(session="p").memories
    assert sorted(m.content.splitlines()[-1] for m in current) == sorted(
        ["Result: " + results[-1], "Result: Hire two backend engineers in May."]
    )
    history = ms.list(session="p", include_superseded=True).memories
    assert len(history) == 4
    superseded = [m for m in history if m.superseded_at is not None]
    assert len(superseded) == 2 and all(m.superseded_by for m in superseded)
    found = ms.recall("What did the Acme runs find?", session="p")
    assert all(m.superseded_at is None for m in found)
