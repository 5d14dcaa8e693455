"""The Python API as a notebook uses it: agent handles, tools by decorator, sessions."""

from __future__ import annotations

import pytest

import agentnb
from agentnb.errors import InvalidValueError


def test_tool_decorator_forms_return_the_function(duck_store):
    agent = duck_store.create_agent("calc")

    @agent.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @agent.tool(requires_approval=True)
    def wipe(path: str) -> str:
        """Pretend to delete a path."""
        return f"wiped {path}"

    def mul(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    assert agent.tool(mul) is mul
    # the functions are still plain functions
    assert add(2, 3) == 5 and wipe("x") == "wiped x" and mul(2, 3) == 6
    # their names are in the stored config, in order, once
    agent.tool(add)
    assert duck_store.agent("calc").config.tools == ["add", "wipe", "mul"]
    assert duck_store.tools.get("wipe").requires_approval is True
    reply = agent.chat("Please add(a=2, b=3) and mul(a=4, b=5)")
    assert [(c.tool_name, c.output) for c in reply.tool_calls] == [("add", "5"), ("mul", "20")]
    assert agent.chat("wipe(path='y')").tool_calls[0].status == "denied"


def test_sessions_history_new_session_and_resume(duck_store):
    agent = duck_store.create_agent("talk")
    assert agent.history() == [] and agent.sessions() == []
    first = agent.chat("first question")
    agent.chat("second question")
    assert [m.role for m in agent.history()] == ["user", "assistant"] * 2
    assert [m.content for m in agent.history(last=1)] == [agent.history()[-1].content]

    fresh = agent.new_session(title="another topic")
    assert agent.session_id == fresh.id != first.session_id
    assert agent.history() == []
    third = agent.chat("third question")
    assert third.session_id == fresh.id

    listing = agent.sessions()
    assert [s.session.id for s in listing] == [fresh.id, first.session_id]  # newest first
    assert [s.turns for s in listing] == [1, 2]
    assert listing[0].session.title == "another topic"

    # a fresh handle (as after a kernel restart) resumes the latest session, or a given one
    again = duck_store.agent("talk")
    assert again.resume().id == fresh.id
    again.resume(str(first.session_id)[:8])
    assert again.chat("back to the first").session_id == first.session_id
    assert [m.content for m in again.history() if m.role == "user"] == [
        "first question", "second question", "back to the first"]
    assert [m.content for m in agent.history(first.session_id) if m.role == "user"][-1] == (
        "back to the first")

    other = duck_store.create_agent("other")
    with pytest.raises(InvalidValueError, match="another agent"):
        other.resume(first.session_id)


def test_create_agent_from_a_template_with_overrides(duck_store):
    agent = duck_store.create_agent("analyst", template="data-analyst",
                                    model_kwargs={"temperature": 0}, memory="window",
                                    max_iterations=4)
    record = duck_store.agent("analyst").record
    assert record.template == "data-analyst"
    assert record.config.tools == ["list_variables", "describe_variable"]
    assert record.config.model == "offline" and record.config.model_kwargs == {"temperature": 0}
    assert record.config.memory.strategy == "window" and record.config.max_iterations == 4
    assert "variables" in record.config.system
    assert repr(agent) == "<agentnb.Agent 'analyst' model='offline' session=new (none yet)>"


def test_connect_with_a_url_and_the_default_store(tmp_path, isolated_home):
    url = f"duckdb:///{tmp_path}/x.duckdb"
    store = agentnb.connect(url)
    store.create_agent("here")
    store.close()
    assert (tmp_path / "x.duckdb").is_file()
    default = agentnb.connect()
    try:
        assert default.agents() == []  # a different store: the one in AGENTNB_HOME
        default.create_agent("there")
    finally:
        default.close()
    assert (isolated_home / "agentnb.duckdb").is_file()


def test_a_turn_on_another_providers_model_gets_only_portable_settings(duck_store):
    """chat(model="offline") on an agent set up for an OpenAI-compatible server: the
    server's base_url does not go to the offline model (it would refuse it); the
    portable settings (temperature, max_tokens, ...) still do."""
    from agentnb.agentconfig import settings_for as _settings_for

    agent = duck_store.create_agent("remote", model="openai:gpt-4o-mini", model_kwargs={
        "base_url": "http://127.0.0.1:9/v1", "max_tokens": 5, "temperature": 0})
    reply = agent.chat("Tell me a story in 50 words", model="offline")
    assert reply.status == "complete" and reply.model == "offline"
    assert len(reply.text.split()) <= 5  # max_tokens reached the offline model
    assert _settings_for("openai:gpt-4o", agent.config) == agent.config.model_kwargs
    assert _settings_for("offline", agent.config) == {"max_tokens": 5, "temperature": 0}
