"""``agent.map``: ordered results, pandas in and out, per-item errors, bounded retries
and concurrency, one stored session per run."""

from __future__ import annotations

import asyncio
from typing import Literal

import pandas as pd
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel

from agentnb.errors import InvalidValueError
from agentnb.events import Reply


class Broken(RuntimeError):
    """Not retryable by the engine (not a rate limit, timeout or connection error)."""


class BatchModel(BaseChatModel):
    """Answers ``done: <message>`` after a short async wait; counts calls and overlap.

    A message containing ``bad`` always fails; one containing ``flaky`` fails on
    its first call only.
    """

    delay: float = 0.0
    calls: dict = {}
    seen: list = []
    in_flight: int = 0
    max_in_flight: int = 0

    @property
    def _llm_type(self) -> str:
        return "batch"

    def bind_tools(self, tools, **kwargs):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        raise NotImplementedError("async only")

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        text = str(messages[-1].content)
        self.calls[text] = self.calls.get(text, 0) + 1
        self.seen.append([(m.type, m.content) for m in messages])
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if "bad" in text or ("flaky" in text and self.calls[text] == 1):
            raise Broken(f"cannot do {text!r}")
        return ChatResult(generations=[ChatGeneration(message=AIMessage(
            f"done: {text}",
            usage_metadata={"input_tokens": 4, "output_tokens": 2, "total_tokens": 6}))])


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Label(BaseModel):
    sentiment: Literal["positive", "negative", "neutral"]
    score: int


def test_list_in_list_out_in_input_order(duck_store):
    agent = duck_store.create_agent("calc", system="You add numbers.")
    agent.tool(add)
    items = [f"add(a={i}, b=1)" for i in range(20)]
    replies = agent.map(items, concurrency=4, progress=False)
    assert isinstance(replies, list) and len(replies) == 20
    assert all(isinstance(r, Reply) and r.status == "complete" for r in replies)
    for i, reply in enumerate(replies):
        assert str(i + 1) in reply.text, (i, reply.text)
        (call,) = reply.tool_calls
        assert call.input_args == {"a": i, "b": 1} and call.output == str(i + 1)
    # every turn is stored, in one new session marked as a map run
    (session_id,) = {r.session_id for r in replies}
    session = duck_store.session(session_id)
    assert session.attrs == {"kind": "map", "items": 20}
    assert session.title == "map over 20 items"
    history = duck_store.history(session_id)
    assert sorted(m.content for m in history if m.role == "user") == sorted(items)
    assert len([c for m in history for c in m.tool_calls]) == 20


def test_each_item_sees_only_the_system_prompt_and_itself(duck_store):
    agent = duck_store.create_agent("m", system="Be brief.")
    agent.chat("an earlier chat turn")  # history the map must not see
    model = BatchModel()
    agent.map(["one", "two", "three"], model=model, progress=False)
    assert sorted(model.seen) == sorted(
        [[("system", "Be brief."), ("human", item)] for item in ("one", "two", "three")])


def test_failures_are_kept_not_raised_and_retries_are_bounded(duck_store):
    agent = duck_store.create_agent("m")
    model = BatchModel()
    replies = agent.map(["ok 1", "bad 2", "flaky 3", "ok 4"], model=model, retries=2,
                        progress=False)
    assert [r.status for r in replies] == ["complete", "error", "complete", "complete"]
    assert replies[1].error == "Broken: cannot do 'bad 2'"
    assert replies[2].text == "done: flaky 3"
    # the failing item: 1 try + 2 retries, then given up; the flaky one: 2 tries
    assert model.calls == {"ok 1": 1, "bad 2": 3, "flaky 3": 2, "ok 4": 1}
    # retries=0: a failure is not retried
    model.calls.clear()
    (reply,) = agent.map(["bad again"], model=model, retries=0, progress=False)
    assert reply.status == "error" and model.calls == {"bad again": 1}


def test_concurrency_is_bounded(duck_store):
    agent = duck_store.create_agent("m")
    model = BatchModel(delay=0.05)
    replies = agent.map([f"item {i}" for i in range(12)], model=model, concurrency=3,
                        progress=False)
    assert [r.text for r in replies] == [f"done: item {i}" for i in range(12)]
    assert model.max_in_flight == 3
    model = BatchModel(delay=0.05)
    agent.map([f"item {i}" for i in range(4)], model=model, concurrency=1, progress=False)
    assert model.max_in_flight == 1


def test_dataframe_in_dataframe_out_with_a_schema(duck_store):
    agent = duck_store.create_agent("labeller")
    df = pd.DataFrame(
        {"text": ["This is negative, score 3", "positive, score 9", "neutral, score 5"],
         "id": [10, 11, 12]},
        index=["a", "b", "c"])
    out = agent.map(df, schema=Label, prompt="Label this: {text}", progress=False)
    assert isinstance(out, pd.DataFrame)
    assert list(out.index) == ["a", "b", "c"]
    assert list(out.columns) == ["text", "sentiment", "score", "status", "error",
                                 "input_tokens", "output_tokens", "tool_calls"]
    assert list(out["status"]) == ["complete"] * 3
    assert list(out["sentiment"]) == ["negative", "positive", "neutral"]
    assert list(out["score"]) == [3, 9, 5]
    for text, value in zip(out["text"], out["sentiment"]):
        assert Label.model_validate_json(text).sentiment == value
    assert (out["output_tokens"] > 0).all()
    # the prompt was filled from each row
    (summary,) = duck_store.sessions("labeller")
    session_id = summary.session.id
    users = [m.content for m in duck_store.history(session_id) if m.role == "user"]
    assert sorted(users) == sorted(f"Label this: {t}" for t in df["text"])


def test_series_in_dataframe_out_keeps_errors(duck_store):
    agent = duck_store.create_agent("m")
    series = pd.Series(["fine", "bad one"], index=[5, 7], name="text")
    out = agent.map(series, model=BatchModel(), retries=0, progress=False)
    assert isinstance(out, pd.DataFrame) and list(out.index) == [5, 7]
    assert list(out["status"]) == ["complete", "error"]
    assert out.loc[5, "text"] == "done: fine" and pd.isna(out.loc[5, "error"])
    assert out.loc[7, "error"] == "Broken: cannot do 'bad one'"


def test_progress_bar(duck_store, monkeypatch):
    """A tqdm bar (tqdm.auto: text in a terminal, a widget in a notebook) counts the items."""
    import tqdm.auto

    bars = []

    class Bar:
        def __init__(self, total, desc, unit):
            self.total, self.desc, self.n, self.closed = total, desc, 0, False
            bars.append(self)

        def update(self, n):
            self.n += n

        def close(self):
            self.closed = True

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    agent = duck_store.create_agent("m")
    agent.map(["a", "b", "c"], model=BatchModel())
    (bar,) = bars
    assert (bar.total, bar.desc, bar.n, bar.closed) == (3, "m.map", 3, True)
    agent.map(["d"], model=BatchModel(), progress=False)
    assert len(bars) == 1


def test_bad_inputs(duck_store):
    agent = duck_store.create_agent("m")
    assert agent.map([], progress=False) == []
    empty = agent.map(pd.Series([], dtype=object), progress=False)
    assert isinstance(empty, pd.DataFrame) and len(empty) == 0
    with pytest.raises(InvalidValueError, match="not one string"):
        agent.map("one string", progress=False)
    with pytest.raises(InvalidValueError, match="concurrency"):
        agent.map(["x"], concurrency=0, progress=False)
    with pytest.raises(InvalidValueError, match="not int"):
        agent.map(3, progress=False)


def test_ctrl_c_stops_the_run_and_retries_nothing(duck_store):
    """A KeyboardInterrupt ends the map: items in flight are stored as interrupted and
    not retried, the others never start, and nothing keeps running afterwards."""
    import _thread
    import threading
    import time

    agent = duck_store.create_agent("m")
    model = BatchModel(delay=1.0)

    def interrupt_once_both_run() -> None:
        deadline = time.monotonic() + 20
        while model.in_flight < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        _thread.interrupt_main()

    interrupter = threading.Thread(target=interrupt_once_both_run)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        agent.map([f"item {i}" for i in range(6)], model=model, concurrency=2, retries=2,
                  progress=False)
    interrupter.join()
    time.sleep(1.5)  # a retry would have called the model again by now
    assert model.calls == {"item 0": 1, "item 1": 1}
    (summary,) = duck_store.sessions("m")
    history = duck_store.history(summary.session.id)
    assert sorted(m.content for m in history if m.role == "user") == ["item 0", "item 1"]
    # no answer came (the model had not returned): no assistant message was stored
    assert [m.role for m in history] == ["user", "user"]
