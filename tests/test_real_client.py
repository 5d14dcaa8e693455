"""The real-client path: agentnb + langchain-openai against an OpenAI-compatible
server on 127.0.0.1 (streaming and tool calls), with the API key sent to the
server and stored nowhere."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import agentnb
from agentnb.events import Token, ToolCallFinished, TurnFinished
from tests.openai_server import OpenAIServer, openai_server  # noqa: F401

SECRET = "sk-agentnb-test-0123456789abcdefSECRET"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.fixture
def remote_agent(openai_server, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    store = agentnb.connect(f"duckdb:///{tmp_path}/real.duckdb")
    agent = store.create_agent(
        "remote", model="openai:test-model",
        model_kwargs={"base_url": openai_server.url, "max_retries": 0, "timeout": 10},
        system="You add numbers.")
    agent.tool(add)
    yield store, agent, openai_server
    store.close()


def test_streaming_turn_with_tool_call(remote_agent):
    store, agent, server = remote_agent
    events = list(agent.stream("Please add(a=20, b=22)"))
    reply = events[-1].reply
    assert isinstance(events[-1], TurnFinished) and reply.status == "complete"
    assert sum(isinstance(e, Token) for e in events) > 1  # it streamed
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [(e.tool_name, e.input_args, e.output) for e in finished] == [
        ("add", {"a": 20, "b": 22}, "42")]
    assert "42" in reply.text
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    # two model calls: the tool call, then the answer with the tool result in it
    bodies = [r["body"] for r in server.requests]
    assert all(b["stream"] is True and b["model"] == "test-model" for b in bodies)
    assert bodies[0]["tools"][0]["function"]["name"] == "add"
    assert bodies[0]["messages"][0] == {"role": "system", "content": "You add numbers."}
    assert any(m["role"] == "tool" and m["content"] == "42" for m in bodies[1]["messages"])
    history = store.history(reply.session_id)
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[1].tool_calls[0].output == "42"
    assert history[-1].model == "openai:test-model"


def test_key_sent_to_server_and_stored_nowhere(remote_agent, tmp_path):
    store, agent, server = remote_agent
    reply = agent.chat("hello there")
    agent.chat("add(a=1, b=2)")
    assert reply.status == "complete"
    assert server.requests and all(
        r["headers"]["Authorization"] == f"Bearer {SECRET}" for r in server.requests)
    # nowhere in the store: every text column of every table...
    with store._db.read() as conn:
        for table in ("agents", "sessions", "messages", "tool_calls", "api_keys"):
            rows = conn.exec_driver_sql(f"select * from {table}").fetchall()
            assert SECRET not in repr(rows), table
    # ...nor in the reply, nor in the database files on disk
    assert SECRET not in reply.model_dump_json()
    store.close()
    for path in Path(tmp_path).glob("real.duckdb*"):
        assert SECRET.encode() not in path.read_bytes(), path.name
    assert SECRET not in repr(agent) and SECRET not in repr(agent.config)


def test_server_error_is_a_failed_turn_not_a_crash(remote_agent, monkeypatch):
    store, agent, server = remote_agent
    # point the agent at a port where nothing listens: connection refused
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    monkeypatch.setattr("agentnb.engine.RETRY_BASE_DELAY", 0.01)
    agent.set(base_url=f"http://127.0.0.1:{dead_port}/v1")
    reply = agent.chat("hello?")
    assert reply.status == "error" and reply.error
    assert SECRET not in reply.error
    history = store.history(reply.session_id)
    assert history[-1].status == "error"
