"""``Agent``: the handle users hold for one stored agent, and its turns.

::

    agent = store.create_agent("calc", system="You add numbers.")

    @agent.tool
    def add(a: int, b: int) -> int:
        "Add two integers."
        return a + b

    reply = agent.chat("Please add(a=2, b=3)")
    reply.text, reply.tool_calls, reply.usage.output_tokens, reply.session_id
    for event in agent.stream("..."): ...
    reply = await agent.achat("...")
    results = agent.map(df["text"], schema=Label, concurrency=8)
"""

from __future__ import annotations

import asyncio
import logging
import queue
import uuid
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Iterator

from .events import ApprovalRequested, Event, Reply, TurnFinished
from .schemas import AgentConfig, AgentRecord, MessageRecord, SessionRecord, SessionSummary

if TYPE_CHECKING:  # pragma: no cover
    from .api import Store
    from .engine import TurnRequest
    from .tools import ToolSpec

log = logging.getLogger(__name__)

#: How often the synchronous API wakes to notice Ctrl-C while it waits (seconds).
_POLL = 0.1


class Agent:
    """One agent of a store: its config, its sessions, and its turns."""

    def __init__(self, store: "Store", record: AgentRecord) -> None:
        self.store = store
        self.record = record
        self.session_id: uuid.UUID | None = None

    # -- record ---------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.record.name

    @property
    def id(self) -> uuid.UUID:
        return self.record.id

    @property
    def config(self) -> AgentConfig:
        return self.record.config

    def refresh(self) -> "Agent":
        """Reload the record from the store."""
        self.record = self.store.repo.get_agent(self.record.id)
        return self

    def set(self, **changes: Any) -> "Agent":
        """Change config keys (``model=...``, ``memory="window"``, ``temperature=0``)."""
        self.record = self.store.update_agent(self.name, **changes)
        return self

    def __repr__(self) -> str:
        return f"<agentnb.Agent {self.name!r} model={self.config.model!r}>"

    # -- tools ----------------------------------------------------------------
    def tool(self, fn: Callable | None = None, *, name: str | None = None,
             requires_approval: bool = False):
        """Register a function (or LangChain tool) as a tool of this agent; returns it.

        Usable as ``agent.tool(fn)``, ``@agent.tool`` or
        ``@agent.tool(requires_approval=True)``. The tool's name is added to
        the agent's stored config; the function itself lives in this process
        (after a restart, define it again, or let the notebook namespace
        provide it).
        """
        def register(obj):
            spec = self.store.tools.register(obj, name=name, requires_approval=requires_approval)
            if spec.name not in self.config.tools:
                self.set(tools=[*self.config.tools, spec.name])
            return obj

        if fn is None:
            return register
        return register(fn)

    def _tool_specs(self, enabled: bool) -> list["ToolSpec"]:
        if not enabled:
            return []
        specs = []
        missing = []
        for name in self.config.tools:
            spec = self.store.resolve_tool(name)
            if spec is None:
                missing.append(name)
            else:
                specs.append(spec)
        if missing:
            log.warning("agent %s: tools not available in this process: %s (define them and "
                        "register with agent.tool)", self.name, ", ".join(missing))
        return specs

    # -- sessions -------------------------------------------------------------
    def sessions(self) -> list[SessionSummary]:
        """This agent's sessions, newest first."""
        return self.store.repo.list_sessions(self.id)

    def new_session(self, title: str | None = None, **attrs: Any) -> SessionRecord:
        """Start a new session; the next turns go there."""
        session = self.store.repo.create_session(self.id, title=title, attrs=attrs)
        self.session_id = session.id
        return session

    def resume(self, session_id: str | uuid.UUID | None = None) -> SessionRecord | None:
        """Continue a stored session (by id or prefix; default: the latest one)."""
        if session_id is None:
            session = self.store.repo.latest_session(self.id)
            if session is None:
                return None
        else:
            session = self.store.repo.get_session(session_id)
            if session.agent_id != self.id:
                from .errors import InvalidValueError

                raise InvalidValueError(
                    f"session {session_id} belongs to another agent, not {self.name!r}")
        self.session_id = session.id
        return session

    def history(self, session_id: str | uuid.UUID | None = None, *,
                last: int | None = None) -> list[MessageRecord]:
        """Messages of a session (default: the current one), oldest first."""
        target = session_id or self.session_id
        if target is None:
            return []
        return self.store.history(target, last=last)

    def _session_for_turn(self, session: str | uuid.UUID | None, new: bool) -> SessionRecord:
        if new:
            return self.new_session()
        if session is not None:
            found = self.resume(session)
            assert found is not None
            return found
        if self.session_id is not None:
            return self.store.repo.get_session(self.session_id)
        return self.new_session()

    # -- turns ----------------------------------------------------------------
    def _request(self, message: str, *, session=None, new_session=False, schema=None,
                 tools: bool = True, model: str | None = None, approve=None,
                 stateless: bool = False, session_record: SessionRecord | None = None,
                 ) -> "TurnRequest":
        from .engine import TurnRequest

        if not isinstance(message, str) or not message.strip():
            from .errors import InvalidValueError

            raise InvalidValueError("the message is empty")
        self.refresh()
        record = session_record or self._session_for_turn(session, new_session)
        if model is not None and not isinstance(model, str):
            # a ready langchain-core chat model object
            chat_model = model
            spec = str(getattr(model, "model_name", None) or getattr(model, "model", None)
                       or type(model).__name__)
        else:
            spec = model or self.config.model
            chat_model = self.store.model(spec, _settings_for(spec, self.config))
        return TurnRequest(
            agent=self.record, session_id=record.id, message=message, model=chat_model,
            model_name=spec, tools=self._tool_specs(tools), schema=schema, approve=approve,
            stateless=stateless, session_attrs=dict(record.attrs),
            count_tokens=self.store.token_counter(chat_model),
        )

    async def astream(self, message: str, *, session: str | uuid.UUID | None = None,
                      new_session: bool = False, schema: Any = None, tools: bool = True,
                      model: Any = None,
                      approve: Callable[[ApprovalRequested], bool | Awaitable[bool]] | None = None,
                      ) -> AsyncIterator[Event]:
        """Stream one turn's events on the current event loop.

        Cancelling the consuming task (a Stop button) ends the turn: what was
        produced is stored, marked ``interrupted``, and a final
        ``TurnFinished`` is still delivered to the engine's listeners.
        """
        req = await asyncio.to_thread(
            self._request, message, session=session, new_session=new_session, schema=schema,
            tools=tools, model=model, approve=approve)
        events: asyncio.Queue[Event] = asyncio.Queue()
        task = asyncio.ensure_future(self.store.engine.run_turn(req, events.put_nowait))
        try:
            while True:
                event = await events.get()
                yield event
                if isinstance(event, TurnFinished):
                    break
        finally:
            if not task.done():
                task.cancel()
                await asyncio.shield(task)
        await task

    async def achat(self, message: str, **kwargs: Any) -> Reply:
        """Run one turn on the current event loop; the Reply."""
        reply = None
        async for event in self.astream(message, **kwargs):
            if isinstance(event, TurnFinished):
                reply = event.reply
        assert reply is not None
        return reply

    def stream(self, message: str, *, session: str | uuid.UUID | None = None,
               new_session: bool = False, schema: Any = None, tools: bool = True,
               model: Any = None,
               approve: Callable[[ApprovalRequested], bool] | None = None) -> Iterator[Event]:
        """Stream one turn's events (synchronously).

        ``model`` overrides the agent's model for this turn: a spec string
        or a langchain-core chat model object. ``approve(event)`` is called in this thread for a tool that needs
        approval (no callback: denied). On Ctrl-C the turn stops, is stored
        marked ``interrupted``, its ``TurnFinished`` is yielded, and the
        KeyboardInterrupt propagates.
        """
        req = self._request(message, session=session, new_session=new_session, schema=schema,
                            tools=tools, model=model)
        bridge = _SyncBridge(self.store, req, approve)
        yield from bridge.events()

    def chat(self, message: str, **kwargs: Any) -> Reply:
        """Run one turn and return its Reply (``.text``, ``.data``, ``.tool_calls``, ``.usage``)."""
        reply = None
        for event in self.stream(message, **kwargs):
            if isinstance(event, TurnFinished):
                reply = event.reply
        assert reply is not None
        return reply

    # -- batch ----------------------------------------------------------------
    def map(self, items: Any, *, schema: Any = None, prompt: str | None = None,
            concurrency: int = 8, retries: int = 2, tools: bool = True,
            progress: bool = True, model: str | None = None):
        """Run one independent turn per item, ``concurrency`` at a time.

        ``items``: a list (or any iterable), a pandas Series or DataFrame.
        ``prompt``: a template filled from each item (``"Label: {text}"``;
        ``{item}`` is the item itself). ``schema``: a pydantic model each
        answer must validate against. Results keep the input order: a list
        of Replies for a list, a DataFrame (text, data fields, status, error,
        tokens) for pandas input. A failing item is retried up to
        ``retries`` times, then kept with its error; nothing is raised. All
        turns are stored in one new session.
        """
        from .batch import run_map

        return run_map(self, items, schema=schema, prompt=prompt, concurrency=concurrency,
                       retries=retries, tools=tools, progress=progress, model=model)


#: Model settings every provider takes; the rest (base_url, ...) belong to one provider.
PORTABLE_SETTINGS = ("temperature", "max_tokens", "timeout", "max_retries")


def _settings_for(spec: str, config: AgentConfig) -> dict[str, Any]:
    """The agent's model settings for ``spec``.

    All of them for the agent's own model's provider; for a turn on another
    provider's model (``chat(..., model="offline")`` on an agent configured
    for ``openai:`` with a ``base_url``), only the portable ones.
    """
    from .models import parse_model_spec

    kwargs = dict(config.model_kwargs)
    if spec == config.model:
        return kwargs
    try:
        same = parse_model_spec(spec)[0] == parse_model_spec(config.model)[0]
    except Exception:  # a bad spec is reported by store.model with its own message
        same = True
    return kwargs if same else {k: v for k, v in kwargs.items() if k in PORTABLE_SETTINGS}


class _SyncBridge:
    """Runs one turn on the store's loop thread and hands events to this thread."""

    def __init__(self, store: "Store", req: "TurnRequest", approve) -> None:
        self.store = store
        self.req = req
        self.approve_fn = approve
        self.queue: "queue.Queue[Event]" = queue.Queue()
        self.pending: dict[str, asyncio.Future] = {}
        req.approve = self._engine_approve

    async def _engine_approve(self, event: ApprovalRequested) -> bool:
        future = asyncio.get_running_loop().create_future()
        self.pending[event.call_id] = future
        return await future

    def _answer(self, call_id: str, value: bool) -> None:
        def set_result() -> None:
            fut = self.pending.pop(call_id, None)
            if fut is not None and not fut.done():
                fut.set_result(value)

        self.store.loop.call(set_result)

    def _next(self, future) -> Event | None:
        while True:
            try:
                return self.queue.get(timeout=_POLL)
            except queue.Empty:
                if future.done() and self.queue.empty():
                    return None

    async def _run(self) -> Reply:
        self.task = asyncio.current_task()
        return await self.store.engine.run_turn(self.req, self.queue.put)

    def _cancel(self) -> None:
        task = getattr(self, "task", None)
        if task is not None:
            self.store.loop.call(task.cancel)

    def events(self) -> Iterator[Event]:
        self.task = None
        future = self.store.loop.submit(self._run())
        finished = False
        try:
            while True:
                event = self._next(future)
                if event is None:
                    break
                if isinstance(event, ApprovalRequested):
                    # the engine emits the event before it waits on the answer
                    yield event
                    ok = bool(self.approve_fn(event)) if self.approve_fn else False
                    self._wait_pending(event.call_id)
                    self._answer(event.call_id, ok)
                    continue
                yield event
                if isinstance(event, TurnFinished):
                    finished = True
                    break
        except KeyboardInterrupt:
            self._cancel()
            for event in self._drain(future):
                yield event
            raise
        finally:
            if not finished and not future.done():
                self._cancel()
                for _ in self._drain(future):
                    pass
        if future.done() and not future.cancelled() and future.exception() is not None:
            raise future.exception()

    def _wait_pending(self, call_id: str) -> None:
        # The approver registers its future right after emitting; wait for it.
        import time

        deadline = time.monotonic() + 5
        while call_id not in self.pending and time.monotonic() < deadline:
            time.sleep(0.001)

    def _drain(self, future) -> Iterator[Event]:
        while True:
            event = self._next(future)
            if event is None:
                return
            if isinstance(event, ApprovalRequested):
                self._answer(event.call_id, False)
            yield event
            if isinstance(event, TurnFinished):
                return
