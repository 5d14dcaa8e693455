"""``agentnb mcp serve`` driven by the mcp SDK's own client, over stdio and streamable HTTP.

Every tool, bad arguments (clear MCP errors), ``query_history`` refusing writes
and file reads, ``--agents``, and API keys over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import agentnb

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

TESTS = Path(__file__).parent
DEMO = [sys.executable, str(TESTS / "mcp_demo_server.py")]
TOOLS = {"chat", "list_agents", "list_sessions", "get_session", "search_history",
         "query_history"}


@pytest.fixture
def home(isolated_home):
    """A store with two agents; calc has the demo MCP server (tools through both ways)."""
    store = agentnb.connect()
    calc = store.create_agent("calc", description="computes")
    calc.mcp.add("demo", DEMO)
    careful = store.create_agent("careful")
    careful.mcp.add("demo", DEMO, approve=True)
    other = store.create_agent("other")
    other.chat("remember the word pelican")
    store.close()
    return isolated_home


@asynccontextmanager
async def stdio_session(home, *args):
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "agentnb.cli", "mcp", "serve", *args],
        env={"AGENTNB_HOME": str(home)})
    with open(Path(home) / "serve.log", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def payload(result):
    """The JSON a tool returned (FastMCP: structured content, else one text block)."""
    assert not result.isError, result.content
    if result.structuredContent is not None:
        data = result.structuredContent
        return data.get("result", data) if set(data) == {"result"} else data
    return json.loads(result.content[0].text)


def error_text(result) -> str:
    assert result.isError
    return " ".join(getattr(c, "text", "") for c in result.content)


def test_every_tool_over_stdio(home):
    async def main():
        async with stdio_session(home) as s:
            listed = await s.list_tools()
            assert {t.name for t in listed.tools} == TOOLS
            chat_tool = next(t for t in listed.tools if t.name == "chat")
            assert chat_tool.inputSchema["required"] == ["agent", "message"]

            agents = payload(await s.call_tool("list_agents", {}))
            assert [a["name"] for a in agents] == ["calc", "careful", "other"]
            assert agents[0]["mcp_servers"] == ["demo"]

            # a turn whose tool comes from another MCP server: MCP both ways
            first = payload(await s.call_tool("chat", {"agent": "calc",
                                                       "message": "demo_multiply(a=6, b=7)"}))
            assert first["answer"] == "demo_multiply returned 42."
            assert first["tool_calls"] == [{"tool": "demo_multiply", "args": {"a": 6, "b": 7},
                                            "status": "success", "output": "42", "error": None,
                                            "server": "demo"}]
            again = payload(await s.call_tool("chat", {
                "agent": "calc", "message": "and once more", "session": first["session_id"]}))
            assert again["session_id"] == first["session_id"]
            # nobody can answer an approval over MCP: denied (unless the agent auto-approves)
            asked = payload(await s.call_tool("chat", {"agent": "careful",
                                                       "message": "demo_multiply(a=1, b=2)"}))
            assert asked["tool_calls"][0]["status"] == "denied"
            fresh = payload(await s.call_tool("chat", {"agent": "calc", "message": "hello"}))
            assert fresh["session_id"] != first["session_id"]  # no session: a new one

            sessions = payload(await s.call_tool("list_sessions", {"agent": "calc"}))
            assert [x["id"] for x in sessions] == [fresh["session_id"], first["session_id"]]
            assert sessions[1]["turns"] == 2
            every = payload(await s.call_tool("list_sessions", {"limit": 2}))
            assert len(every) == 2

            got = payload(await s.call_tool("get_session", {"id": first["session_id"][:8]}))
            assert got["agent"] == "calc"
            assert [m["role"] for m in got["messages"]][:2] == ["user", "assistant"]
            assert got["messages"][1]["tool_calls"][0]["server"] == "demo"

            hits = payload(await s.call_tool("search_history", {"query": "PELICAN"}))
            assert hits and all(h["agent"] == "other" for h in hits)
            assert "pelican" in hits[0]["content"].lower()
            none = payload(await s.call_tool("search_history", {"query": "pelican",
                                                                "agent": "calc"}))
            assert none == []

            rows = payload(await s.call_tool("query_history", {
                "sql": "select tool_name, status, json_extract_string(attrs, '$.server') as "
                       "server from tool_calls order by status"}))
            assert rows == {"columns": ["tool_name", "status", "server"],
                            "rows": [["demo_multiply", "denied", "demo"],
                                     ["demo_multiply", "success", "demo"]],
                            "truncated": False}

            # bad arguments and refusals: clear MCP errors, and the server goes on
            text = error_text(await s.call_tool("chat", {"agent": "calc"}))
            assert "message" in text and "Field required" in text
            text = error_text(await s.call_tool("chat", {"agent": "nobody", "message": "hi"}))
            assert "no agent named 'nobody'" in text
            text = error_text(await s.call_tool("list_sessions", {"limit": 0}))
            assert "greater than or equal to 1" in text
            text = error_text(await s.call_tool("get_session", {"id": "ffffffff"}))
            assert "no session" in text
            for sql, reason in [
                ("delete from agents", "only SELECT"),
                ("insert into agents values (1)", "only SELECT"),
                ("copy agents to '/tmp/x.csv'", "only SELECT"),
                ("select * from read_text('/etc/passwd')", "not allowed"),
                ("select * from '/etc/passwd'", "not a table of the store"),
                ("select 1; select 2", "one SQL statement"),
            ]:
                text = error_text(await s.call_tool("query_history", {"sql": sql}))
                assert reason in text, (sql, text)
            assert payload(await s.call_tool("list_agents", {}))  # still serving

    asyncio.run(main())
    store = agentnb.connect()
    assert store.agent("other").mcp.list() == {}
    assert store.counts()["agents"] == 3  # nothing was written by the refused SQL
    store.close()


def test_agents_option_limits_what_is_served(home):
    async def main():
        async with stdio_session(home, "--agents", "other") as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert names == TOOLS - {"query_history"}
            agents = payload(await s.call_tool("list_agents", {}))
            assert [a["name"] for a in agents] == ["other"]
            text = error_text(await s.call_tool("chat", {"agent": "calc", "message": "hi"}))
            assert "no agent named 'calc' here (agents: other)" in text
            sessions = payload(await s.call_tool("list_sessions", {}))
            assert {x["agent"] for x in sessions} == {"other"}

    asyncio.run(main())


def test_serve_with_an_unknown_agent_is_one_line(home):
    proc = subprocess.run([sys.executable, "-m", "agentnb.cli", "mcp", "serve", "--agents",
                           "nobody"], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "nobody" in proc.stderr


# -- streamable HTTP with API keys ---------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_serve(home):
    port = free_port()
    log = Path(home) / "serve-http.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "agentnb.cli", "mcp", "serve", "--http",
                                 "--port", str(port)], stdout=subprocess.DEVNULL, stderr=err,
                                stdin=subprocess.DEVNULL, env={**os.environ})
    deadline = time.monotonic() + 180
    while "agentnb mcp serve: http://" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@asynccontextmanager
async def http_session(url, key):
    import httpx
    from mcp.client.streamable_http import streamable_http_client

    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"},
                                 timeout=httpx.Timeout(60, read=300)) as client:
        async with streamable_http_client(url, http_client=client) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def test_http_needs_a_key_and_a_key_reaches_its_agent(home, http_serve):
    import httpx

    store = agentnb.connect()
    calc_key = store.create_key("calc").key
    admin_key = store.create_key(admin=True).key
    store.close()
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    for auth in (None, "Bearer not-a-key", f"Basic {calc_key}"):
        sent = {**headers, **({"Authorization": auth} if auth else {})}
        response = httpx.post(http_serve, json=hello, headers=sent, timeout=60)
        assert response.status_code == 401, (auth, response.text)
        assert calc_key not in response.text

    async def main():
        async with http_session(http_serve, calc_key) as s:
            agents = payload(await s.call_tool("list_agents", {}))
            assert [a["name"] for a in agents] == ["calc"]
            reply = payload(await s.call_tool("chat", {"agent": "calc",
                                                       "message": "demo_multiply(a=2, b=21)"}))
            assert reply["tool_calls"][0]["output"] == "42"
            text = error_text(await s.call_tool("chat", {"agent": "other", "message": "hi"}))
            assert "no agent named 'other' here" in text
            text = error_text(await s.call_tool("query_history", {"sql": "select 1"}))
            assert "needs an admin key" in text
        async with http_session(http_serve, admin_key) as s:
            agents = payload(await s.call_tool("list_agents", {}))
            assert [a["name"] for a in agents] == ["calc", "careful", "other"]
            rows = payload(await s.call_tool("query_history", {
                "sql": "select count(*) as n from messages"}))
            assert rows["rows"][0][0] >= 4
            text = error_text(await s.call_tool("query_history",
                                                {"sql": "select * from api_keys; drop table x"}))
            assert "one SQL statement" in text

    asyncio.run(main())
