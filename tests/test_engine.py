"""The agent loop with the offline model: what a turn produces and stores."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Literal

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import BaseModel

from agentnb.events import (
    ApprovalRequested,
    MessageCompleted,
    Token,
    ToolCallFinished,
    ToolCallStarted,
    TurnError,
    TurnFinished,
    TurnStarted,
    Usage,
)
from agentnb.models import OfflineChatModel


class Boom(RuntimeError):
    pass


class RateLimitError(Exception):
    """Named like the providers' rate-limit errors, so the engine retries it."""


class ScriptedModel(BaseChatModel):
    """A test model: raises the queued errors first, then answers like the offline model."""

    errors: list = []
    calls: int = 0
    seen: list = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools, **kwargs):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.calls += 1
        self.seen.append(list(messages))
        if self.errors:
            raise self.errors.pop(0)
        text = "fine: " + str(messages[-1].content)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(
            text, usage_metadata={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}))])


class LoopingModel(BaseChatModel):
    """Always asks for another tool call: the loop must stop at max_iterations."""

    @property
    def _llm_type(self) -> str:
        return "looping"

    def bind_tools(self, tools, **kwargs):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        n = sum(1 for m in messages if m.type == "tool")
        msg = AIMessage("", tool_calls=[{"id": f"c{n}", "name": "add", "args": {"a": n, "b": 1}}])
        return ChatResult(generations=[ChatGeneration(message=msg)])


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def mul(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@pytest.fixture
def calc(duck_store):
    agent = duck_store.create_agent("calc", system="You are a calculator.")
    agent.tool(add)
    agent.tool(mul)
    return agent


def test_one_tool_call_turn(calc, duck_store):
    events = list(calc.stream("Please add(a=2, b=3)"))
    kinds = [type(e) for e in events]
    assert kinds[0] is TurnStarted and kinds[-1] is TurnFinished
    assert ToolCallStarted in kinds and ToolCallFinished in kinds and Usage in kinds
    assert any(isinstance(e, Token) for e in events)
    reply = events[-1].reply
    assert reply.status == "complete"
    assert "5" in reply.text
    (call,) = reply.tool_calls
    assert (call.tool_name, call.input_args, call.output, call.status) == (
        "add", {"a": 2, "b": 3}, "5", "success")
    assert call.error_message is None and call.execution_time_ms >= 0
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    # stored: user, assistant with the call, tool result, final assistant
    history = duck_store.history(reply.session_id)
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[0].content == "Please add(a=2, b=3)"
    assert history[1].tool_calls[0].output == "5"
    assert history[2].content == "5"
    assert history[3].content == reply.text
    assert all(m.model == "offline" for m in history if m.role == "assistant")
    assert sum(m.output_tokens or 0 for m in history) == reply.usage.output_tokens
    assert sum(m.input_tokens or 0 for m in history) == reply.usage.input_tokens


def test_turns_continue_the_session(calc, duck_store):
    first = calc.chat("hello there")
    second = calc.chat("and again")
    assert first.session_id == second.session_id
    assert [m.position for m in duck_store.history(first.session_id)] == [0, 1, 2, 3]
    third = calc.chat("fresh start", new_session=True)
    assert third.session_id != first.session_id


def test_parallel_tool_calls_overlap(duck_store):
    agent = duck_store.create_agent("par")
    # Each call waits for the other to have started: only calls that run at the same
    # time get past the barrier (the timeout is a safety net, not the test).
    both_running = threading.Barrier(2, timeout=60)

    def slow_a(x: int) -> int:
        """Slow identity A."""
        both_running.wait()
        return x

    def slow_b(x: int) -> int:
        """Slow identity B."""
        both_running.wait()
        return x * 10

    agent.tool(slow_a)
    agent.tool(slow_b)
    reply = agent.chat("run slow_a(x=1) and slow_b(x=2)")
    assert [c.tool_name for c in reply.tool_calls] == ["slow_a", "slow_b"]
    # both passed the barrier: they ran in parallel
    assert [c.output for c in reply.tool_calls] == ["1", "20"]
    assert "1" in reply.text and "20" in reply.text
    history = duck_store.history(reply.session_id)
    assert len(history[1].tool_calls) == 2


def test_failing_tool_becomes_error_the_model_sees(duck_store):
    agent = duck_store.create_agent("f")

    def explode(x: int) -> int:
        """Always fails."""
        raise ValueError(f"cannot handle {x}")

    agent.tool(explode)
    reply = agent.chat("explode(x=7)")
    assert reply.status == "complete"
    (call,) = reply.tool_calls
    assert call.status == "error" and "ValueError: cannot handle 7" in call.error_message
    tool_msg = duck_store.history(reply.session_id)[2]
    assert tool_msg.role == "tool" and "cannot handle 7" in tool_msg.content
    assert "error" in reply.text.lower() or "cannot handle 7" in reply.text


def test_slow_tool_times_out(duck_store):
    agent = duck_store.create_agent("slow", tool_timeout=0.2)
    release = threading.Event()

    def sleepy(seconds: float) -> str:
        """Sleeps."""
        release.wait(seconds)  # never set before the timeout: the call cannot beat it
        return "woke"

    agent.tool(sleepy)
    try:
        reply = agent.chat("sleepy(seconds=120)")
    finally:
        release.set()
    (call,) = reply.tool_calls
    assert call.status == "timeout"
    assert reply.status == "complete"


def test_max_iterations(duck_store):
    agent = duck_store.create_agent("loop", max_iterations=3)
    agent.tool(add)
    reply = agent.chat("go", model=LoopingModel())
    assert reply.status == "error" and "max_iterations=3" in reply.error
    history = duck_store.history(reply.session_id)
    assert sum(1 for m in history if m.role == "tool") == 3
    assert history[-1].status == "error"
    # the session is still usable
    assert agent.chat("hello").status == "complete"


def test_model_error_is_stored_and_session_survives(duck_store):
    agent = duck_store.create_agent("m")
    model = ScriptedModel(errors=[Boom("the model broke")])
    events = list(agent.stream("hi", model=model))
    assert any(isinstance(e, TurnError) and "the model broke" in e.message for e in events)
    reply = events[-1].reply
    assert reply.status == "error" and "Boom: the model broke" == reply.error
    history = duck_store.history(reply.session_id)
    assert [(m.role, m.status) for m in history] == [("user", "complete"), ("assistant", "error")]
    assert history[1].attrs["error"] == "Boom: the model broke"
    ok = agent.chat("again", model=model)
    assert ok.status == "complete" and ok.text == "fine: again"
    # the failed turn's empty answer is not replayed to the model
    assert [m.type for m in model.seen[-1]] == ["human", "human"]


def test_retryable_model_error_is_retried(duck_store, monkeypatch):
    import agentnb.engine as engine

    monkeypatch.setattr(engine, "RETRY_BASE_DELAY", 0.01)
    agent = duck_store.create_agent("r")
    model = ScriptedModel(errors=[RateLimitError("slow down"), TimeoutError("timed out")])
    events = list(agent.stream("hi", model=model))
    retries = [e for e in events if isinstance(e, TurnError)]
    assert len(retries) == 2 and all(e.retryable for e in retries)
    assert events[-1].reply.status == "complete" and model.calls == 3


def test_retries_are_bounded(duck_store, monkeypatch):
    import agentnb.engine as engine

    monkeypatch.setattr(engine, "RETRY_BASE_DELAY", 0.01)
    agent = duck_store.create_agent("r2")
    model = ScriptedModel(errors=[RateLimitError("no")] * 10)
    reply = agent.chat("hi", model=model)
    assert reply.status == "error" and model.calls == engine.MAX_MODEL_RETRIES + 1


def test_closing_the_stream_early_keeps_partial_answer(duck_store):
    agent = duck_store.create_agent("long", model_kwargs={"token_delay": 0.005})
    stream = agent.stream("Tell me a story in 400 words")
    got = []
    for event in stream:
        if isinstance(event, Token):
            got.append(event.text)
            if len(got) >= 10:
                break
    stream.close()
    session = agent.session_id
    history = duck_store.history(session)
    assert [m.role for m in history] == ["user", "assistant"]
    assert history[1].status == "interrupted"
    assert history[1].content.startswith("".join(got))
    assert 0 < len(history[1].content.split()) < 400
    # the stream never reported usage: the stored tokens are the counter's estimate
    from langchain_core.messages import AIMessage

    model = duck_store.runtime.model("offline", {"token_delay": 0.005})
    assert history[1].output_tokens == model.get_num_tokens_from_messages(
        [AIMessage(history[1].content)]) > 0
    assert history[1].input_tokens > 0 and history[1].attrs["usage"] == "estimated"
    assert agent.chat("still there?").status == "complete"


class StreamingSignal(OfflineChatModel):
    """The offline model, saying (``STREAMING``) when its answer has begun to stream.

    The interrupt tests wait for this event, not for a duration: on a busy machine a
    fixed delay could land before the first token (nothing partial to keep).
    """

    def _chunks(self, plan, kwargs):
        for i, chunk in enumerate(super()._chunks(plan, kwargs)):
            if i == 3:  # three tokens went out already
                STREAMING.set()
            yield chunk


STREAMING = threading.Event()
SAFETY_NET = 60  # seconds: a test that waits this long has failed


def test_ctrl_c_interrupts_chat(duck_store):
    import _thread

    STREAMING.clear()
    agent = duck_store.create_agent("ctrlc")
    model = StreamingSignal(token_delay=0.01)

    def interrupt_once_streaming() -> None:
        if STREAMING.wait(SAFETY_NET):
            _thread.interrupt_main()

    interrupter = threading.Thread(target=interrupt_once_streaming)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        agent.chat("Tell me a story in 2000 words", model=model)
    interrupter.join()
    history = duck_store.history(agent.session_id)
    assert history[-1].status == "interrupted" and history[-1].content


def test_async_cancel_keeps_partial(duck_store):
    STREAMING.clear()
    agent = duck_store.create_agent("acancel")
    model = StreamingSignal(token_delay=0.01)

    async def main():
        task = asyncio.ensure_future(agent.achat("Tell me a story in 1000 words", model=model))
        started = await asyncio.get_running_loop().run_in_executor(
            None, STREAMING.wait, SAFETY_NET)
        assert started, "the answer never began to stream"
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    history = duck_store.history(agent.session_id)
    assert history[-1].status == "interrupted" and history[-1].content


def test_async_api(calc):
    async def main():
        kinds = [type(e).__name__ async for e in calc.astream("add(a=1, b=1)")]
        reply = await calc.achat("mul(a=3, b=4)")
        return kinds, reply

    kinds, reply = asyncio.run(main())
    assert kinds[0] == "TurnStarted" and kinds[-1] == "TurnFinished"
    assert reply.tool_calls[0].output == "12"


class Label(BaseModel):
    sentiment: Literal["positive", "negative", "neutral"]
    score: int


def test_structured_output(duck_store):
    agent = duck_store.create_agent("lab")
    reply = agent.chat("This is negative, score 3", schema=Label)
    assert isinstance(reply.data, Label)
    assert reply.data.sentiment == "negative"
    stored = duck_store.history(reply.session_id)[-1]
    assert stored.attrs["schema"] == "Label"
    assert Label.model_validate_json(stored.content) == reply.data


def test_approval_required_tools(duck_store):
    agent = duck_store.create_agent("appr")

    def wipe(path: str) -> str:
        """Pretend to delete a path."""
        return f"wiped {path}"

    agent.tool(wipe, requires_approval=True)
    denied = agent.chat("wipe(path='x')")
    assert denied.tool_calls[0].status == "denied"
    seen = []
    approved = agent.chat("wipe(path='y')", approve=lambda ev: seen.append(ev) or True)
    assert isinstance(seen[0], ApprovalRequested) and seen[0].input_args == {"path": "y"}
    assert approved.tool_calls[0].status == "success" and approved.tool_calls[0].output == "wiped y"
    agent.set(auto_approve=True)
    assert agent.chat("wipe(path='z')").tool_calls[0].status == "success"


def test_no_tools_flag(calc):
    reply = calc.chat("add(a=1, b=2)", tools=False)
    assert reply.tool_calls == []


def test_unknown_tool_in_config_is_skipped(duck_store):
    agent = duck_store.create_agent("ghost", tools=["not_defined_anywhere"])
    reply = agent.chat("hello")
    assert reply.status == "complete"


def test_empty_message_is_a_user_error(calc):
    from agentnb.errors import UserError

    with pytest.raises(UserError):
        calc.chat("   ")


def test_history_cache_sees_turns_written_elsewhere(duckdb_url):
    """The engine caches a session's history; a turn stored by another Store must show."""
    import agentnb
    from agentnb.schemas import NewMessage

    store = agentnb.connect(duckdb_url)
    agent = store.create_agent("c")
    model = ScriptedModel()
    agent.chat("first", model=model)
    agent.chat("second", model=model)
    other = agentnb.connect(duckdb_url)
    other._repo.append_turn(agent.session_id, [
        NewMessage(role="user", content="written by another store"),
        NewMessage(role="assistant", content="noted"),
    ])
    other.close()
    agent.chat("third", model=model)
    humans = [m.content for m in model.seen[-1] if m.type == "human"]
    assert humans == ["first", "second", "written by another store", "third"]
    # switching strategy reuses nothing stale
    agent.set(memory="window", **{"memory.window_turns": 1})
    agent.chat("fourth", model=model)
    assert [m.content for m in model.seen[-1] if m.type == "human"] == ["third", "fourth"]
    agent.set(memory="full")
    agent.chat("fifth", model=model)
    assert [m.content for m in model.seen[-1] if m.type == "human"] == [
        "first", "second", "written by another store", "third", "fourth", "fifth"]
    store.close()


def test_run_python_is_off_by_default_and_asks_for_approval(duck_store):
    """The built-in run_python: not enabled unless asked for; every call needs approval
    (denied without an answer) unless the agent auto-approves."""
    from agentnb.templates import list_templates

    namespace = {"x": 20}
    duck_store.runtime.namespace = namespace
    plain = duck_store.create_agent("plain")
    assert plain.config.tools == []
    reply = plain.chat("run_python(code='x = 1')")
    assert reply.tool_calls == [] and namespace == {"x": 20}
    assert all("run_python" not in t.config.tools for t in list_templates())

    coder = duck_store.create_agent("coder", tools=["run_python"])
    denied = coder.chat("run_python(code='y = x + 22')")
    (call,) = denied.tool_calls
    assert call.status == "denied" and "y" not in namespace
    asked = []
    approved = coder.chat("run_python(code='y = x + 22')",
                          approve=lambda event: asked.append(event.tool_name) or True)
    assert asked == ["run_python"]
    assert approved.tool_calls[0].status == "success" and namespace["y"] == 42
    coder.set(auto_approve=True)
    auto = coder.chat("run_python(code='z = y * 2')",
                      approve=lambda event: pytest.fail("auto_approve must not ask"))
    assert auto.tool_calls[0].status == "success" and namespace["z"] == 84
    stored = duck_store.history(auto.session_id)
    assert [c.status for m in stored for c in m.tool_calls] == ["denied", "success", "success"]


def test_event_sequence_of_a_tool_calling_turn(calc):
    """The events a front end renders, in order: start, the first model message's tokens
    and usage and completion (one tool call), the call's start and finish, the answer's
    tokens, usage and completion, and the end."""
    events = list(calc.stream("Please add(a=2, b=3)"))
    kinds: list[str] = []
    for e in events:
        name = type(e).__name__
        if not (kinds and kinds[-1] == name == "Token"):
            kinds.append(name)
    assert kinds in (
        ["TurnStarted", "Usage", "MessageCompleted", "ToolCallStarted", "ToolCallFinished",
         "Token", "Usage", "MessageCompleted", "TurnFinished"],
        ["TurnStarted", "Token", "Usage", "MessageCompleted", "ToolCallStarted",
         "ToolCallFinished", "Token", "Usage", "MessageCompleted", "TurnFinished"],
    ), kinds
    completed = [e for e in events if isinstance(e, MessageCompleted)]
    assert [c.tool_call_count for c in completed] == [1, 0]
    reply = events[-1].reply
    assert completed[-1].content == reply.text
    assert "".join(e.text for e in events[events.index(completed[0]):]
                   if isinstance(e, Token)) == reply.text
    usage = [e for e in events if isinstance(e, Usage)]
    assert sum(u.input_tokens for u in usage) == reply.usage.input_tokens
    assert sum(u.output_tokens for u in usage) == reply.usage.output_tokens
    assert all(u.model == "offline" for u in usage)
    started, finished = (next(e for e in events if isinstance(e, t))
                         for t in (ToolCallStarted, ToolCallFinished))
    assert started.call_id == finished.call_id
    assert (finished.tool_name, finished.status, finished.output) == ("add", "success", "5")
    assert finished.execution_time_ms >= 0


def test_timed_out_call_is_stored_and_shown_to_the_model(duck_store):
    agent = duck_store.create_agent("slow2", tool_timeout=0.2)
    release = threading.Event()

    def sleepy(seconds: float) -> str:
        """Sleeps."""
        release.wait(seconds)  # set only after the turn: the call always times out
        return "woke"

    agent.tool(sleepy)
    try:
        reply = agent.chat("sleepy(seconds=120)")
    finally:
        release.set()
    history = duck_store.history(reply.session_id)
    (call,) = history[1].tool_calls
    assert call.status == "timeout" and call.output is None
    assert call.error_message and "0.2" in call.error_message
    assert 150 <= call.execution_time_ms < 120_000  # the timeout, not the tool, ended it
    assert history[2].role == "tool" and history[2].content.startswith("Error: the tool timed out")
