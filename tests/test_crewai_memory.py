"""``MemstoreMemory``: CrewAI's own memory in memstore, with the real crewai package, a
scripted offline LLM, real stores and a real ``memstore serve``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests import crewai_offline as offline
from tests.crewai_offline import ScriptedLLM, final, prompt_text

# isort: split
# (crewai_offline imports crewai first, in its sandbox)
from crewai import Agent
from crewai.flow.flow import Flow, listen, start
from crewai.memory import MemoryMatch, MemoryRecord, MemoryScope

from memstore import AsyncMemstore, Memstore
from memstore.integrations.crewai import MemstoreMemory, by_agent_role, kickoff_with_memory

pytestmark = pytest.mark.crewai
EXAMPLE = offline.EXAMPLES / "crewai_memory.py"

# Runs the example in a fresh interpreter where constructing an OpenAI client fails loudly
# and is recorded (crewai swallows memory errors, so raising alone would prove nothing).
RUNNER = """
import json, runpy, sys
report, example, *args = sys.argv[1:]
sys.path.insert(0, str(__import__("pathlib").Path(example).parent))
import openai
made = []
def refuse(self, *a, **k):
    made.append(type(self).__name__)
    raise RuntimeError("an OpenAI client was constructed")
openai.OpenAI.__init__ = refuse
openai.AsyncOpenAI.__init__ = refuse
sys.argv = [example, *args]
try:
    runpy.run_path(example, run_name="__main__")
finally:
    with open(report, "w") as fh:
        json.dump({"openai_clients": made, "lancedb": "lancedb" in sys.modules}, fh)
"""


def run_example(tmp_path: Path, name: str, env: dict[str, str], *args: str) -> dict:
    """Run examples/crewai_memory.py --offline in a subprocess; its prompts and report."""
    record, report = tmp_path / f"{name}-prompts.json", tmp_path / f"{name}-report.json"
    cmd = [sys.executable, "-c", RUNNER, str(report), str(EXAMPLE), "--offline"]
    cmd += ["--record", str(record), *args]
    env = offline.subprocess_env(tmp_path, **env)
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    return {
        "stdout": run.stdout,
        "calls": json.loads(record.read_text()),
        **json.loads(report.read_text()),
    }


@pytest.fixture(autouse=True)
def _crewai_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    offline.sandbox(monkeypatch, tmp_path)


# -- a crew's memory across processes


@pytest.mark.parametrize("mode", ["local", "server"])
def test_run_two_in_a_new_process_starts_from_what_run_one_learned(tmp_path, mode, request):
    session = f"project:{uuid.uuid4().hex[:6]}"
    if mode == "local":
        env, args = {}, ["--data-dir", str(tmp_path / "memstore")]
    else:
        server = request.getfixturevalue("server")
        key = server.key(f"crewai-{uuid.uuid4().hex[:8]}").key
        env, args = {"MEMSTORE_API_KEY": key, "MEMSTORE_BASE_URL": server.url}, []
    args += ["--session", session]

    first = run_example(tmp_path, "run1", env, *args, "--topic", "AI agent memory")
    second = run_example(tmp_path, "run2", env, *args, "--topic", "vector databases")

    researcher_1 = prompt_text(first["calls"][0])
    assert first["calls"][0]["agent"] == "Researcher"
    assert "Relevant memories" not in researcher_1
    researcher_2 = prompt_text(second["calls"][0])
    assert second["calls"][0]["agent"] == "Researcher"
    assert "Current Task: Research vector databases" in researcher_2
    assert (
        "Relevant memories:\n- (score=0." in researcher_2
        and 'Task "Research AI agent memory: the main players and what they lack." '
        "(by Researcher) → result: Acme Corp lacks API docs"
        in researcher_2
    )
    assert (
        "Researcher: Acme Corp lacks API docs; Beta Inc has no self-hosted option. (Used what memory recalled.)"
        in second["stdout"]
    )
    # the memory itself never asked an LLM anything, nor built an OpenAI client or LanceDB
    for run in (first, second):
        assert [c["agent"] for c in run["calls"]] == ["Researcher", "Writer"]
        assert run["openai_clients"] == [] and run["lancedb"] is False

    if mode == "server":
        with Memstore(api_key=env["MEMSTORE_API_KEY"], base_url=server.url) as sdk:
            notes = sdk.list(session=session).memories
            found = sdk.recall("what does Acme Corp lack?", session=session)
        assert len(notes) == 4
        assert {n.metadata["agent"] for n in notes} == {"Researcher", "Writer"}
        assert "Acme Corp lacks API docs" in found[0].content
        http = httpx.get(
            f"{server.url}/v1/memory/recall",
            params={"q": "Acme Corp API docs", "session": session},
            headers={"Authorization": f"Bearer {env['MEMSTORE_API_KEY']}"},
        )
        assert http.status_code == 200
        assert (
            "(by Researcher) → result: Acme Corp lacks API docs"
            in http.json()["memories"][0]["content"]
        )


# -- what CrewAI calls, answered by memstore


def test_a_task_leaves_one_clipped_note_not_the_raw_prompt(ms):
    memory = MemstoreMemory(ms, session="p")
    raw = (
        "Task: Research Acme Corp.\nAgent: Researcher\nExpected result: Notes.\n"
        "Result: Thought: I know it\nFinal Answer: Acme Corp lacks API docs. " + "x" * 5000
    )
    [note] = memory.extract_memories(raw)
    assert note.startswith('Task "Research Acme Corp." (by Researcher) → result: Acme Corp lacks')
    assert "Thought" not in note and "Expected result" not in note and len(note) < 1600
    kickoff = memory.extract_memories("Input: hello\nAgent: Helper\nResult: hi there")
    assert kickoff == ['Task "hello" (by Helper) → result: hi there']


def test_recall_uses_the_query_text_and_returns_crewai_matches(backend_ms):
    memory = MemstoreMemory(backend_ms, session="project:alpha")
    memory.remember("Acme Corp lacks API docs", categories=["market"], importance=0.8)
    memory.remember("The office plant needs water on Fridays")
    backend_ms.remember("Another project's secret", session="project:beta")
    [best, other] = memory.recall("Acme API docs", limit=5)
    assert isinstance(best, MemoryMatch) and isinstance(best.record, MemoryRecord)
    assert best.record.content == "Acme Corp lacks API docs" and best.score > other.score
    assert (best.record.categories, best.record.importance, best.record.scope) == (
        ["market"],
        0.8,
        "/",
    )
    assert best.format().startswith("- (score=0.") and "\n  categories: market" in best.format()
    assert "source" not in best.format()  # memstore's own notes stay out of the prompt
    assert [m.record.content for m in memory.recall("plant", categories=["market"])] == [
        "Acme Corp lacks API docs"
    ]


def test_crewais_own_memory_tools_save_and_search_through_memstore(ms):
    llm = ScriptedLLM(
        model="scripted",
        responses=[
            'Thought: save\nAction: save_to_memory\nAction Input: {"contents": ["Beta Inc is cheap"]}',
            'Thought: look\nAction: search_memory\nAction Input: {"queries": ["Beta pricing"]}',
            final("Beta is cheap."),
        ],
    )
    offline.one_agent_crew(llm, memory=MemstoreMemory(ms, session="p")).kickoff(
        inputs={"topic": "Beta"}
    )
    assert "Saved to memory (scope=/, importance=0.5)." in prompt_text(llm.calls[1])
    assert "Found memories:\n- (score=0." in prompt_text(llm.calls[2])
    assert "Beta Inc is cheap" in prompt_text(llm.calls[2])
    assert "Beta Inc is cheap" in [m.content for m in ms.list(session="p").memories]


def test_remember_many_writes_in_the_background_and_recall_waits(backend_ms):
    memory = MemstoreMemory(backend_ms, session="bg")
    assert (
        memory.remember_many(["Fact one about Acme", "Fact two about Beta"], agent_role="R") == []
    )
    assert {m.record.content for m in memory.recall("Acme Beta facts")} == {
        "Fact one about Acme",
        "Fact two about Beta",
    }
    assert {m.metadata["agent"] for m in backend_ms.list(session="bg").memories} == {"R"}


def test_a_failed_background_write_is_logged_not_lost_silently(ms, caplog):
    memory = MemstoreMemory(ms, session="p")
    memory.remember_many(["x" * 40_000])  # over memstore's 32 KiB content limit
    memory.drain_writes()  # like CrewAI's: waits, never raises into the crew
    assert "memstore: saving 1 memories failed" in caplog.text
    assert "ValidationError" in caplog.text
    assert ms.list(session="p").memories == []


def test_scopes_are_sessions_below_the_memorys_session(backend_ms):
    ms = backend_ms
    memory = MemstoreMemory(ms, session="project:alpha")
    memory.remember("Root fact about pricing")
    memory.remember("Acme lacks docs", scope="/research/acme")
    memory.scope("/research").remember("Beta is cheap", scope="/beta")
    assert {s.session for s in ms.sessions()} == {
        "project:alpha",
        "project:alpha/research/acme",
        "project:alpha/research/beta",
    }
    everywhere = {m.record.content for m in memory.recall("facts about companies")}
    assert everywhere == {"Root fact about pricing", "Acme lacks docs", "Beta is cheap"}
    research = memory.recall("facts about companies", scope="/research")
    assert {m.record.scope for m in research} == {"/research/acme", "/research/beta"}
    sliced = memory.slice(["/research/acme"]).recall("companies")
    assert [m.record.content for m in sliced] == ["Acme lacks docs"]
    assert memory.list_scopes() == ["/research"]
    assert memory.list_scopes("/research") == ["/research/acme", "/research/beta"]
    info = memory.info("/research")
    assert (info.record_count, info.child_scopes) == (2, ["/research/acme", "/research/beta"])
    assert [r.content for r in memory.list_records(limit=2)] == [
        "Beta is cheap",
        "Acme lacks docs",
    ]
    assert memory.tree().splitlines()[0] == "/ (3 records)"


def test_forget_reset_and_update_behave_as_crewai_documents(backend_ms):
    ms = backend_ms
    memory = MemstoreMemory(ms, session="p")
    old = memory.remember("Old note", categories=["a"])
    keep = memory.remember("Keep me", scope="/x", metadata={"k": "v"})
    gone = memory.remember("Forget me by id", scope="/x")
    assert memory.forget(record_ids=[gone.id]) == 1
    assert memory.forget(metadata_filter={"k": "other"}) == 0
    assert memory.forget(older_than=datetime.utcnow() - timedelta(days=1)) == 0
    assert memory.forget(categories=["a"]) == 1 and memory.list_records() == [keep]
    updated = memory.update(keep.id, content="Kept and changed", importance=0.9)
    assert (updated.content, updated.importance, updated.metadata) == (
        "Kept and changed",
        0.9,
        {"k": "v"},
    )
    moved = memory.update(keep.id, scope="/y")
    assert moved.scope == "/y" and [r.id for r in memory.list_records()] == [moved.id]
    with pytest.raises(ValueError, match="Record not found"):
        memory.update(old.id, content="x")
    ms.remember("Not the crew's", session="elsewhere")
    memory.reset()
    assert memory.list_records() == []
    assert [s.session for s in ms.sessions()] == ["elsewhere"]


def test_read_only_memory_stores_nothing_but_still_recalls_and_forgets(ms):
    MemstoreMemory(ms, session="p").remember("Acme Corp lacks API docs")
    memory = MemstoreMemory(ms, session="p", read_only=True)
    assert memory.remember("new") is None and memory.remember_many(["new"]) == []
    [record] = memory.list_records()
    assert memory.update(record.id, content="changed").content == "Acme Corp lacks API docs"
    llm = ScriptedLLM(model="scripted", responses=[final("done")])
    offline.one_agent_crew(llm, memory=memory).kickoff(inputs={"topic": "Acme"})
    assert "Acme Corp lacks API docs" in prompt_text(llm.calls[0])
    assert "save_to_memory" not in prompt_text(llm.calls[0])  # CrewAI offers no save tool
    assert [m.content for m in ms.list(session="p").memories] == ["Acme Corp lacks API docs"]
    assert memory.forget() == 1


def test_private_records_are_seen_only_by_their_source(ms):
    memory = MemstoreMemory(ms, session="p")
    memory.remember("Alice's salary is 90k", source="user:alice", private=True)
    memory.remember("The team ships on Fridays")
    assert [m.record.content for m in memory.recall("salary ships")] == [
        "The team ships on Fridays"
    ]
    mine = memory.recall("salary", source="user:alice")
    assert "Alice's salary is 90k" in [m.record.content for m in mine]


# -- sessions the way users think: a project, a user, an agent role


def test_per_user_memories_never_leak(ms):
    llm = ScriptedLLM(
        model="scripted",
        responses=[final("Alice's budget is 40k EUR."), final("Bob wants a demo.")],
    )
    for user in ("alice", "bob"):
        memory = MemstoreMemory(ms, session=f"user:{user}")
        offline.one_agent_crew(llm, memory=memory).kickoff(inputs={"topic": "the budget"})
    assert "Relevant memories" not in prompt_text(llm.calls[1])
    assert [m.session for m in ms.list(session="*").memories] == ["user:bob", "user:alice"]


def test_an_agents_own_memory_carries_over_between_kickoffs(ms):
    llm = ScriptedLLM(model="scripted", responses=[final("Acme lacks API docs."), final("ok")])
    agent = Agent(
        role="Helper", goal="Help", backstory="b", llm=llm, memory=MemstoreMemory(ms, session="a")
    )
    agent.kickoff("What does Acme lack?")
    agent.kickoff("Tell me about Acme again")
    assert 'Task "What does Acme lack?" (by Helper) → result: Acme lacks API docs.' in prompt_text(
        llm.calls[1]
    )


def test_per_agent_role_sessions_with_attach(ms):
    llm = ScriptedLLM(model="scripted", reply=offline.example.offline_reply)
    memory = MemstoreMemory(ms, session=by_agent_role())
    crew = offline.example.research_crew(llm)
    memory.attach(crew).kickoff(inputs={"topic": "agent memory", "project": "alpha"})
    [researcher] = ms.list(session="agent:Researcher").memories
    [writer] = ms.list(session="agent:Writer").memories
    assert "(by Researcher)" in researcher.content and "(by Writer)" in writer.content
    with pytest.raises(ValueError, match="attach"):
        memory.recall("anything")  # CrewAI's recall does not say which agent asks


def test_a_crew_on_the_same_project_session_sees_another_crews_notes(ms):
    memory = MemstoreMemory(ms, session="project:alpha")
    llm = ScriptedLLM(model="scripted", responses=[final("Acme lacks docs."), final("Plan.")])
    offline.one_agent_crew(
        llm, memory=memory, role="Researcher", description="Research {topic}."
    ).kickoff(inputs={"topic": "Acme Corp"})
    other = MemstoreMemory(ms, session="project:alpha")
    offline.one_agent_crew(
        llm, memory=other, role="Planner", description="Plan around {topic}."
    ).kickoff(inputs={"topic": "Acme Corp"})
    assert "(by Researcher) → result: Acme lacks docs." in prompt_text(llm.calls[1])


# -- a Flow's memory


class ResearchFlow(Flow):
    @start()
    def learn(self):
        self.remember("Acme Corp lacks API docs", scope="/facts")
        self.remember(["Beta Inc is cheap", "Gamma has no SDK"])  # a background batch
        return "learned"

    @listen(learn)
    def look_up(self, _):
        return self.recall("which company lacks documentation?", limit=3)


def test_a_flow_remembers_and_recalls_through_memstore(ms):
    flow = ResearchFlow(memory=MemstoreMemory(ms, session="flow:research"))
    matches = flow.kickoff()
    assert matches[0].record.content == "Acme Corp lacks API docs"
    assert {m.record.content for m in matches} == {
        "Acme Corp lacks API docs",
        "Beta Inc is cheap",
        "Gamma has no SDK",
    }
    assert [m.content for m in ms.list(session="flow:research/facts").memories] == [
        "Acme Corp lacks API docs"
    ]
    later = ResearchFlow(memory=MemstoreMemory(ms, session="flow:research"))
    assert later.recall("Acme documentation")[0].record.scope == "/facts"
    assert isinstance(later.memory.scope("/facts"), MemoryScope)


# -- asyncio


def test_async_methods_go_through_the_async_memstore(server):
    key = server.key(f"crewai-{uuid.uuid4().hex[:8]}").key
    sync = Memstore(api_key=key, base_url=server.url)
    sync.close()  # any synchronous call would now fail

    async def main():
        async with AsyncMemstore(api_key=key, base_url=server.url) as ams:
            memory = MemstoreMemory(sync, session="async", async_memstore=ams)
            record = await memory.aremember("Acme Corp lacks API docs", scope="/facts")
            many = await memory.aremember_many(["Beta Inc is cheap"], agent_role="R")
            found = await memory.arecall("Acme API docs", limit=2)
            return record, many, found

    record, many, found = asyncio.run(main())
    assert record.scope == "/facts" and [r.content for r in many] == ["Beta Inc is cheap"]
    assert found[0].record.content == "Acme Corp lacks API docs"
    with Memstore(api_key=key, base_url=server.url) as check:
        assert [m.content for m in check.list(session="async/facts").memories] == [
            "Acme Corp lacks API docs"
        ]


def test_kickoff_async_remembers_and_recalls(ms):
    memory = MemstoreMemory(ms, session="p")
    llm = ScriptedLLM(model="scripted", responses=[final("Acme lacks docs."), final("ok")])
    asyncio.run(offline.one_agent_crew(llm, memory=memory).kickoff_async(inputs={"topic": "Acme"}))
    asyncio.run(offline.one_agent_crew(llm, memory=memory).kickoff_async(inputs={"topic": "Acme"}))
    assert "(by Analyst) → result: Acme lacks docs." in prompt_text(llm.calls[1])


def test_an_async_memstore_alone_is_refused_with_a_hint(tmp_path):
    with pytest.raises(TypeError, match="async_memstore="):
        MemstoreMemory(AsyncMemstore(api_key="am_live_x", base_url="http://127.0.0.1:9"))


# -- the kickoff helper


def test_the_kickoff_helper_lists_earlier_run_summaries_newest_first(ms):
    older = "Crew run for topic=agent memory. Result: agent memory analysis, agent memory notes."
    newer = "Crew run for topic=agent memory. Result: a short update."
    for content in (older, newer):
        ms.remember(content, session="p", metadata={"kind": "crew_run"})
    ranked = [m.content for m in ms.recall("Analyse agent memory", session="p", collapse=False)]
    assert ranked == [older, newer]  # by relevance alone the older one comes first
    llm = ScriptedLLM(model="scripted", responses=[final("done")])
    crew = offline.one_agent_crew(llm, memory=None)
    kickoff_with_memory(crew, ms, session="p", inputs={"topic": "agent memory"}, remember=False)
    system = llm.calls[0]["messages"][0]["content"]
    # The two summaries are near-duplicates: recall collapses them into the newer (issue 16).
    assert newer in system and older not in system


def test_every_name_is_still_importable_from_the_package():
    from memstore.integrations import crewai as integration

    for name in (
        "CrewMemory",
        "MemstoreMemory",
        "MemstoreStorage",
        "RecallMemoryTool",
        "RememberTool",
        "by_agent_role",
        "kickoff_with_memory",
        "summarize_run",
    ):
        assert getattr(integration, name).__module__.startswith("memstore.integrations.crewai")
