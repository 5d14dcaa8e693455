"""Memory strategies at their boundaries, over real stored turns."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.messages import HumanMessage

from agentnb import memory as mem
from agentnb.schemas import MemoryConfig, NewMessage, NewToolCall


def _store_turns(store, n: int, *, with_tool: bool = True):
    agent = store.create_agent("m")
    session = store._repo.create_session(agent.id)
    for i in range(n):
        turn = [NewMessage(role="user", content=f"question {i}")]
        if with_tool:
            call = NewToolCall(tool_name="add", input_args={"a": i}, output=str(i), status="success")
            turn.append(NewMessage(role="assistant", content="", tool_calls=[call]))
            # the engine links a tool result to its call by the call's record id
            store_turn = turn
        turn.append(NewMessage(role="assistant", content=f"answer {i}"))
        records = store._repo.append_turn(session.id, turn)
        if with_tool:
            # add the tool message pointing at the stored call id (as the engine does)
            call_id = records[1].tool_calls[0].id
            store._repo.append_turn(session.id, [NewMessage(
                role="tool", content=str(i),
                attrs={"tool_call_record_id": str(call_id), "tool_name": "add"})])
    return session, store.history(session.id)


def _humans(messages):
    return [m.content for m in messages if m.type == "human"]


def test_full_keeps_everything(duck_store):
    _, history = _store_turns(duck_store, 5, with_tool=False)
    ctx = mem.build_context(MemoryConfig(strategy="full"), "sys", history, HumanMessage("new"))
    assert ctx[0].type == "system" and ctx[0].content == "sys"
    assert _humans(ctx) == [f"question {i}" for i in range(5)] + ["new"]


@pytest.mark.parametrize("n,window,expected", [(5, 2, 2), (2, 2, 2), (1, 3, 1), (0, 2, 0)])
def test_window(duck_store, n, window, expected):
    _, history = _store_turns(duck_store, n, with_tool=False)
    ctx = mem.build_context(MemoryConfig(strategy="window", window_turns=window), "sys",
                            history, HumanMessage("new"))
    assert _humans(ctx)[:-1] == [f"question {i}" for i in range(n - expected, n)]
    assert ctx[0].type == "system"


def test_tool_call_never_separated_from_result():
    from agentnb.schemas import MessageRecord, ToolCallRecord
    import uuid
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    sid = uuid.uuid4()
    call_rec = uuid.uuid4()
    msgs = [
        MessageRecord(id=uuid.uuid4(), session_id=sid, position=0, role="user", content="q",
                      created_at=now),
        MessageRecord(id=uuid.uuid4(), session_id=sid, position=1, role="assistant", content="",
                      created_at=now, tool_calls=(ToolCallRecord(
                          id=call_rec, message_id=uuid.uuid4(), tool_name="add",
                          input_args={"a": 1}, output="1", status="success",
                          created_at=now, updated_at=now),)),
        MessageRecord(id=uuid.uuid4(), session_id=sid, position=2, role="tool", content="1",
                      created_at=now, attrs={"tool_call_record_id": str(call_rec)}),
        MessageRecord(id=uuid.uuid4(), session_id=sid, position=3, role="assistant",
                      content="one", created_at=now),
    ]
    ctx = mem.build_context(MemoryConfig(strategy="window", window_turns=1), "", msgs, None)
    assert [m.type for m in ctx] == ["human", "ai", "tool", "ai"]
    assert ctx[1].tool_calls[0]["id"] == ctx[2].tool_call_id
    # a window that starts mid-turn (tool result without its call) drops the orphan
    ctx = mem.build_context(MemoryConfig(strategy="full"), "", msgs[2:], None)
    assert ctx == []
    # an interrupted turn: the call has no stored result -> the call is dropped, text kept
    ctx = mem.build_context(MemoryConfig(strategy="full"), "", msgs[:2], None)
    assert [m.type for m in ctx] == ["human"]


def test_tokens_budget(duck_store):
    _, history = _store_turns(duck_store, 10, with_tool=False)
    count = mem.approx_tokens
    new = HumanMessage("new")
    one_turn = count([HumanMessage("question 9"), HumanMessage("answer 9")])
    fixed = count([new])
    # a budget for exactly three turns keeps exactly the last three
    cfg = MemoryConfig(strategy="tokens", max_tokens=fixed + 3 * one_turn)
    ctx = mem.build_context(cfg, "", history, new, count_tokens=count)
    assert _humans(ctx) == ["question 7", "question 8", "question 9", "new"]
    assert count(ctx) <= cfg.max_tokens
    # one token less: two turns
    cfg = MemoryConfig(strategy="tokens", max_tokens=fixed + 3 * one_turn - 1)
    ctx = mem.build_context(cfg, "", history, new, count_tokens=count)
    assert _humans(ctx) == ["question 8", "question 9", "new"]
    # a budget too small for any turn still sends the new message
    ctx = mem.build_context(MemoryConfig(strategy="tokens", max_tokens=1), "", history, new)
    assert _humans(ctx) == ["new"]


def test_summary_due_boundaries(duck_store):
    cfg = MemoryConfig(strategy="summary", keep_turns=2)
    _, history = _store_turns(duck_store, 2, with_tool=False)
    assert mem.summary_due(cfg, history, None) is None  # everything fits in the window
    _, history3 = _store_turns_more(duck_store, 1)
    due = mem.summary_due(cfg, history3, None)
    assert due is not None
    older, through = due
    assert [m.content for m in older if m.role == "user"] == ["question 0"]
    stored = {"text": "s", "through_position": through}
    assert mem.summary_due(cfg, history3, stored) is None
    # refreshed only once keep_turns more turns aged out
    _, history4 = _store_turns_more(duck_store, 1)
    assert mem.summary_due(cfg, history4, stored) is None
    _, history5 = _store_turns_more(duck_store, 1)
    older, _ = mem.summary_due(cfg, history5, stored)
    assert [m.content for m in older if m.role == "user"] == ["question 1", "question 2"]


def _store_turns_more(store, n):
    agent = store.agent("m")
    session = store._repo.latest_session(agent.id)
    count = len([m for m in store.history(session.id) if m.role == "user"])
    for i in range(count, count + n):
        store._repo.append_turn(session.id, [NewMessage(role="user", content=f"question {i}"),
                                            NewMessage(role="assistant", content=f"answer {i}")])
    return session, store.history(session.id)


def test_summary_strategy_in_engine(duck_store):
    agent = duck_store.create_agent("sum", system="sys", memory={"strategy": "summary",
                                                                 "keep_turns": 2})
    for i in range(4):
        agent.chat(f"message number {i}")
    session = duck_store.session(agent.session_id)
    summary = session.attrs["summary"]
    assert summary["text"] and summary["through_position"] >= 1
    # the stored summary is reused: the next turn does not change it
    agent.chat("message number 4")
    assert duck_store.session(agent.session_id).attrs["summary"] == summary


def test_summary_is_refreshed_as_the_session_grows_and_sent_to_the_model(duck_store):
    """The summary is stored, reused while few turns age out, refreshed once keep_turns
    more have, and what the model sees is: system prompt + summary, the kept turns, the
    new message."""
    from tests.test_engine import ScriptedModel

    model = ScriptedModel()
    agent = duck_store.create_agent("sum2", system="sys", memory={"strategy": "summary",
                                                                  "keep_turns": 2})
    for i in range(4):  # the 4th turn is the first with a turn older than the last 2
        agent.chat(f"message {i}", model=model)
    first = duck_store.session(agent.session_id).attrs["summary"]
    agent.chat("message 4", model=model)
    assert duck_store.session(agent.session_id).attrs["summary"] == first  # reused
    agent.chat("message 5", model=model)
    second = duck_store.session(agent.session_id).attrs["summary"]
    assert second["through_position"] > first["through_position"]
    # the model was asked for a summary twice in 6 turns, not every turn
    prompts = [seen for seen in model.seen
               if len(seen) == 1 and seen[0].content.startswith(mem.SUMMARY_PROMPT)]
    assert len(prompts) == 2
    assert "message 0" in prompts[0][0].content and "message 1" not in prompts[0][0].content
    # the refresh builds on the old summary and folds in the turns that aged out since
    assert "Earlier summary:" in prompts[1][0].content
    assert "message 1" in prompts[1][0].content and "message 2" in prompts[1][0].content
    context = model.seen[-1]
    assert context[0].type == "system" and context[0].content.startswith("sys\n\n")
    assert second["text"] in context[0].content
    assert _humans(context) == ["message 3", "message 4", "message 5"]


def _long_turns(store, session_id, n: int, calls: int) -> None:
    """``n`` stored turns of ``2 * calls + 2`` messages: user, (call, result) x calls, answer."""
    for t in range(n):
        msgs = [NewMessage(role="user", content=f"question {t}")]
        for k in range(calls):
            call = NewToolCall(id=uuid.uuid4(), tool_name="add", input_args={"a": k},
                               output=str(k), status="success")
            msgs.append(NewMessage(role="assistant", content="", tool_calls=[call]))
            msgs.append(NewMessage(role="tool", content=str(k), attrs={
                "tool_call_record_id": str(call.id), "tool_name": "add"}))
        msgs.append(NewMessage(role="assistant", content=f"answer {t}"))
        store._repo.append_turn(session_id, msgs)


def test_window_keeps_n_turns_even_when_turns_are_long(duck_store):
    """Turns of 42 messages: the engine's first guess of how many messages to load
    (history_bound) holds fewer than window_turns of them; it loads more."""
    from tests.test_engine import ScriptedModel

    agent = duck_store.create_agent("w", memory={"strategy": "window", "window_turns": 2})
    session = agent.new_session()
    _long_turns(duck_store, session.id, 5, calls=20)
    assert mem.history_bound(agent.config.memory) < 2 * 42
    model = ScriptedModel()
    agent.chat("next", model=model)
    context = model.seen[-1]
    assert _humans(context) == ["question 3", "question 4", "next"]
    calls = [c["id"] for m in context if m.type == "ai" for c in m.tool_calls]
    assert len(calls) == 40 and calls == [m.tool_call_id for m in context if m.type == "tool"]
    # the next turn (served from the engine's cache) still sees two whole turns
    agent.chat("again", model=model)
    assert _humans(model.seen[-1]) == ["question 4", "next", "again"]
    _long_turns(duck_store, session.id, 1, calls=30)  # written by "another process"
    agent.chat("more", model=model)
    assert _humans(model.seen[-1]) == ["again", "question 0", "more"]


@pytest.mark.parametrize("max_tokens, first_kept", [(300, 0), (101, 50)])
def test_tokens_budget_reaches_past_the_first_guess(duck_store, max_tokens, first_kept):
    """A counter that charges 1 token a message (2 a turn) fits more turns than
    history_bound assumed: the engine loads older turns until the budget is full."""
    import asyncio

    agent = duck_store.create_agent("tok", memory={"strategy": "tokens",
                                                   "max_tokens": max_tokens})
    session = agent.new_session()
    duck_store._repo.append_turn(session.id, [
        m for i in range(100) for m in (NewMessage(role="user", content=f"question {i}"),
                                        NewMessage(role="assistant", content=f"answer {i}"))])
    assert mem.history_bound(agent.config.memory) < 2 * (100 - first_kept)
    req = agent._request("new")
    req.count_tokens = len  # one token a message
    context = asyncio.run(duck_store.runtime.engine._context(req, HumanMessage("new")))
    assert _humans(context) == [f"question {i}" for i in range(first_kept, 100)] + ["new"]
    assert len(context) <= max_tokens


def test_tokens_counts_each_stored_turn_once_across_turns(duck_store):
    """With the engine's memo, ``tokens`` counts a stored turn once, not on every turn;
    the context is the same as without the memo."""
    _, history = _store_turns(duck_store, 30, with_tool=False)
    cfg = MemoryConfig(strategy="tokens", max_tokens=120)
    calls = []

    class Counter:  # a model's counter: a new bound method on every access
        def count(self, messages):
            calls.append(len(messages))
            return mem.approx_tokens(messages)

    model = Counter()
    memo: dict = {}
    new = HumanMessage("next")
    first = mem.build_context(cfg, "sys", history, new, count_tokens=model.count, memo=memo)
    counted_first = len(calls)
    again = mem.build_context(cfg, "sys", history, new, count_tokens=model.count, memo=memo)
    assert again == first
    assert len(calls) == counted_first + 1  # only the fixed part (system + new message)
    plain = mem.build_context(cfg, "sys", history, new, count_tokens=mem.approx_tokens)
    assert _humans(plain) == _humans(first) and 1 < len(_humans(first)) < 31
    # another counter (another model) counts afresh
    other = Counter()
    mem.build_context(cfg, "sys", history, new, count_tokens=other.count, memo=memo)
    assert len(calls) > counted_first + 2


def _summary_due_reference(memory, history, stored):
    """summary_due as it was written first (whole-history grouping): the reference."""
    turns = mem.group_turns(history)
    older = turns[: -memory.keep_turns] if len(turns) > memory.keep_turns else []
    if not older:
        return None
    through = int(stored.get("through_position", -1)) if stored else -1
    uncovered = [t for t in older if t[0].position > through]
    if not uncovered or stored and len(uncovered) < memory.keep_turns:
        return None
    return [m for t in uncovered for m in t], older[-1][-1].position


def test_summary_due_walks_back_only_to_the_summary(duck_store):
    """summary_due reads the history from its end (a turn costs the turns since the
    summary) and answers what the whole-history version answers, for every length,
    keep_turns and summary position."""
    _, history = _store_turns(duck_store, 12)
    for keep in (1, 2, 4, 11, 12, 13):
        memory = MemoryConfig(strategy="summary", keep_turns=keep)
        for n in range(len(history) + 1):
            part = history[:n]
            for through in (None, -1, 0, 3, 10, 25, 40, 100):
                stored = None if through is None else {"through_position": through}
                got = mem.summary_due(memory, part, stored)
                want = _summary_due_reference(memory, part, stored)
                assert got == want, (keep, n, through)
    # a window that starts inside a turn (a partial load) drops the partial turn
    memory = MemoryConfig(strategy="summary", keep_turns=2)
    assert mem.summary_due(memory, history[1:], None) == _summary_due_reference(
        memory, history[1:], None)


def test_converted_turns_grow_with_the_session(duck_store):
    """With the engine's memo, a history that grew by whole turns converts only the new
    turns (the earlier ones are the same objects), and the result equals a fresh
    conversion; a history with another start converts afresh."""
    _, history = _store_turns(duck_store, 10)
    memo: dict = {}
    first = mem.convert_turns(history[:12], memo)
    grown = mem.convert_turns(history, memo)
    assert grown[: len(first)] == first and grown[0] is first[0]  # reused, not rebuilt
    assert grown == mem.convert_turns(history)
    assert mem.convert_turns(history, memo) is grown  # nothing new: the same result
    window = mem.convert_turns(history[4:], memo)  # a sliding window: another start
    assert window == mem.convert_turns(history[4:])
    # a history that grew by a part that does not start a turn is converted whole
    odd = mem.convert_turns(history[:13], {})
    assert odd == mem.convert_turns(history[:13])


def test_context_keeps_its_objects_from_turn_to_turn(duck_store):
    """With the memo, the next turn's context starts with the same message objects (the
    system message included), so a model that remembers what it counted (the offline
    model) counts only the new part."""
    _, history = _store_turns(duck_store, 6, with_tool=False)
    memo: dict = {}
    cfg = MemoryConfig(strategy="full")
    first = mem.build_context(cfg, "sys", history[:-2], HumanMessage("a"), memo=memo)
    second = mem.build_context(cfg, "sys", history, HumanMessage("b"), memo=memo)
    assert all(x is y for x, y in zip(first[:-1], second))
    changed = mem.build_context(cfg, "other", history, HumanMessage("c"), memo=memo)
    assert changed[0].content == "other" and changed[0] is not second[0]
