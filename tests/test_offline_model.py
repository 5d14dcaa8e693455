"""The offline model: streaming, determinism, tool convention, structured output, usage."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal, TypedDict

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from agentnb.models._calls import count_tokens, find_tool_calls, split_tokens
from agentnb.models.offline import MAX_WORDS, OfflineChatModel


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def mul(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return "It's sunny."


def _stream(
    model: Any, messages: Any, **kwargs: Any
) -> tuple[list[AIMessageChunk], AIMessageChunk]:
    chunks = list(model.stream(messages, **kwargs))
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return chunks, full


@pytest.fixture
def model() -> OfflineChatModel:
    return OfflineChatModel()


# ----------------------------------------------------------------- replies


def test_reply_mentions_the_message(model: OfflineChatModel) -> None:
    reply = model.invoke("What is the capital of France?")
    assert isinstance(reply, AIMessage)
    assert "What is the capital of France?" in reply.text
    assert reply.response_metadata["model_name"] == "offline"
    assert reply.response_metadata["finish_reason"] == "stop"


def test_reply_quotes_only_the_last_human_message_and_system_prompt(
    model: OfflineChatModel,
) -> None:
    reply = model.invoke(
        [
            SystemMessage("You are a pirate."),
            HumanMessage("first question"),
            AIMessage("first answer"),
            HumanMessage("second question"),
        ]
    )
    assert "second question" in reply.text
    assert "first question" not in reply.text
    assert "You are a pirate." in reply.text
    assert "turn 2" in reply.text


def test_long_message_is_excerpted(model: OfflineChatModel) -> None:
    words = [f"w{i}" for i in range(100)]
    reply = model.invoke(" ".join(words)).text
    assert "w0 w1" in reply and "w29" in reply and "w30" not in reply


def test_streaming_reassembles_the_answer(model: OfflineChatModel) -> None:
    question = "Stream this, please: one, two; three!"
    chunks, full = _stream(model, question)
    invoked = model.invoke(question)
    assert len(chunks) == count_tokens(invoked.text) > 5
    assert "".join(c.text for c in chunks) == invoked.text == full.text
    # one word-ish token per chunk
    assert all(len(c.text.split()) <= 1 for c in chunks)
    assert [c.chunk_position for c in chunks].count("last") == 1
    assert chunks[-1].chunk_position == "last"
    assert chunks[-1].usage_metadata is not None
    assert all(c.usage_metadata is None for c in chunks[:-1])
    assert full.usage_metadata == invoked.usage_metadata


def test_astream_matches_stream(model: OfflineChatModel) -> None:
    async def collect() -> list[str]:
        return [c.text async for c in model.astream("async please")]

    assert asyncio.run(collect()) == [c.text for c in model.stream("async please")]


def test_determinism(model: OfflineChatModel) -> None:
    messages = [SystemMessage("Be brief."), HumanMessage("Same input twice, add(a=1, b=2)")]
    first = model.invoke(messages)
    second = OfflineChatModel().invoke(messages)
    assert first.content == second.content
    assert first.usage_metadata == second.usage_metadata
    bound = model.bind_tools([add])
    assert bound.invoke(messages).tool_calls == bound.invoke(messages).tool_calls


@pytest.mark.parametrize("n", [1, 7, 300, 2500])
def test_in_n_words(model: OfflineChatModel, n: int) -> None:
    text = model.invoke(f"Tell me a story in {n} words").text
    assert len(text.split()) == n
    chunks, full = _stream(model, f"Tell me a story in {n} words")
    assert full.text == text
    assert len(chunks) == count_tokens(text)


def test_in_n_words_is_capped(model: OfflineChatModel) -> None:
    assert len(model.invoke("Write an essay in 1,000,000 words").text.split()) == MAX_WORDS


def test_token_delay_sync_and_async() -> None:
    model = OfflineChatModel(token_delay=0.01)
    start = time.perf_counter()
    chunks = list(model.stream("in 11 words"))
    assert time.perf_counter() - start >= 0.01 * (len(chunks) - 1) * 0.9

    async def collect() -> int:
        return len([c async for c in model.astream("in 11 words")])

    start = time.perf_counter()
    assert asyncio.run(collect()) == len(chunks)
    assert time.perf_counter() - start >= 0.01 * (len(chunks) - 1) * 0.9


def test_stop_and_max_tokens() -> None:
    text = OfflineChatModel().invoke("in 20 words").text
    cut = OfflineChatModel(max_tokens=5).invoke("in 20 words")
    assert cut.text == "".join(split_tokens(text)[:5])
    assert cut.response_metadata["finish_reason"] == "length"
    assert cut.usage_metadata["output_tokens"] == 5
    stopped = OfflineChatModel().invoke("in 20 words", stop=["filler"])
    assert stopped.text == text[: text.index("filler")]


# ------------------------------------------------------------------- usage


def test_usage_metadata_and_token_counting(model: OfflineChatModel) -> None:
    messages: list[BaseMessage] = [SystemMessage("Be nice."), HumanMessage("Hello, world!")]
    reply = model.invoke(messages)
    usage = reply.usage_metadata
    assert usage is not None
    # one token per word/punctuation plus one per message
    assert usage["input_tokens"] == (1 + 3) + (1 + 4)
    assert usage["input_tokens"] == model.get_num_tokens_from_messages(messages)
    assert usage["output_tokens"] == model.get_num_tokens(reply.text)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert model.get_num_tokens("Hello, world!") == 4
    assert len(model.get_token_ids("Hello, world!")) == 4


def test_token_count_includes_tool_calls_and_tools(model: OfflineChatModel) -> None:
    ai = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1}, "id": "x"}])
    assert model.get_num_tokens_from_messages([ai]) > 1
    assert model.get_num_tokens_from_messages([ai], tools=[add]) > (
        model.get_num_tokens_from_messages([ai])
    )


# ---------------------------------------------------------------- tools


def test_one_tool_call(model: OfflineChatModel) -> None:
    bound = model.bind_tools([add, mul])
    reply = bound.invoke("Please compute add(a=2, b=3).")
    assert reply.text == ""
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("add", {"a": 2, "b": 3})]
    call = reply.tool_calls[0]
    assert call["id"].startswith("call_") and call["type"] == "tool_call"
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] > 0


def test_several_tool_calls_in_order(model: OfflineChatModel) -> None:
    bound = model.bind_tools([add, mul])
    text = "mul(a=2, b=3) then add(4, b=5) and add(a=1, b=1)"
    reply = bound.invoke(text)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("mul", {"a": 2, "b": 3}),
        ("add", {"a": 4, "b": 5}),
        ("add", {"a": 1, "b": 1}),
    ]
    assert len({c["id"] for c in reply.tool_calls}) == 3
    _, full = _stream(bound, text)
    assert full.tool_calls == reply.tool_calls


def test_literal_argument_kinds() -> None:
    schemas = {"f": {"properties": {"x": {}, "y": {}}}}
    calls = find_tool_calls(
        "f(x=[1, 'two', {'k': None}], y={'a': (1, 2), 'b': True}) f(x=-1.5) f(y='a)b')", schemas
    )
    assert calls == [
        {"name": "f", "args": {"x": [1, "two", {"k": None}], "y": {"a": [1, 2], "b": True}}},
        {"name": "f", "args": {"x": -1.5}},
        {"name": "f", "args": {"y": "a)b"}},
    ]


def test_non_literal_and_unbound_calls_are_ignored(model: OfflineChatModel) -> None:
    bound = model.bind_tools([add])
    for text in [
        "add(a=x, b=2)",
        "add(a=len('x'), b=2)",
        "add(a=1 + 2, b=2)",
        "add(**kw)",
        "add(1, 2, 3)",
        "sub(a=1, b=2)",
        "mul(a=1, b=2)",
        "obj.add(a=1, b=2)",
    ]:
        reply = bound.invoke(text)
        assert reply.tool_calls == [], text
        assert "You said" in reply.text
    # without bound tools nothing is called either
    assert model.invoke("add(a=1, b=2)").tool_calls == []


def test_tool_choice_none_never_calls(model: OfflineChatModel) -> None:
    assert model.bind_tools([add], tool_choice="none").invoke("add(a=1, b=2)").tool_calls == []


def test_answer_after_tool_results(model: OfflineChatModel) -> None:
    bound = model.bind_tools([add, mul])
    question = HumanMessage("add(a=2, b=3) and mul(a=2, b=3)")
    call_message = bound.invoke([question])
    results = [
        ToolMessage("5", tool_call_id=call_message.tool_calls[0]["id"]),
        ToolMessage("6", tool_call_id=call_message.tool_calls[1]["id"], name="mul"),
    ]
    final = bound.invoke([question, call_message, *results])
    assert final.tool_calls == []
    assert final.text == "The results: add -> 5; mul -> 6."
    # a single result
    single = bound.invoke([HumanMessage("add(a=2, b=3)")])
    tool_message = add_tool_message(single, "5")
    assert bound.invoke([HumanMessage("add(a=2, b=3)"), single, tool_message]).text == (
        "add returned 5."
    )


def add_tool_message(call_message: AIMessage, content: str, **kw: Any) -> ToolMessage:
    call = call_message.tool_calls[0]
    return ToolMessage(content, tool_call_id=call["id"], name=call["name"], **kw)


def test_error_result_is_reported(model: OfflineChatModel) -> None:
    bound = model.bind_tools([add])
    question = HumanMessage("add(a=1, b='x')")
    call_message = bound.invoke([question])
    error = add_tool_message(call_message, "TypeError: unsupported operand", status="error")
    final = bound.invoke([question, call_message, error])
    assert final.tool_calls == []
    assert final.text == "add failed: TypeError: unsupported operand."


def test_agent_loop_with_real_tool(model: OfflineChatModel) -> None:
    bound = model.bind_tools([get_weather])
    question = HumanMessage("get_weather(location='San Francisco, CA')")
    call_message = bound.invoke([question])
    assert len(call_message.tool_calls) == 1
    assert any(b["type"] == "tool_call" for b in call_message.content_blocks)
    tool_message = get_weather.invoke(call_message.tool_calls[0])
    assert isinstance(tool_message, ToolMessage)
    final = bound.invoke([question, call_message, tool_message])
    assert final.text == "get_weather returned It's sunny."


def test_next_turn_does_not_repeat_calls(model: OfflineChatModel) -> None:
    bound = model.bind_tools([add])
    history: list[BaseMessage] = [HumanMessage("add(a=1, b=2)")]
    call_message = bound.invoke(history)
    history += [call_message, add_tool_message(call_message, "3")]
    history.append(bound.invoke(history))
    history.append(HumanMessage("thanks"))
    reply = bound.invoke(history)
    assert reply.tool_calls == [] and "thanks" in reply.text


def test_forced_tool_choice(model: OfflineChatModel) -> None:
    reply = model.bind_tools([add, get_weather], tool_choice="get_weather").invoke("Hello!")
    assert [c["name"] for c in reply.tool_calls] == ["get_weather"]
    assert reply.tool_calls[0]["args"] == {"location": "Hello!"}
    reply = model.bind_tools([add, mul], tool_choice="any").invoke("what is 3 times 4, mul?")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("mul", {"a": 3, "b": 4})]
    with pytest.raises(ValueError, match="not one of the bound tools"):
        model.bind_tools([add], tool_choice="nope")


# ------------------------------------------------------- structured output


class Address(BaseModel):
    city: str
    zip_code: int = Field(ge=10000, le=99999)


class Ticket(BaseModel):
    """A support ticket."""

    priority: Literal["low", "medium", "high"]
    severity: int = Field(ge=1, le=5)
    count: int
    ratio: float = Field(gt=0, le=1)
    urgent: bool
    address: Address
    tags: list[str]
    note: str | None = None


def test_structured_output_pydantic(model: OfflineChatModel) -> None:
    ticket = model.with_structured_output(Ticket).invoke(
        "Printer on fire, HIGH priority, 42 pages lost, urgent: yes"
    )
    assert isinstance(ticket, Ticket)
    assert ticket.priority == "high"
    assert ticket.severity == 5  # 42 clamped to the maximum
    assert ticket.urgent is True
    assert isinstance(ticket.address, Address)
    assert 10000 <= ticket.address.zip_code <= 99999
    assert len(ticket.tags) == 1 and "Printer" in ticket.tags[0]
    assert ticket.note is not None


def test_structured_output_defaults_without_hints(model: OfflineChatModel) -> None:
    ticket = model.with_structured_output(Ticket).invoke("nothing special")
    assert ticket.priority == "low" and ticket.urgent is False
    assert ticket.severity == 1 and ticket.count == 0


def test_structured_output_numbers_in_order(model: OfflineChatModel) -> None:
    class Pair(BaseModel):
        first: int
        second: int

    assert model.with_structured_output(Pair).invoke("between 3 and 4") == Pair(first=3, second=4)


def test_structured_output_include_raw(model: OfflineChatModel) -> None:
    out = model.with_structured_output(Ticket, include_raw=True).invoke("medium please")
    assert out["parsing_error"] is None
    assert isinstance(out["parsed"], Ticket) and out["parsed"].priority == "medium"
    assert isinstance(out["raw"], AIMessage) and out["raw"].tool_calls[0]["name"] == "Ticket"


def test_structured_output_typeddict_and_json_schema(model: OfflineChatModel) -> None:
    class Movie(TypedDict):
        """A movie."""

        title: str
        year: int

    assert model.with_structured_output(Movie).invoke("Alien, 1979") == {
        "title": "Alien, 1979",
        "year": 1979,
    }
    schema = {
        "title": "color",
        "description": "Pick a color.",
        "type": "object",
        "properties": {"name": {"type": "string", "enum": ["red", "green", "blue"]}},
        "required": ["name"],
    }
    assert model.with_structured_output(schema).invoke("I like Green") == {"name": "green"}


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_output_methods(model: OfflineChatModel, method: str) -> None:
    result = model.with_structured_output(Ticket, method=method).invoke("low")
    assert isinstance(result, Ticket)


def test_structured_output_streams(model: OfflineChatModel) -> None:
    parsed = list(model.with_structured_output(Ticket).stream("high"))
    assert parsed and all(isinstance(p, Ticket) for p in parsed)
    assert parsed[-1].priority == "high"


def test_token_counts_are_incremental_and_exact():
    """The model scans a context once: the next call (the same messages plus new ones)
    counts only what was added, and every count equals a fresh model's."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    from agentnb.models import OfflineChatModel

    model = OfflineChatModel()
    context = [SystemMessage("You add numbers."), HumanMessage("Please add(a=1, b=2)")]
    for i in range(30):
        for msgs in (context, context + [AIMessage("", tool_calls=[
                {"name": "add", "args": {"a": i, "b": 2}, "id": f"c{i}", "type": "tool_call"}]),
                ToolMessage(str(i + 2), tool_call_id=f"c{i}", name="add")]):
            got = model.invoke(msgs).usage_metadata["input_tokens"]
            assert got == OfflineChatModel().invoke(msgs).usage_metadata["input_tokens"]
            assert got == OfflineChatModel().get_num_tokens_from_messages(msgs)
        # the next turn: the stored turn comes back as new objects, then a new question
        context = context + [HumanMessage(f"turn {i}"), AIMessage(f"answer {i}"),
                             HumanMessage(f"Please add(a={i}, b=3)")]
    reply = model.invoke(context)
    assert "turn 61" in reply.content  # humans counted across the incremental scans
    assert reply.content == OfflineChatModel().invoke(context).content
    # a changed prefix (another conversation) is counted afresh
    other = [HumanMessage("hello there")]
    assert model.invoke(other).usage_metadata["input_tokens"] == (
        OfflineChatModel().get_num_tokens_from_messages(other))


def test_conversations_taking_turns_each_continue_their_own_count(monkeypatch):
    """Two sessions of one agent share its model (two HTTP users, a panel beside %%chat):
    each call counts only what its own conversation added, not the whole context again,
    and every count is what a fresh model counts."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    from agentnb.models import OfflineChatModel, offline

    system = SystemMessage("You add numbers.")  # one object for every session, as the engine's
    model = OfflineChatModel()
    contexts = {name: [system] for name in ("ann", "bob", "cy")}
    counted: list[int] = []
    real = offline._message_tokens
    monkeypatch.setattr(offline, "_message_tokens", lambda m: (counted.append(1), real(m))[1])
    for i in range(12):
        for name, context in contexts.items():
            context += [HumanMessage(f"{name} asks {i}"), AIMessage(f"answer {i}")]
            counted.clear()
            got = model.invoke(context).usage_metadata["input_tokens"]
            added = len(counted)
            monkeypatch.setattr(offline, "_message_tokens", real)
            assert got == OfflineChatModel().get_num_tokens_from_messages(context)
            monkeypatch.setattr(offline, "_message_tokens",
                                lambda m: (counted.append(1), real(m))[1])
            # the two new messages (the very first call: the shared system message too)
            assert added == (3 if (i, name) == (0, "ann") else 2), (name, i, added)


@pytest.mark.parametrize("keep_system", [True, False])
def test_a_sliding_window_counts_only_what_is_new(monkeypatch, keep_system):
    """A memory window sends the system message and the newest turns: the start moves on
    each turn. The totals of the part sent last time are reused (shifted), only the new
    messages are counted, and every count (tokens, and the human messages the replies
    number) is what a fresh model counts."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    from agentnb.models import OfflineChatModel, offline

    system = SystemMessage("You add numbers.")
    turns: list = []
    model = OfflineChatModel()
    counted: list[int] = []
    real = offline._message_tokens
    for i in range(15):
        turns += [HumanMessage(f"Please add(a={i}, b=1)"),
                  AIMessage("", tool_calls=[{"name": "add", "args": {"a": i, "b": 1},
                                             "id": f"c{i}", "type": "tool_call"}]),
                  ToolMessage(str(i + 1), tool_call_id=f"c{i}", name="add"),
                  AIMessage(f"add returned {i + 1}.")]
        context = ([system] if keep_system else []) + turns[-12:]  # the last 3 turns
        monkeypatch.setattr(offline, "_message_tokens",
                            lambda m: (counted.append(1), real(m))[1])
        counted.clear()
        reply = model.invoke(context)
        added = len(counted)
        monkeypatch.setattr(offline, "_message_tokens", real)
        fresh = OfflineChatModel()
        assert reply.usage_metadata["input_tokens"] == fresh.get_num_tokens_from_messages(
            context)
        assert reply.content == fresh.invoke(context).content
        if i >= 3:
            assert added == 4, (i, added)  # the new turn only
