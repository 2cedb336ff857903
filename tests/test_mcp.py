"""The MCP server, driven by the official MCP client: over stdio (`memstore mcp`, local and
remote mode) and over streamable HTTP (`/mcp` in a real `memstore serve`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from memstore import Memstore
from memstore.stores import open_store
from tests.servers import BIN, ServerProcess

TOOLS = {"remember", "recall", "forget", "list_memories", "list_sessions"}


@asynccontextmanager
async def stdio_session(*args: str, env: dict[str, str] | None = None) -> AsyncIterator:
    params = StdioServerParameters(command=str(BIN / "memstore"), args=["mcp", *args], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(url: str, key: str) -> AsyncIterator:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(url, http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())


async def call(session: ClientSession, tool: str, /, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; its structured result."""
    result = await session.call_tool(tool, arguments)
    assert not result.isError, result.content
    assert json.loads(result.content[0].text) == result.structuredContent
    return result.structuredContent


async def fails(session: ClientSession, tool: str, /, **arguments: Any) -> str:
    """Call a tool that must fail; the error text the model sees."""
    result: CallToolResult = await session.call_tool(tool, arguments)
    assert result.isError, result.structuredContent
    return result.content[0].text


def cli(data_dir: Path, *args: str) -> Any:
    out = subprocess.run(
        [str(BIN / "memstore"), *args, "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


async def exercise_every_tool(session: ClientSession) -> None:
    """List the tools, then call each one and check what it returns (default session set)."""
    listed = await session.list_tools()
    assert {t.name for t in listed.tools} == TOOLS
    for tool in listed.tools:
        assert tool.description and tool.inputSchema["type"] == "object"
        assert "\n " not in tool.description  # dedented for the model
    remember = next(t for t in listed.tools if t.name == "remember")
    assert remember.inputSchema["required"] == ["content"]
    assert set(remember.inputSchema["properties"]) == {
        "content",
        "session",
        "metadata",
        "ttl",
        "supersedes",
        "on_similar",
    }

    stored = await call(
        session, "remember", content="Deploys go to Fly.io, region ams", metadata={"kind": "ops"}
    )
    memory = stored["memory"]
    assert memory["session"] == "proj" and stored["deduplicated"] is False
    again = await call(session, "remember", content="Deploys go to Fly.io, region ams")
    assert again["deduplicated"] is True and again["memory"]["id"] == memory["id"]
    other = await call(session, "remember", content="Standup is at 9:30", session="team")
    assert other["memory"]["session"] == "team"

    found = (await call(session, "recall", query="where do we deploy?"))["memories"]
    assert [m["id"] for m in found] == [memory["id"]]
    assert set(found[0]) >= {"id", "content", "score", "session", "created_at"}
    assert 0 < found[0]["score"] <= 1
    both = await call(session, "recall", query="deploy standup", sessions=["proj", "team"])
    assert {m["id"] for m in both["memories"]} == {memory["id"], other["memory"]["id"]}
    assert (await call(session, "recall", query="deploy", filters={"kind": "nope"}))[
        "memories"
    ] == []

    page = await call(session, "list_memories", session="*", limit=1)
    assert len(page["memories"]) == 1 and page["next_cursor"]
    rest = await call(session, "list_memories", session="*", cursor=page["next_cursor"])
    assert len(rest["memories"]) == 1 and rest["next_cursor"] is None
    sessions = (await call(session, "list_sessions"))["sessions"]
    assert {s["session"]: s["count"] for s in sessions} == {"proj": 1, "team": 1}

    assert await call(session, "forget", id=other["memory"]["id"]) == {
        "forgotten": other["memory"]["id"]
    }
    assert "not_found" in await fails(session, "forget", id=other["memory"]["id"])
    assert "limit must be between 1 and 100" in await fails(session, "recall", query="x", limit=0)
    assert "content must not be empty" in await fails(session, "remember", content="  ")
    assert "either session or sessions" in await fails(
        session, "recall", query="x", session="a", sessions=["b"]
    )


def test_stdio_local_mode_runs_every_tool_on_the_embedded_store(tmp_path):
    data = tmp_path / "data"

    async def scenario() -> None:
        async with stdio_session("--data-dir", str(data), "--session", "proj") as session:
            await exercise_every_tool(session)

    run(scenario)
    with Memstore.local(data) as ms:
        assert [m.session for m in ms.list("*").memories] == ["proj"]


def test_stdio_local_mode_shares_memories_with_the_sdk_and_the_cli(tmp_path):
    data = tmp_path / "data"
    with Memstore.local(data) as ms:
        ms.remember("The SDK wrote this: invoices are due on the 5th", session="billing")
    cli(data, "remember", "The CLI wrote this: refunds need a manager", "--session", "billing")

    async def scenario() -> str:
        async with stdio_session("--data-dir", str(data)) as session:
            found = await call(session, "recall", query="invoices due", session="billing")
            assert "The SDK wrote this" in found["memories"][0]["content"]
            found = await call(session, "recall", query="refunds", session="billing")
            assert "The CLI wrote this" in found["memories"][0]["content"]
            stored = await call(session, "remember", content="MCP wrote this: VAT is 21%")
            assert stored["memory"]["session"] is None  # no --session: the shared session
            return stored["memory"]["id"]

    mcp_id = run(scenario)
    with Memstore.local(data) as ms:
        assert ms.recall("VAT rate")[0].id == mcp_id
    assert cli(data, "recall", "VAT rate")["memories"][0]["id"] == mcp_id


def test_stdio_remote_mode_goes_through_the_server(server):
    key = server.key("mcp-remote").key
    env = {"MEMSTORE_BASE_URL": server.url, "MEMSTORE_API_KEY": key}
    with Memstore(api_key=key, base_url=server.url) as ms:
        ms.remember("The SDK wrote this remotely: the office wifi is memstore-5g", session="office")

    async def scenario() -> str:
        async with stdio_session("--session", "office", env=env) as session:
            await exercise_every_tool_remote(session)
            found = await call(session, "recall", query="wifi network name")
            assert "The SDK wrote this remotely" in found["memories"][0]["content"]
            stored = await call(session, "remember", content="MCP wrote this: parking is level -2")
            return stored["memory"]["id"]

    mcp_id = run(scenario)
    with Memstore(api_key=key, base_url=server.url) as ms:
        assert ms.recall("where to park", session="office")[0].id == mcp_id


async def exercise_every_tool_remote(session: ClientSession) -> None:
    """The tools answer from the server: its sessions, its errors."""
    assert {t.name for t in (await session.list_tools()).tools} == TOOLS
    sessions = (await call(session, "list_sessions"))["sessions"]
    assert sessions == [{"session": "office", "count": 1}]
    page = await call(session, "list_memories")
    assert [m["session"] for m in page["memories"]] == ["office"]
    assert "not_found" in await fails(session, "forget", id="mem_" + "0" * 24)


def test_stdio_remote_mode_with_a_bad_key_reports_the_server_error(server):
    async def scenario() -> str:
        async with stdio_session("--base-url", server.url, "--api-key", "am_live_nope") as s:
            return await fails(s, "recall", query="anything")

    assert "invalid API key" in run(scenario)


def test_http_serves_every_tool_at_slash_mcp(server):
    key = server.key("mcp-http").key

    async def scenario() -> None:
        async with http_session(server.url + "/mcp?session=proj", key) as session:
            await exercise_every_tool(session)

    run(scenario)


async def exercise_memory_over_time(session: ClientSession) -> None:
    """A corrected fact replaces the old one in recall; near-duplicates skip or supersede."""
    old = await call(session, "remember", content="The staging database runs PostgreSQL 14")
    old_id = old["memory"]["id"]
    new = await call(
        session,
        "remember",
        content="The staging database was upgraded to PostgreSQL 17",
        supersedes=[old_id],
    )
    found = (await call(session, "recall", query="staging database PostgreSQL version"))["memories"]
    assert [m["id"] for m in found] == [new["memory"]["id"]]
    assert "not_found" in await fails(
        session, "remember", content="x", supersedes=["mem_" + "0" * 24]
    )
    assert "on_similar" in await fails(session, "remember", content="x", on_similar="merge")

    summary = "Weekly run: 12 leads qualified, 3 demos booked, pipeline value $48k"
    first = await call(session, "remember", content=summary)
    rerun = summary.replace("12 leads", "13 leads")
    skipped = await call(session, "remember", content=rerun, on_similar="skip")
    assert skipped["deduplicated"] is True
    assert skipped["memory"]["id"] == first["memory"]["id"]
    replaced = await call(session, "remember", content=rerun, on_similar="supersede")
    assert replaced["deduplicated"] is False
    found = (await call(session, "recall", query="weekly run leads demos"))["memories"]
    assert found[0]["id"] == replaced["memory"]["id"]
    assert first["memory"]["id"] not in [m["id"] for m in found]
    assert all(m["similar"] == 0 for m in found)


def test_stdio_supersedes_and_on_similar(tmp_path):
    async def scenario() -> None:
        async with stdio_session("--data-dir", str(tmp_path / "data")) as session:
            await exercise_memory_over_time(session)

    run(scenario)


def test_http_supersedes_and_on_similar(server):
    key = server.key("mcp-over-time").key

    async def scenario() -> None:
        async with http_session(server.url + "/mcp?session=ops", key) as session:
            await exercise_memory_over_time(session)

    run(scenario)


def test_http_each_key_sees_only_its_own_account(server):
    key_a, key_b = server.key("mcp-iso-a").key, server.key("mcp-iso-b").key

    async def scenario() -> None:
        async with http_session(server.url + "/mcp", key_a) as a:
            secret = await call(a, "remember", content="A's secret: the launch is on May 4")
            secret_id = secret["memory"]["id"]
            await call(a, "remember", content="A's plan", session="launch")
        async with http_session(server.url + "/mcp", key_b) as b:
            for query in ("launch secret May", "A's plan"):
                found = await call(b, "recall", query=query, session="*")
                assert found["memories"] == []
            assert (await call(b, "list_memories", session="*"))["memories"] == []
            assert (await call(b, "list_sessions"))["sessions"] == []
            assert "not_found" in await fails(b, "forget", id=secret_id)
            assert "not_found" in await fails(
                b, "remember", content="B's takeover", supersedes=[secret_id]
            )
        async with http_session(server.url + "/mcp", key_a) as a:
            found = await call(a, "recall", query="launch secret May", session="*")
            assert secret_id in [m["id"] for m in found["memories"]]

    run(scenario)
    with Memstore(api_key=key_a, base_url=server.url) as ms:
        assert ms.recall("when is the launch")[0].content == "A's secret: the launch is on May 4"


def _initialize() -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        },
    }


def test_http_without_a_valid_key_is_refused_with_a_json_401(server):
    issued = server.key("mcp-revoked")
    store = open_store(data_dir=str(server.data_dir))
    try:
        store.revoke_key(issued.key_id, time.time())
    finally:
        store.close()
    headers = {"Accept": "application/json, text/event-stream"}
    cases = {
        None: "missing API key",
        "Bearer am_live_unknown": "invalid API key",
        f"Bearer {issued.key}": "revoked",
    }
    for auth, message in cases.items():
        sent = headers if auth is None else {**headers, "Authorization": auth}
        r = httpx.post(server.url + "/mcp", json=_initialize(), headers=sent, timeout=60)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"
        assert message in r.json()["error"]["message"]
        assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_http_get_is_405_since_stateless_mcp_has_no_server_stream(server):
    key = server.key("mcp-get").key
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    r = httpx.get(server.url + "/mcp", headers=headers, timeout=10)
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_http_quota_used_up_is_a_tool_error_with_the_api_message(server):
    issued = server.key("mcp-quota", plan="free")
    store = open_store(data_dir=str(server.data_dir))
    try:
        store.add_usage(issued.account_id, time.strftime("%Y-%m", time.gmtime()), 1000, None)
    finally:
        store.close()

    async def scenario() -> None:
        async with http_session(server.url + "/mcp", issued.key) as session:
            message = await fails(session, "remember", content="one too many")
            assert "quota_exceeded" in message
            assert (await call(session, "list_sessions"))["sessions"] == []  # free reads work

    run(scenario)


def test_http_mcp_works_across_several_workers(tmp_path):
    server = ServerProcess(tmp_path / "data", workers=2).start()
    try:
        key = server.key("mcp-workers").key

        async def scenario() -> None:
            for i in range(4):  # each session opens new connections, landing on either worker
                async with http_session(server.url + "/mcp", key) as session:
                    await call(session, "remember", content=f"fact number {i}")
                    found = await call(session, "list_memories", limit=10)
                    assert len(found["memories"]) == i + 1

        run(scenario)
    finally:
        server.stop()
