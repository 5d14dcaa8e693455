"""Turn benchmark: agentnb's per-turn overhead, against pydantic-ai and LangGraph.

Run (in a venv of its own with the ``bench`` extra: pydantic-ai, LangGraph)::

    python3 -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install -q -e ".[bench]"
    /tmp/benchvenv/bin/python bench/turns.py             # full sizes (3-6 minutes on 2 cores)
    /tmp/benchvenv/bin/python bench/turns.py --quick     # smoke run, well under a minute
    /tmp/benchvenv/bin/python bench/turns.py --turns 500 # more timed turns per workload

Prints a table and writes ``bench/results/turns.json``. Every timed
turn is one user message ``"Please add(a=<i>, b=1)"`` that makes the model
call the tool ``add(a: int, b: int) -> int`` once and then answer with a
sentence holding the result; each reply is checked for ``<i + 1>``. The
first ``--warmup`` turns of a workload are run but not counted.

Workloads
---------

* ``agentnb offline``: ``agent.chat`` with the built-in ``offline`` model,
  memory ``full``, one session in a DuckDB store file in a temp dir.
* ``agentnb minimal``: the same, with ``model=`` a tiny langchain-core chat
  model that makes exactly the decision pydantic-ai's FunctionModel below
  makes (no token counting, no streaming of words): the engine's overhead
  with the model's own cost taken out.
* ``agentnb +1000 <strategy>``: a session that already holds 1,000 earlier
  turns (written straight into the store with ``Repository.append_turn``),
  resumed with ``agent.resume(id)``, then ``--prefilled-turns`` timed turns,
  under each memory strategy (full, window, tokens, summary).
* ``agentnb map``: ``agent.map`` over ``--map-items`` inputs, concurrency 8,
  offline model, no tools: items per second.
* ``pydantic-ai``: ``Agent(FunctionModel(fn))`` with the same tool,
  ``run_sync`` per turn (the synchronous API, like ``agent.chat``), history
  carried with ``message_history=result.all_messages()``; and the same with
  ``await agent.run`` in one event loop (``pydantic-ai async``).
* ``langgraph offline`` / ``langgraph minimal``: LangGraph's prebuilt ReAct
  agent (``langgraph.prebuilt.create_react_agent``; deprecated in LangGraph 1.x
  in favour of ``langchain.agents.create_agent``, which needs the ``langchain``
  package) with agentnb's ``OfflineChatModel`` (or the tiny model) and a
  ``SqliteSaver`` checkpointer on a file in the temp dir, one ``thread_id``
  for all turns, ``graph.invoke`` per turn.

The table's "1st 1/4" and "4th 1/4" columns are the medians of the first and
the last quarter of a workload's timed turns: each turn adds to the session,
so they show how the cost moves as the session grows (the frameworks differ
most there), and the ratios are given for them too.

Timing: the workloads of a group run in one process, interleaved in blocks
of ``--block`` turns (order rotated each round, ``gc.collect()`` between
blocks), so load from other processes on a shared machine hits all alike.

Memory figures: ``tracemalloc_peak_mb`` (the table's "tm peak MB") is the peak of Python allocations (``tracemalloc``, all threads; memory that
DuckDB or SQLite allocate natively is not traced) during ``--mem-turns``
extra turns run after the timed ones with tracing on (tracing slows Python
down, so it never overlaps the timed turns), above what was allocated when
tracing started. ``rss_growth_mb`` in the JSON is the sum of the RSS (psutil)
growth over each workload's own blocks; as the workloads share one process
and its allocator it is not attributable to one framework and is not
printed (except for ``agent.map``, which runs alone).

No figure here is asserted anywhere: this prints and records, it never fails
on a number.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SYSTEM = "You add numbers."
CALL = re.compile(r"add\(a=(-?\d+), b=(-?\d+)\)")
STRATEGIES = ("full", "window", "tokens", "summary")


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def message(i: int) -> str:
    return f"Please add(a={i}, b=1)"


# -- measuring ------------------------------------------------------------------
def stats(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {
        "n": len(s),
        "median_ms": round(statistics.median(s), 3),
        "p95_ms": round(s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))], 3),
        "mean_ms": round(statistics.fmean(s), 3),
        "min_ms": round(s[0], 3),
        "max_ms": round(s[-1], 3),
    }


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class Runner:
    """One workload: ``turn(i)`` runs one turn and returns the reply text."""

    def __init__(self, name: str, turn: Callable[[int], str], start: int = 0,
                 info: Callable[[], dict] | None = None, close: Callable[[], None] | None = None):
        self.name = name
        self.turn = turn
        self.i = start
        self.info = info or (lambda: {})
        self.close = close or (lambda: None)
        self.times: list[float] = []
        #: CPU time of the whole process (all threads) per timed turn: what a turn costs
        #: whatever else the machine runs (I/O waits such as the commit's fsync excluded)
        self.cpu: list[float] = []
        #: called to start a new, empty session (the first-20 figures)
        self.reset: Callable[[], None] | None = None
        self.bad = 0
        self.rss_growth = 0.0
        self.warmup = 0
        self.peak: float | None = None
        self.mem_turns = 0

    def run(self, n: int, timed: bool = True) -> None:
        rss0 = rss_mb()
        for _ in range(n):
            c0 = time.process_time()
            t0 = time.perf_counter()
            text = self.turn(self.i)
            elapsed = (time.perf_counter() - t0) * 1000
            cpu = (time.process_time() - c0) * 1000
            if str(self.i + 1) not in text:
                self.bad += 1
            self.i += 1
            if timed:
                self.times.append(elapsed)
                self.cpu.append(cpu)
            else:
                self.warmup += 1
        if timed:
            self.rss_growth += rss_mb() - rss0

    def trace(self, n: int) -> None:
        """Peak Python allocations over ``n`` more turns (never timed)."""
        if not n:
            return
        gc.collect()
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(n):
            self.turn(self.i)
            self.i += 1
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        self.peak = round((top - base) / 2**20, 2)
        self.mem_turns = n

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = stats(self.times) if self.times else {"n": 0}
        if len(self.times) >= 8:
            # the session grows by one turn a turn: how the cost moves with its length
            q = len(self.times) // 4
            out["first_quarter_median_ms"] = round(statistics.median(self.times[:q]), 3)
            out["last_quarter_median_ms"] = round(statistics.median(self.times[-q:]), 3)
        out.update({
            "warmup": self.warmup,
            "wrong_answers": self.bad,
            "rss_growth_mb": round(self.rss_growth, 2),
            "tracemalloc_peak_mb": self.peak,
            "mem_turns": self.mem_turns,
        })
        out.update(self.info())
        out["times_ms"] = [round(t, 3) for t in self.times]
        if self.cpu:
            out["cpu_median_ms"] = round(statistics.median(self.cpu), 3)
            out["cpu_ms"] = [round(t, 3) for t in self.cpu]
        return out


def interleaved(runners: list[Runner], *, turns: int, warmup: int, block: int,
                mem_turns: int) -> None:
    """Warm every runner up, then time them in alternating blocks of ``block`` turns.

    The order rotates every round, and garbage is collected between blocks,
    so machine noise and one framework's garbage hit every runner alike.
    """
    for r in runners:
        r.run(warmup, timed=False)
    done = 0
    rnd = 0
    while done < turns:
        n = min(block, turns - done)
        order = runners[rnd % len(runners):] + runners[: rnd % len(runners)]
        for r in order:
            gc.collect()
            r.run(n)
        done += n
        rnd += 1
    for r in runners:
        r.trace(mem_turns)


# -- a tiny langchain-core chat model (the FunctionModel's decision) -----------
def minimal_chat_model():
    """A BaseChatModel that calls ``add`` when the last message asks for it, then answers."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langchain_core.utils.function_calling import convert_to_openai_tool

    def decide(messages) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return AIMessage(f"{last.name or 'add'} returned {last.content}.")
        if isinstance(last, HumanMessage):
            m = CALL.search(last.text)
            if m:
                return AIMessage("", tool_calls=[{
                    "name": "add", "args": {"a": int(m[1]), "b": int(m[2])},
                    "id": "call_" + uuid.uuid4().hex[:24], "type": "tool_call"}])
        return AIMessage("ok")

    class MinimalToolModel(BaseChatModel):
        model_name: str = "minimal"

        @property
        def _llm_type(self) -> str:
            return "minimal"

        def bind_tools(self, tools, **kwargs):
            return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            return ChatResult(generations=[ChatGeneration(message=decide(messages))])

        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
            return self._generate(messages)

        def _stream(self, messages, stop=None, run_manager=None, **kwargs):
            ai = decide(messages)
            yield ChatGenerationChunk(message=AIMessageChunk(
                content=ai.content, chunk_position="last", tool_call_chunks=[
                    {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"],
                     "index": n} for n, c in enumerate(ai.tool_calls)]))

        async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
            for chunk in self._stream(messages):
                yield chunk

    return MinimalToolModel()


# -- agentnb ----------------------------------------------------------------------
def _agentnb_store(work: Path):
    import agentnb

    work.mkdir(parents=True, exist_ok=True)
    return agentnb.connect(f"duckdb:///{work / 'agentnb.duckdb'}", home=work)


def prefill(store, session_id: uuid.UUID, turns: int, batch: int = 50) -> float:
    """Write ``turns`` finished tool-calling turns into a session; seconds taken."""
    from agentnb.schemas import NewMessage, NewToolCall

    t0 = time.perf_counter()
    for first in range(0, turns, batch):
        msgs: list[NewMessage] = []
        for i in range(first, min(turns, first + batch)):
            call_id = uuid.uuid4()
            msgs += [
                NewMessage(role="user", content=f"Earlier: add(a={i}, b=1)"),
                NewMessage(role="assistant", content="", model="offline", input_tokens=40,
                           output_tokens=9, tool_calls=[NewToolCall(
                               id=call_id, tool_name="add", input_args={"a": i, "b": 1},
                               output=str(i + 1), status="success", execution_time_ms=0.01)]),
                NewMessage(role="tool", content=str(i + 1),
                           attrs={"tool_call_record_id": str(call_id), "tool_name": "add"}),
                NewMessage(role="assistant", content=f"add returned {i + 1}.", model="offline",
                           input_tokens=52, output_tokens=4),
            ]
        records = store._repo.append_turn(session_id, msgs)
        stored = {str(c.id) for r in records for c in r.tool_calls}
        assert all(m.attrs["tool_call_record_id"] in stored for m in msgs if m.role == "tool")
    return time.perf_counter() - t0


def agentnb_runner(name: str, work: Path, *, strategy: str = "full", model: str = "offline",
                   prefill_turns: int = 0) -> Runner:
    store = _agentnb_store(work)
    agent = store.create_agent("bench", model="offline", system=SYSTEM, memory=strategy)
    agent.tool(add)
    extra: dict[str, Any] = {"memory": strategy, "model": model}
    chat_kwargs: dict[str, Any] = {}
    if model == "minimal":
        chat_kwargs["model"] = minimal_chat_model()
    session = agent.new_session(title="bench")
    if prefill_turns:
        extra["prefill_turns"] = prefill_turns
        extra["prefill_s"] = round(prefill(store, session.id, prefill_turns), 2)
        agent = store.agent("bench")  # a fresh handle, as after a kernel restart
        agent.resume(session.id)

    def turn(i: int) -> str:
        reply = agent.chat(message(i), **chat_kwargs)
        if reply.status != "complete" or len(reply.tool_calls) != 1:
            return f"{reply.status}: {reply.error}"
        return reply.text

    def info() -> dict:
        return {
            **extra,
            "messages_in_session": len(store._repo.history(session.id, with_tool_calls=False)),
            "store_mb": round((work / "agentnb.duckdb").stat().st_size / 2**20, 2),
            "persisted": "every message, tool call (args, output, status, time) and token "
                         "count, one committed DuckDB transaction per turn",
        }

    return Runner(name, turn, start=prefill_turns, info=info, close=store.close)


def bench_map(work: Path, items_n: int) -> dict:
    store = _agentnb_store(work)
    try:
        agent = store.create_agent("mapper", model="offline", system=SYSTEM)
        items = [f"Item {i}: say something about it." for i in range(items_n)]
        agent.map(items[: min(16, len(items))], concurrency=8, progress=False)  # warm-up
        gc.collect()
        rss0 = rss_mb()
        t0 = time.perf_counter()
        replies = agent.map(items, concurrency=8, progress=False)
        seconds = time.perf_counter() - t0
        rss1 = rss_mb()
        ok = sum(1 for r in replies if r.status == "complete")
        return {
            "items": len(items), "concurrency": 8, "seconds": round(seconds, 3),
            "items_per_s": round(len(items) / seconds, 1), "complete": ok,
            "rss_growth_mb": round(rss1 - rss0, 2),
        }
    finally:
        store.close()


# -- pydantic-ai ------------------------------------------------------------------
def _pydantic_agent():
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.messages import UserPromptPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def respond(messages, info: AgentInfo) -> ModelResponse:
        last = messages[-1]
        for part in last.parts:
            if isinstance(part, ToolReturnPart):
                return ModelResponse(parts=[TextPart(f"{part.tool_name} returned {part.content}.")])
        for part in last.parts:
            if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                m = CALL.search(part.content)
                if m:
                    return ModelResponse(parts=[
                        ToolCallPart("add", {"a": int(m[1]), "b": int(m[2])})])
        return ModelResponse(parts=[TextPart("ok")])

    agent = Agent(FunctionModel(respond), instructions=SYSTEM)
    agent.tool_plain(add)
    return agent


def pydantic_runner(name: str, *, use_async: bool = False) -> Runner:
    agent = _pydantic_agent()
    history: list = []
    loop = asyncio.new_event_loop() if use_async else None

    def turn(i: int) -> str:
        nonlocal history
        if loop is not None:
            result = loop.run_until_complete(agent.run(message(i), message_history=history))
        else:
            result = agent.run_sync(message(i), message_history=history)
        history = result.all_messages()
        return result.output

    return Runner(name, turn, info=lambda: {
        "api": "await agent.run (one event loop)" if use_async else "agent.run_sync",
        "messages_in_memory": len(history),
        "persisted": "nothing: the history is a Python list in memory",
    }, close=(loop.close if loop is not None else None))


# -- LangGraph ---------------------------------------------------------------------
def langgraph_runner(name: str, work: Path, *, model: str = "offline") -> Runner:
    warnings.filterwarnings("ignore")  # create_react_agent's deprecation notice
    from langchain_core.tools import tool as lc_tool
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.prebuilt import create_react_agent

    if model == "minimal":
        chat_model = minimal_chat_model()
    else:
        from agentnb.models import OfflineChatModel

        chat_model = OfflineChatModel()
    work.mkdir(parents=True, exist_ok=True)
    path = work / "checkpoints.sqlite"
    conn = sqlite3.connect(str(path), check_same_thread=False)
    graph = create_react_agent(chat_model, [lc_tool(add)], prompt=SYSTEM,
                               checkpointer=SqliteSaver(conn))
    config = {"configurable": {"thread_id": "bench"}}
    state: dict[str, Any] = {}

    def turn(i: int) -> str:
        out = graph.invoke({"messages": [("user", message(i))]}, config)
        state["n"] = len(out["messages"])
        return out["messages"][-1].text

    def info() -> dict:
        return {
            "model": model,
            "messages_in_state": state.get("n"),
            "checkpoints": conn.execute("select count(*) from checkpoints").fetchone()[0],
            "writes": conn.execute("select count(*) from writes").fetchone()[0],
            "store_mb": round(path.stat().st_size / 2**20, 2),
            "persisted": "a checkpoint per graph step holding the whole message list, "
                         "plus the step's writes (SQLite, committed per step)",
        }

    return Runner(name, turn, info=info, close=conn.close)


# -- the floor workload (issue 13) ------------------------------------------------
#: The answer's filler: with "add returned N." the answer is ~55 words.
_ANSWER_FILLER = (
    "The sum was computed by the tool, checked against the arguments you gave, and is "
    "reported here in plain words so that the answer has the length of a typical short "
    "reply from a chat model, about fifty five words in all, which is what this "
    "benchmark wants to store and read back each turn."
)
FLOOR_STRATEGIES = ("full", "window", "tokens", "summary")


def answer(result: Any) -> str:
    """The ~55-word final answer of a turn whose tool returned ``result``."""
    return f"add returned {result}. {_ANSWER_FILLER}"


def fake_chat_model():
    """langchain-core's GenericFakeChatModel, deciding from the input like the minimal model.

    It calls ``add`` when the last message asks for it and answers with the
    ~55-word :func:`answer` once the tool result is there. Each reply comes as
    one streamed chunk (like a provider that sends the answer at once), so
    the figures are the framework's cost, not a tokenizer's.
    """
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

    def decide(messages) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return AIMessage(answer(last.content))
        if isinstance(last, HumanMessage):
            m = CALL.search(last.text)
            if m:
                return AIMessage("", tool_calls=[{
                    "name": "add", "args": {"a": int(m[1]), "b": int(m[2])},
                    "id": "call_" + uuid.uuid4().hex[:24], "type": "tool_call"}])
        return AIMessage("ok")

    class FakeToolChatModel(GenericFakeChatModel):
        model_name: str = "fake"

        def bind_tools(self, tools, **kwargs):
            return self  # the decision above needs no schema

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            return ChatResult(generations=[ChatGeneration(message=decide(messages))])

        def _stream(self, messages, stop=None, run_manager=None, **kwargs):
            ai = decide(messages)
            yield ChatGenerationChunk(message=AIMessageChunk(
                content=ai.content, chunk_position="last", tool_call_chunks=[
                    {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"],
                     "index": n} for n, c in enumerate(ai.tool_calls)]))

        async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
            for chunk in self._stream(messages):
                yield chunk

    return FakeToolChatModel(messages=iter(()))


def floor_template(work: Path) -> tuple[Path, uuid.UUID]:
    """An empty store made by agentnb's migrations, with one agent; its path and agent id.

    Both sides of the floor comparison start from a copy of this file (same
    schema, same indexes), so neither pays for creating the schema.
    """
    import agentnb

    work.mkdir(parents=True, exist_ok=True)
    path = work / "template.duckdb"
    store = agentnb.connect(f"duckdb:///{path}", home=work)
    agent = store.create_agent("bench", model="offline", system=SYSTEM)
    agent.set(tools=["add"])
    store.close()
    return path, agent.id


def raw_floor_file(template: Path, dest: Path) -> Path:
    """A new file with the template's schema (tables, indexes) and agent, by plain duckdb.

    The floor's file is what plain DuckDB makes of the same rows: its schema
    is created by DDL statements in one go (the statements DuckDB itself
    reports for agentnb's tables), not by replaying agentnb's migrations.
    """
    import duckdb

    src = duckdb.connect(str(template), read_only=True)
    try:
        ddl = [r[0] for r in src.execute(
            "SELECT sql FROM duckdb_tables() WHERE database_name = current_database() "
            "ORDER BY table_oid").fetchall()]
        ddl += [r[0] for r in src.execute(
            "SELECT sql FROM duckdb_indexes() WHERE database_name = current_database() "
            "AND sql IS NOT NULL").fetchall()]
        agents = src.execute("SELECT * FROM agents").fetchall()
        cols = len(src.execute("SELECT * FROM agents LIMIT 0").description)
    finally:
        src.close()
    dest.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(dest))
    try:
        for statement in ddl:
            con.execute(statement)
        for row in agents:
            con.execute(f"INSERT INTO agents VALUES ({', '.join(['?'] * cols)})", list(row))
    finally:
        con.close()
    return dest


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: reset by exec, unlike ru_maxrss)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def copy_store(template: Path, dest: Path) -> Path:
    import shutil

    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, dest)
    return dest


class Floor:
    """The raw-DuckDB floor: a turn's rows written with plain ``duckdb``, one transaction.

    The same writes as agentnb's turn: the session's ``updated_at``, the
    turn's 4 messages (user, assistant with the call, tool result, the
    ~55-word answer) in one multi-row INSERT and its tool call in another,
    then COMMIT, on a held connection. Values are what agentnb stores (JSON
    text, naive UTC times, token counts); the tool runs inline and the
    "model" is the same decision as the fake model's, made in Python.
    """

    def __init__(self, path: Path, agent_id: uuid.UUID) -> None:
        import duckdb

        self.path = path
        self.con = duckdb.connect(str(path))
        self.agent_id = agent_id
        self.session = self.new_session()

    def new_session(self) -> uuid.UUID:
        import datetime as dt

        sid = uuid.uuid4()
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        self.con.execute(
            "INSERT INTO sessions (id, agent_id, user_id, title, attrs, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)", [sid, self.agent_id, "bench", "bench", "{}", now, now])
        self.session, self.position = sid, 0
        return sid

    def turn(self, i: int) -> str:
        import datetime as dt

        text = message(i)
        m = CALL.search(text)
        args = {"a": int(m[1]), "b": int(m[2])}
        t_call = time.perf_counter()
        result = add(**args)
        took = (time.perf_counter() - t_call) * 1000
        reply = answer(result)
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        ids = [uuid.uuid4() for _ in range(4)]
        call = uuid.uuid4()
        p = self.position
        sid = self.session
        msgs = [
            (ids[0], sid, p, "user", text, "{}", None, None, None, None, "complete", now),
            (ids[1], sid, p + 1, "assistant", "", "{}", 40, 9, 49, "fake", "complete", now),
            (ids[2], sid, p + 2, "tool", str(result),
             json.dumps({"tool_call_record_id": str(call), "tool_name": "add"}),
             None, None, None, None, "complete", now),
            (ids[3], sid, p + 3, "assistant", reply, "{}", 52, 60, 112, "fake", "complete", now),
        ]
        con = self.con
        con.execute("BEGIN")
        con.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", [now, sid])
        con.execute(
            "INSERT INTO messages (id, session_id, position, role, content, attrs, input_tokens,"
            " output_tokens, tokens_used, model, status, created_at) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * 4),
            [v for row in msgs for v in row])
        con.execute(
            "INSERT INTO tool_calls (id, message_id, tool_name, input_args, output, status,"
            " error_message, execution_time_ms, created_at, updated_at, attrs) VALUES"
            " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [call, ids[1], "add", json.dumps(args), str(result), "success", None, took,
             now, now, "{}"])
        con.execute("COMMIT")
        self.position += 4
        return reply

    def close(self) -> None:
        self.con.close()


def floor_reload(path: Path, session: uuid.UUID) -> int:
    """The floor's reload: open the file, read the session's messages and tool calls."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        rows = con.execute(
            "SELECT * FROM messages WHERE session_id = ? ORDER BY position", [session]).fetchall()
        calls = con.execute(
            "SELECT t.* FROM tool_calls t JOIN messages m ON m.id = t.message_id "
            "WHERE m.session_id = ? ORDER BY t.created_at", [session]).fetchall()
    finally:
        con.close()
    return len(rows) + len(calls)


def floor_runner(name: str, work: Path, template: Path, agent_id: uuid.UUID,
                 warmup: int) -> Runner:
    path = raw_floor_file(template, work / "floor.duckdb")
    floor = Floor(path, agent_id)
    for i in range(warmup):  # in a session of its own: the timed session starts empty
        floor.turn(-1000 - i)
    floor.new_session()
    runner = Runner(name, floor.turn, info=lambda: {"store_mb": _mb(path)}, close=floor.close)
    runner.reset = floor.new_session
    return runner


def _mb(path: Path) -> float:
    size = path.stat().st_size if path.exists() else 0
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        size += wal.stat().st_size
    return round(size / 2**20, 3)


def agentnb_fake_runner(name: str, work: Path, template: Path | None, *, warmup: int,
                        strategy: str = "full", model: str = "fake") -> Runner:
    """agentnb on the floor workload: warm-up turns in one session, timed ones in a new one."""
    import agentnb

    path = work / "agentnb.duckdb"
    if template is not None:
        copy_store(template, path)
    store = agentnb.connect(f"duckdb:///{path}", home=work)
    if template is None:
        agent = store.create_agent("bench", model="offline", system=SYSTEM)
    else:
        agent = store.agent("bench")
    if strategy != agent.config.memory.strategy:
        agent.set(memory=strategy)
    agent.tool(add)
    kwargs: dict[str, Any] = {"model": fake_chat_model()} if model == "fake" else {}
    agent.new_session(title="warm-up")

    def turn(i: int) -> str:
        reply = agent.chat(message(i), **kwargs)
        if reply.status != "complete" or len(reply.tool_calls) != 1:
            return f"{reply.status}: {reply.error}"
        return reply.text

    for i in range(warmup):
        turn(-1000 - i)
    agent.new_session(title="bench")
    runner = Runner(name, turn, info=lambda: {"memory": strategy, "model": model,
                                              "store_mb": _mb(path)}, close=store.close)
    runner.reset = lambda: agent.new_session(title="bench")
    # a second handle of the agent for new sessions beside the long one (see paired_flat)
    young = store.agent("bench")

    def young_turn(i: int) -> str:
        reply = young.chat(message(i), **kwargs)
        return reply.text if reply.status == "complete" else f"{reply.status}: {reply.error}"

    runner.young = (lambda: young.new_session(title="young"), young_turn)
    return runner


def paired_flat(runners: list[Runner], n: int = 20) -> dict[str, dict]:
    """Turns of each runner's long session alternated with turns of a new session.

    last-20 / first-20 of one session compares turns run minutes apart, and the
    load of a shared machine moves in minutes: here the old session's next
    ``n`` turns and a new session's first ``n`` alternate turn by turn, so the
    ratio of their medians (wall and CPU) compares them under the same load.
    """
    out: dict[str, dict] = {}
    for r in runners:
        young = getattr(r, "young", None)
        if young is None:
            continue
        young[0]()
        old_w, old_c, new_w, new_c = [], [], [], []
        for k in range(n):
            for fn, w, c in ((r.turn, old_w, old_c), (young[1], new_w, new_c)):
                gc.collect()
                c0, t0 = time.process_time(), time.perf_counter()
                fn(r.i)
                w.append((time.perf_counter() - t0) * 1000)
                c.append((time.process_time() - c0) * 1000)
                r.i += 1
        med, mean = statistics.median, statistics.fmean
        # "summary" makes a summary call every keep_turns turns: its turn times are
        # periodic (a slow turn, then fast ones), and a median of 20 lands on one side or
        # the other with the phase. The means over whole periods (n = 20, keep_turns 4)
        # compare the two sessions' costs as they are; both are reported.
        out[r.name] = {"old_ms": round(med(old_w), 3), "new_ms": round(med(new_w), 3),
                       "old_cpu_ms": round(med(old_c), 3), "new_cpu_ms": round(med(new_c), 3),
                       "flat": round(med(old_w) / med(new_w), 2),
                       "flat_cpu": round(med(old_c) / med(new_c), 2),
                       "flat_cpu_mean": round(mean(old_c) / mean(new_c), 2), "n": n}
    return out


def pydantic_sqlite_runner(name: str, work: Path, *, warmup: int) -> Runner:
    """pydantic-ai with the fake decision and its messages stored in SQLite.

    As pydantic-ai documents it (messages and chat history; the chat app
    example): each run's ``result.new_messages_json()`` is written to a
    SQLite table and committed; the history passed to the next run is kept
    in memory (the cheaper of the two ways the example allows: it does not
    re-read and re-validate the table every turn).
    """
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.messages import UserPromptPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def respond(messages, info: AgentInfo) -> ModelResponse:
        last = messages[-1]
        for part in last.parts:
            if isinstance(part, ToolReturnPart):
                return ModelResponse(parts=[TextPart(answer(part.content))])
        for part in last.parts:
            if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                m = CALL.search(part.content)
                if m:
                    return ModelResponse(parts=[
                        ToolCallPart("add", {"a": int(m[1]), "b": int(m[2])})])
        return ModelResponse(parts=[TextPart("ok")])

    agent = Agent(FunctionModel(respond), instructions=SYSTEM)
    agent.tool_plain(add)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "pydantic-ai.sqlite"
    conn = sqlite3.connect(str(path), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, "
                 "session TEXT, message_list TEXT)")
    conn.commit()
    state: dict[str, Any] = {"history": [], "session": "warm-up"}

    def turn(i: int) -> str:
        result = agent.run_sync(message(i), message_history=state["history"])
        conn.execute("INSERT INTO messages (session, message_list) VALUES (?, ?)",
                     (state["session"], result.new_messages_json()))
        conn.commit()
        state["history"] = result.all_messages()
        return result.output

    for i in range(warmup):
        turn(-1000 - i)
    state.update(history=[], session="bench")
    runner = Runner(name, turn, info=lambda: {"store_mb": _mb(path),
                                              "persisted": "new_messages_json() per turn, "
                                                           "SQLite, committed"},
                    close=conn.close)
    runner.reset = lambda: state.update(history=[], session=uuid.uuid4().hex)
    return runner


def openai_agents_runner(name: str, work: Path, *, warmup: int) -> Runner:
    """openai-agents with a fake Model and its documented SQLiteSession on a file."""
    from agents import Agent, RunConfig, Runner as OARunner, SQLiteSession, function_tool
    from agents import set_tracing_disabled
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from agents.usage import Usage
    from openai.types.responses import (
        ResponseFunctionToolCall,
        ResponseOutputMessage,
        ResponseOutputText,
    )

    set_tracing_disabled(True)

    def text_of(item: Any) -> str:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
        return ""

    class FakeModel(Model):
        async def get_response(self, system_instructions, input, model_settings, tools,
                               output_schema, handoffs, tracing, **kwargs):
            items = [{"role": "user", "content": input}] if isinstance(input, str) else input
            last = items[-1]
            if isinstance(last, dict) and last.get("type") == "function_call_output":
                out: Any = ResponseOutputMessage(
                    id="msg_" + uuid.uuid4().hex[:12], type="message", role="assistant",
                    status="completed", content=[ResponseOutputText(
                        type="output_text", text=answer(last.get("output")), annotations=[])])
            else:
                m = CALL.search(text_of(last))
                if m:
                    out = ResponseFunctionToolCall(
                        id="fc_" + uuid.uuid4().hex[:12], call_id="call_" + uuid.uuid4().hex[:12],
                        type="function_call", name="add",
                        arguments=json.dumps({"a": int(m[1]), "b": int(m[2])}))
                else:
                    out = ResponseOutputMessage(
                        id="msg_" + uuid.uuid4().hex[:12], type="message", role="assistant",
                        status="completed", content=[ResponseOutputText(
                            type="output_text", text="ok", annotations=[])])
            return ModelResponse(output=[out], usage=Usage(), response_id=None)

        def stream_response(self, *args, **kwargs):  # pragma: no cover - not used
            raise NotImplementedError

    agent = Agent(name="bench", instructions=SYSTEM, model=FakeModel(),
                  tools=[function_tool(add)])
    work.mkdir(parents=True, exist_ok=True)
    path = work / "openai-agents.sqlite"
    state: dict[str, Any] = {"session": SQLiteSession("warm-up", str(path))}
    config = RunConfig(tracing_disabled=True)

    def turn(i: int) -> str:
        result = OARunner.run_sync(agent, message(i), session=state["session"],
                                   run_config=config)
        return str(result.final_output)

    for i in range(warmup):
        turn(-1000 - i)
    state["session"].close()
    state["session"] = SQLiteSession("bench", str(path))

    def reset() -> None:
        state["session"].close()
        state["session"] = SQLiteSession(uuid.uuid4().hex, str(path))

    runner = Runner(name, turn, info=lambda: {"store_mb": _mb(path),
                                              "persisted": "SQLiteSession (file), its items"},
                    close=lambda: state["session"].close())
    runner.reset = reset
    return runner


def head_tail(times: list[float], n: int = 20, cpu: list[float] | None = None
              ) -> dict[str, float | None]:
    if len(times) < 2 * n:
        return {"first_median_ms": None, "last_median_ms": None, "flat": None}
    first = statistics.median(times[:n])
    last = statistics.median(times[-n:])
    out = {"first_median_ms": round(first, 3), "last_median_ms": round(last, 3),
           "flat": round(last / first, 2)}
    if cpu and len(cpu) >= 2 * n:
        out["flat_cpu"] = round(statistics.median(cpu[-n:]) / statistics.median(cpu[:n]), 2)
    return out


def first_sessions(runners: list[Runner], sessions: int, n: int = 20) -> dict[str, dict]:
    """Each runner's first ``n`` turns of ``sessions`` new sessions, interleaved by session."""
    times: dict[str, list[float]] = {r.name: [] for r in runners}
    cpu: dict[str, list[float]] = {r.name: [] for r in runners}
    for k in range(sessions):
        order = runners[k % len(runners):] + runners[: k % len(runners)]
        for r in order:
            r.reset()
            gc.collect()
            t0, c0 = len(r.times), len(r.cpu)
            r.run(n)
            times[r.name] += r.times[t0:]
            cpu[r.name] += r.cpu[c0:]
            del r.times[t0:], r.cpu[c0:]
    return {name: {**stats(ts), "cpu_median_ms": round(statistics.median(cpu[name]), 3),
                   "sessions": sessions} for name, ts in times.items()}


# -- child processes: peak RSS, file size, reload ------------------------------------
def child_main(args: argparse.Namespace) -> None:
    """One workload alone in this process; prints its figures as JSON on stdout."""
    work = Path(args.child_work)
    template = Path(args.child_template)
    agent_id = uuid.UUID(args.child_agent)
    out: dict[str, Any] = {"workload": args.child}
    t_start = time.perf_counter()
    # "... release": the file is let go after every turn (a notebook whose turns come
    # seconds apart: the holder closes it after idle_release), so every turn opens it
    # and every close checkpoints
    release = args.child.endswith(" release")
    turns_n = args.release_turns if release else args.turns
    if args.child.startswith("floor"):
        if args.child == "floor+model":
            # what the user's own code holds in the agentnb run: the langchain-core model
            fake_chat_model().invoke("Please add(a=1, b=1)")
        path = raw_floor_file(template, work / "floor.duckdb")
        floor = Floor(path, agent_id)
        for i in range(args.warmup):
            floor.turn(-1000 - i)
        session = floor.new_session()
        times = []
        for i in range(turns_n):
            t0 = time.perf_counter()
            if release:
                import duckdb

                floor.con.close()
                floor.con = duckdb.connect(str(path))
            floor.turn(i)
            times.append((time.perf_counter() - t0) * 1000)
        floor.close()
        reload = lambda: floor_reload(path, session)  # noqa: E731
    else:
        import agentnb

        runner = agentnb_fake_runner("agentnb", work, template, warmup=args.warmup)
        if release:  # what the holder's reaper does after idle_release, done at once
            holder = runner.close.__self__._db.holder
            turn = runner.turn
            runner.turn = lambda i: (holder.release(), turn(i))[1]
        runner.run(turns_n)
        times = runner.times
        path = work / "agentnb.duckdb"
        store_sid = None
        store = runner.close.__self__  # the Store
        agent = store.agent("bench")
        store_sid = agent.current_session().id
        runner.close()

        def reload() -> int:
            s = agentnb.connect(f"duckdb:///{path}", home=work)
            try:
                return len(s.history(store_sid))
            finally:
                s.close()
    out["run_s"] = round(time.perf_counter() - t_start, 3)
    out["turn"] = stats(times)
    out.update(head_tail(times))
    out["peak_rss_mb"] = peak_rss_mb()
    out["file_mb"] = _mb(path)
    out["file_bytes"] = path.stat().st_size
    rel = []
    for _ in range(args.reloads):
        gc.collect()
        t0 = time.perf_counter()
        n = reload()
        rel.append((time.perf_counter() - t0) * 1000)
    out["reload"] = stats(rel)
    out["reload_rows"] = n
    print("CHILD-JSON " + json.dumps(out))


def run_child(kind: str, work: Path, template: Path, agent_id: uuid.UUID, args) -> dict:
    import subprocess

    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind,
           "--child-work", str(work), "--child-template", str(template),
           "--child-agent", str(agent_id), "--turns", str(args.turns),
           "--warmup", str(args.warmup), "--reloads", str(args.reloads),
           "--release-turns", str(args.release_turns)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    for line in proc.stdout.splitlines():
        if line.startswith("CHILD-JSON "):
            return json.loads(line[len("CHILD-JSON "):])
    return {"error": f"exit {proc.returncode}: {proc.stderr[-800:]}"}


def bench_floor(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The issue-13 figures: agentnb against the raw-DuckDB floor and two frameworks."""
    template, agent_id = floor_template(work / "template")
    out: dict[str, Any] = {"load_start": list(os.getloadavg()), "turns": {}, "flat": {},
                           "processes": []}
    parts = set(args.floor_parts.split(","))
    # 1. per-turn, side by side in one process, interleaved
    group = {} if "turns" not in parts else {
        "agentnb fake": safe("agentnb fake", lambda: agentnb_fake_runner(
            "agentnb fake", work / "a-fake", template, warmup=args.warmup)),
        "floor (raw duckdb)": safe("floor", lambda: floor_runner(
            "floor (raw duckdb)", work / "floor", template, agent_id, args.warmup)),
        "pydantic-ai sqlite": safe("pydantic-ai sqlite", lambda: pydantic_sqlite_runner(
            "pydantic-ai sqlite", work / "pai", warmup=args.warmup)),
        "openai-agents sqlite": safe("openai-agents sqlite", lambda: openai_agents_runner(
            "openai-agents sqlite", work / "oai", warmup=args.warmup)),
    }
    turns: dict[str, dict] = {}
    live = [r for r in group.values() if isinstance(r, Runner)]
    if live and args.first_sessions:  # first 20 turns of new sessions, before the long one
        out["first20"] = first_sessions(live, args.first_sessions)
        for r in live:
            r.reset()  # the long session starts empty too
    if group:
        run_group(group, turns, turns=args.turns, warmup=0, block=args.block, mem_turns=0)
    for r in turns.values():
        if "times_ms" in r:
            r.update(head_tail(r["times_ms"], cpu=r.get("cpu_ms")))
    out["turns"] = turns
    # 2. flatness: every memory strategy, the fake and the offline model
    flat: dict[str, dict] = {}
    group = {}
    for model in ("fake", "offline") if "flat" in parts else ():
        for strategy in FLOOR_STRATEGIES:
            name = f"agentnb {model} {strategy}"
            group[name] = safe(name, lambda s=strategy, m=model, n=name: agentnb_fake_runner(
                n, work / f"flat-{m}-{s}", template, warmup=args.warmup, strategy=s, model=m))
    live = [r for r in group.values() if isinstance(r, Runner)]
    flat.update({name: r for name, r in group.items() if not isinstance(r, Runner)})
    try:
        if live:
            interleaved(live, turns=args.turns, warmup=0, block=args.block, mem_turns=0)
            paired = paired_flat(live)
            for r in live:
                flat[r.name] = r.result()
                flat[r.name]["paired"] = paired.get(r.name)
    finally:
        for r in live:
            r.close()
    for r in flat.values():
        if "times_ms" in r:
            r.update(head_tail(r["times_ms"], cpu=r.get("cpu_ms")))
    out["flat"] = flat
    # 3. separate processes: peak RSS, file size (twice each), reload
    procs = []
    for rep in range(2 if "procs" in parts else 0):
        kinds = ("agentnb", "floor", "floor+model", "agentnb release", "floor release")
        for kind in (kinds if rep == 0 else kinds[::-1]):
            res = run_child(kind, work / f"child-{kind.replace(' ', '-')}-{rep}", template,
                            agent_id, args)
            res["rep"] = rep
            procs.append(res)
    out["processes"] = procs
    out["load_end"] = list(os.getloadavg())
    return out


def report_floor(res: dict[str, Any]) -> dict[str, Any]:
    t = res["turns"]
    fl = t.get("floor (raw duckdb)", {})
    print(f"\nissue-13 figures (load average {[round(x, 2) for x in res['load_start']]} -> "
          f"{[round(x, 2) for x in res['load_end']]})")
    print("  one session of the timed turns (wall ms; cpu: process CPU ms a turn)")
    print(f"  {'workload':<24}{'median':>9}{'p95':>9}{'cpu med':>9}{'first 20':>10}"
          f"{'last 20':>9}{'last/first':>11}{'(cpu)':>7}{'x floor':>9}{'(cpu)':>7}")
    for name, r in t.items():
        if "error" in r:
            print(f"  {name:<24}ERROR {r['error']}")
            continue
        x = round(r["median_ms"] / fl["median_ms"], 2) if fl.get("median_ms") else None
        xc = (round(r["cpu_median_ms"] / fl["cpu_median_ms"], 2)
              if fl.get("cpu_median_ms") else None)
        print(f"  {name:<24}{r['median_ms']:>9.2f}{r['p95_ms']:>9.2f}{r['cpu_median_ms']:>9.2f}"
              f"{r['first_median_ms'] or 0:>10.2f}{r['last_median_ms'] or 0:>9.2f}"
              f"{r['flat'] or 0:>11.2f}{r.get('flat_cpu') or 0:>7.2f}"
              f"{x if x is not None else '-':>9}{xc if xc is not None else '-':>7}"
              + ("" if not r.get("wrong_answers") else f"  {r['wrong_answers']} WRONG"))
    f20 = res.get("first20") or {}
    if f20:
        print(f"\n  first 20 turns of {next(iter(f20.values()))['sessions']} new sessions each "
              "(interleaved by session)")
        for name, r in f20.items():
            print(f"  {name:<24}{r['median_ms']:>9.2f}{r['p95_ms']:>9.2f}"
                  f"{r['cpu_median_ms']:>9.2f}")
    print("\n  flatness: last 20 / first 20 of one growing session (wall, cpu), and the old "
          "session's next 20 turns alternated with a new session's first 20 (paired wall, cpu)")
    print(f"  {'workload':<24}{'median':>9}{'first 20':>10}{'last 20':>10}{'flat':>8}{'cpu':>7}"
          f"{'old ms':>9}{'new ms':>9}{'paired':>8}{'cpu':>7}{'cpu mean':>9}")
    for name, r in res["flat"].items():
        if "error" in r:
            print(f"  {name:<24}ERROR {r['error']}")
            continue
        pr = r.get("paired") or {}
        print(f"  {name:<24}{r['median_ms']:>9.2f}{r['first_median_ms'] or 0:>10.2f}"
              f"{r['last_median_ms'] or 0:>10.2f}{r['flat'] or 0:>8.2f}"
              f"{r.get('flat_cpu') or 0:>7.2f}{pr.get('old_ms', 0):>9.2f}{pr.get('new_ms', 0):>9.2f}"
              f"{pr.get('flat', 0):>8.2f}{pr.get('flat_cpu', 0):>7.2f}"
              f"{pr.get('flat_cpu_mean', 0):>9.2f}"
              + ("" if not r.get("wrong_answers") else f"  {r['wrong_answers']} WRONG"))
    print("\n  separate processes (warm-up + timed turns, then reloads)")
    print(f"  {'process':<16}{'rep':>4}{'turn med':>10}{'peak RSS MB':>13}{'file MB':>9}"
          f"{'file bytes':>12}{'reload ms':>11}")
    for p in res["processes"]:
        if "error" in p:
            print(f"  {p.get('workload', '?'):<16}ERROR {p['error']}")
            continue
        print(f"  {p['workload']:<16}{p['rep']:>4}{p['turn']['median_ms']:>10.2f}"
              f"{p['peak_rss_mb']:>13.1f}{p['file_mb']:>9.3f}{p['file_bytes']:>12}"
              f"{p['reload']['median_ms']:>11.2f}")
    ok = [p for p in res["processes"] if "error" not in p]
    a = [p for p in ok if p["workload"] == "agentnb"]
    f = [p for p in ok if p["workload"] == "floor"]
    ratios: dict[str, Any] = {}
    an = t.get("agentnb fake", {})
    if fl.get("median_ms") and an.get("median_ms"):
        ratios["turn_median_x_floor"] = round(an["median_ms"] / fl["median_ms"], 2)
        ratios["turn_cpu_x_floor"] = round(an["cpu_median_ms"] / fl["cpu_median_ms"], 2)
    af = (f20.get("agentnb fake") or {}).get("median_ms")
    afc = (f20.get("agentnb fake") or {}).get("cpu_median_ms")
    for other in ("pydantic-ai sqlite", "openai-agents sqlite"):
        o = f20.get(other) or {}
        if af and o.get("median_ms"):
            ratios[f"first20_x_{other}"] = round(af / o["median_ms"], 2)
            ratios[f"first20_cpu_x_{other}"] = round(afc / o["cpu_median_ms"], 2)
    if a and f:
        med = statistics.median
        ratios["peak_rss_x_floor"] = round(med([p["peak_rss_mb"] for p in a])
                                           / med([p["peak_rss_mb"] for p in f]), 2)
        fm = [p for p in ok if p["workload"] == "floor+model"]
        if fm:
            ratios["peak_rss_x_floor_with_model"] = round(
                med([p["peak_rss_mb"] for p in a]) / med([p["peak_rss_mb"] for p in fm]), 2)
        ratios["file_x_floor"] = round(med([p["file_bytes"] for p in a])
                                       / med([p["file_bytes"] for p in f]), 2)
        ratios["file_same_each_run"] = len({p["file_bytes"] for p in a}) == 1
        ratios["reload_x_floor"] = round(med([p["reload"]["median_ms"] for p in a])
                                         / med([p["reload"]["median_ms"] for p in f]), 2)
        ar = [p for p in ok if p["workload"] == "agentnb release"]
        fr = [p for p in ok if p["workload"] == "floor release"]
        if ar and fr:
            ratios["file_x_floor_release_each_turn"] = round(
                med([p["file_bytes"] for p in ar]) / med([p["file_bytes"] for p in fr]), 2)
            ratios["file_same_each_run_release"] = len({p["file_bytes"] for p in ar}) == 1
            ratios["turn_x_floor_release_each_turn"] = round(
                med([p["turn"]["median_ms"] for p in ar])
                / med([p["turn"]["median_ms"] for p in fr]), 2)
    ratios["flat_max"] = max((r["flat"] for r in res["flat"].values() if r.get("flat")),
                             default=None)
    ratios["flat_cpu_max"] = max((r["flat_cpu"] for r in res["flat"].values()
                                  if r.get("flat_cpu")), default=None)
    paired = [r["paired"] for r in res["flat"].values() if r.get("paired")]
    ratios["flat_paired_max"] = max((p["flat"] for p in paired), default=None)
    ratios["flat_paired_cpu_max"] = max((p["flat_cpu"] for p in paired), default=None)
    ratios["flat_paired_cpu_mean_max"] = max((p.get("flat_cpu_mean", 0) for p in paired),
                                             default=None)
    print("\n  targets: " + ", ".join(f"{k} {v}" for k, v in ratios.items()))
    return ratios


# -- driver --------------------------------------------------------------------
def ratio(a: dict, b: dict, key: str = "median_ms") -> float | None:
    if a.get(key) and b.get(key):
        return round(a[key] / b[key], 2)
    return None


PAIRS = [
    ("agentnb offline", "pydantic-ai"),
    ("agentnb offline", "pydantic-ai async"),
    ("agentnb minimal", "pydantic-ai"),
    ("agentnb minimal", "pydantic-ai async"),
    ("agentnb offline", "langgraph offline"),
    ("agentnb minimal", "langgraph minimal"),
]


def report(results: dict[str, dict]) -> dict[str, Any]:
    width = max(len(k) for k in results) + 2
    head = (f"{'workload':<{width}}{'turns':>6}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}"
            f"{'1st 1/4':>9}{'4th 1/4':>9}{'tm peak MB':>11}  notes")
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<{width}}  ERROR: {r['error']}")
            continue
        if "items_per_s" in r:
            print(f"{name:<{width}}{r['items']:>6}{'':>11}{'':>9}{'':>9}{'':>18}{'':>11}  "
                  f"{r['items_per_s']} items/s (concurrency 8, {r['seconds']} s, "
                  f"RSS +{r['rss_growth_mb']} MB)")
            continue
        notes = []
        if r.get("wrong_answers"):
            notes.append(f"{r['wrong_answers']} WRONG ANSWERS")
        if "prefill_s" in r:
            notes.append(f"prefill {r['prefill_s']} s")
        if "checkpoints" in r:
            notes.append(f"{r['checkpoints']} checkpoints")
        if r.get("store_mb"):
            notes.append(f"file {r['store_mb']} MB")
        tm = r.get("tracemalloc_peak_mb")
        q1, q4 = r.get("first_quarter_median_ms"), r.get("last_quarter_median_ms")
        print(f"{name:<{width}}{r['n']:>6}{r['median_ms']:>11.2f}{r['p95_ms']:>9.2f}"
              f"{r['max_ms']:>9.1f}{(f'{q1:.2f}' if q1 else '-'):>9}"
              f"{(f'{q4:.2f}' if q4 else '-'):>9}{(tm if tm is not None else '-'):>11}"
              f"  {'; '.join(notes)}")
    ratios: dict[str, Any] = {}
    print("\nper-turn ratios agentnb / other (below 1: agentnb is faster)")
    print(f"  {'':<42}{'median':>8}{'p95':>8}{'1st 1/4':>9}{'4th 1/4':>9}")
    for a, b in PAIRS:
        ra, rb = results.get(a, {}), results.get(b, {})
        med, p95 = ratio(ra, rb), ratio(ra, rb, "p95_ms")
        q1 = ratio(ra, rb, "first_quarter_median_ms")
        q4 = ratio(ra, rb, "last_quarter_median_ms")
        ratios[f"{a} / {b}"] = {"median": med, "p95": p95, "first_quarter_median": q1,
                                "last_quarter_median": q4}
        print(f"  {a + ' / ' + b:<42}{med if med is not None else '-':>8}"
              f"{p95 if p95 is not None else '-':>8}{q1 if q1 is not None else '-':>9}"
              f"{q4 if q4 is not None else '-':>9}")
    return ratios


def safe(name: str, make: Callable[[], Runner]) -> Runner | dict:
    try:
        return make()
    except Exception as exc:  # report it in the table, go on with the others
        return {"error": f"{type(exc).__name__}: {exc}"}


def run_group(runners: dict[str, Runner | dict], results: dict, **kw) -> None:
    live = [r for r in runners.values() if isinstance(r, Runner)]
    for name, r in runners.items():
        if not isinstance(r, Runner):
            results[name] = r
    try:
        interleaved(live, **kw)
        for r in live:
            results[r.name] = r.result()
    except Exception as exc:
        import traceback

        traceback.print_exc()
        for r in live:
            results.setdefault(r.name, {"error": f"{type(exc).__name__}: {exc}"})
    finally:
        for r in live:
            try:
                r.close()
            except Exception:
                pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    ap.add_argument("--turns", type=int, help="timed turns per workload (default 200)")
    ap.add_argument("--prefilled-turns", type=int,
                    help="timed turns on the pre-filled sessions (default: --turns)")
    ap.add_argument("--prefill", type=int, help="earlier turns in the pre-filled sessions (1000)")
    ap.add_argument("--warmup", type=int, help="turns run before timing (default 10)")
    ap.add_argument("--block", type=int, help="turns per interleaved block (default 10)")
    ap.add_argument("--mem-turns", type=int, help="turns traced by tracemalloc (default 20)")
    ap.add_argument("--map-items", type=int, help="inputs for agent.map (default 1000)")
    ap.add_argument("--skip", default="", help="comma-separated groups to skip: "
                    "compare,prefilled,map")
    ap.add_argument("--only", default="", help="comma-separated groups to run (the others "
                    "are skipped): floor,compare,prefilled,map")
    ap.add_argument("--reloads", type=int, default=5, help="reloads per floor process")
    ap.add_argument("--release-turns", type=int, default=100,
                    help="turns of the processes that let the file go after every turn")
    ap.add_argument("--first-sessions", type=int, default=5,
                    help="new sessions whose first 20 turns are timed (floor group)")
    ap.add_argument("--floor-parts", default="turns,flat,procs",
                    help="parts of the floor group: turns,flat,procs")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-work", help=argparse.SUPPRESS)
    ap.add_argument("--child-template", help=argparse.SUPPRESS)
    ap.add_argument("--child-agent", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "turns.json"))
    args = ap.parse_args()
    if args.child:
        return child_main(args)
    q = args.quick
    args.turns = args.turns or (20 if q else 200)
    args.prefilled_turns = args.prefilled_turns or (10 if q else args.turns)
    args.prefill = args.prefill or (100 if q else 1000)
    args.warmup = args.warmup if args.warmup is not None else (3 if q else 10)
    args.block = args.block or (5 if q else 10)
    args.mem_turns = args.mem_turns if args.mem_turns is not None else (3 if q else 20)
    args.map_items = args.map_items or (100 if q else 1000)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.only:
        only = {s.strip() for s in args.only.split(",") if s.strip()}
        skip |= {"floor", "compare", "prefilled", "map"} - only

    print(f"turns.py: {args.turns} timed turns per workload ({args.prefilled_turns} on the "
          f"{args.prefill}-turn sessions), {args.warmup} warm-up turns, blocks of "
          f"{args.block}, one tool call a turn; {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}\n")
    results: dict[str, dict] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="agentnb-bench-") as tmp:
        work = Path(tmp)
        floor_res = None
        if "floor" not in skip:
            print("  floor workload: agentnb, raw duckdb, pydantic-ai, openai-agents; "
                  "memory strategies; separate processes ...", end="", flush=True)
            t1 = time.perf_counter()
            try:
                floor_res = bench_floor(work / "floor", args)
            except Exception as exc:
                import traceback

                traceback.print_exc()
                floor_res = {"error": f"{type(exc).__name__}: {exc}"}
            print(f" {time.perf_counter() - t1:.1f} s", flush=True)
        if "compare" not in skip:
            print("  head to head (interleaved) ...", end="", flush=True)
            t1 = time.perf_counter()
            group = {
                "agentnb offline": safe("agentnb offline", lambda: agentnb_runner(
                    "agentnb offline", work / "a-offline")),
                "agentnb minimal": safe("agentnb minimal", lambda: agentnb_runner(
                    "agentnb minimal", work / "a-minimal", model="minimal")),
                "pydantic-ai": safe("pydantic-ai", lambda: pydantic_runner("pydantic-ai")),
                "pydantic-ai async": safe("pydantic-ai async", lambda: pydantic_runner(
                    "pydantic-ai async", use_async=True)),
                "langgraph offline": safe("langgraph offline", lambda: langgraph_runner(
                    "langgraph offline", work / "lg-offline")),
                "langgraph minimal": safe("langgraph minimal", lambda: langgraph_runner(
                    "langgraph minimal", work / "lg-minimal", model="minimal")),
            }
            run_group(group, results, turns=args.turns, warmup=args.warmup, block=args.block,
                      mem_turns=args.mem_turns)
            print(f" {time.perf_counter() - t1:.1f} s", flush=True)
        if "prefilled" not in skip:
            print(f"  agentnb with {args.prefill} earlier turns (interleaved) ...", end="",
                  flush=True)
            t1 = time.perf_counter()
            group = {}
            for strategy in STRATEGIES:
                name = f"agentnb +{args.prefill} {strategy}"
                group[name] = safe(name, lambda s=strategy, n=name: agentnb_runner(
                    n, work / f"pre-{s}", strategy=s, prefill_turns=args.prefill))
            run_group(group, results, turns=args.prefilled_turns, warmup=args.warmup,
                      block=args.block, mem_turns=min(args.mem_turns, args.prefilled_turns))
            print(f" {time.perf_counter() - t1:.1f} s", flush=True)
        if "map" not in skip:
            print(f"  agent.map over {args.map_items} inputs ...", end="", flush=True)
            t1 = time.perf_counter()
            try:
                results["agentnb map"] = bench_map(work / "map", args.map_items)
            except Exception as exc:
                results["agentnb map"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f" {time.perf_counter() - t1:.1f} s", flush=True)
    print()
    ratios = report(results) if results else {}
    if floor_res is not None:
        if "error" in floor_res:
            print(f"floor workload: ERROR {floor_res['error']}")
        else:
            floor_res["ratios"] = report_floor(floor_res)
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("agentnb", "duckdb", "langchain-core", "pydantic-ai-slim", "openai-agents",
                "langgraph",
                "langgraph-prebuilt", "langgraph-checkpoint-sqlite"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    doc = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_at_end": load},
        "versions": versions,
        "settings": {k: getattr(args, k) for k in ("quick", "turns", "prefilled_turns",
                                                   "prefill", "warmup", "block", "mem_turns",
                                                   "map_items")},
        "results": results,
        "floor": floor_res,
        "ratios": ratios,
        "total_s": round(time.perf_counter() - t0, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    print(f"\nwrote {out} ({doc['total_s']} s; load average {load})")


if __name__ == "__main__":
    main()
