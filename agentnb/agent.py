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
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Iterator, Sequence

from .agentconfig import check_model_settings, settings_for
from .errors import InvalidValueError, NotFoundError
from .events import ApprovalRequested, Event, Reply, TurnFinished
from .schemas import AgentConfig, AgentRecord, MessageRecord, SessionRecord, SessionSummary
from .text import short_id

if TYPE_CHECKING:  # pragma: no cover
    from .api import Store
    from .engine import TurnRequest
    from .mcpconfig import AgentMcp
    from .runtime import Runtime
    from .tools import ToolSpec

log = logging.getLogger(__name__)

#: How often the synchronous API wakes to notice Ctrl-C while it waits (seconds).
_POLL = 0.1


class Agent:
    """One agent of a store: its config, its sessions, and its turns.

    **Which session a turn goes to** (the one rule, for every front end): an
    explicit ``session`` id; else a new one with ``new_session=True``; else
    this handle's current session; else the agent's latest session of this
    user (a team store's members do not continue each other's conversations);
    else a new one. The session used becomes the handle's current session, so a
    reconnecting user (``agentnb.connect().agent("calc").chat(...)``)
    continues the latest conversation, as ``%%chat`` and ``agentnb chat`` do.

    ``user``: who new sessions are recorded for (default: the store's ``user``
    setting, else the OS user). ``session_attrs``: what new sessions record
    about where they started (a front end sets ``source``, the notebook, ...).
    """

    def __init__(self, store: "Store", record: AgentRecord, *, user: str | None = None,
                 session_attrs: dict[str, Any] | None = None) -> None:
        self.store = store
        self.record = record
        #: The id of the current session, or None until one is chosen.
        self.session_id: uuid.UUID | None = None
        self.user = user
        self.session_attrs: dict[str, Any] = dict(session_attrs or {})
        #: Log a warning for tools this process cannot run (once per session).
        #: Front ends that say it themselves turn this off.
        self.warn_missing_tools = True
        self._warned: set[tuple[uuid.UUID, tuple[str, ...]]] = set()

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
        self.record = self.store.get_agent(self.record.id)
        return self

    def set(self, **changes: Any) -> "Agent":
        """Change config keys (``model=...``, ``memory="window"``, ``temperature=0``).

        A value of None removes the key (back to its default).
        """
        self.record = self.store.update_agent(self.name, **changes)
        return self

    def __repr__(self) -> str:
        if self.session_id is not None:
            where = f"session={short_id(self.session_id)}"
        else:
            try:
                latest = self.store.latest_session(self.id, user=self.user_name)
            except Exception:  # a repr must not raise (a closed or busy store)
                latest = None
            where = (f"session={short_id(latest.id)} (latest)" if latest is not None
                     else "session=new (none yet)")
        return f"<agentnb.Agent {self.name!r} model={self.config.model!r} {where}>"

    # -- tools ----------------------------------------------------------------
    @property
    def mcp(self) -> "AgentMcp":
        """This agent's MCP servers: ``agent.mcp.add(...)``, ``.list()``, ``.tools()``, ``.remove()``."""
        from .mcpconfig import AgentMcp

        return AgentMcp(self)

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
            spec = self.store.runtime.tools.register(obj, name=name,
                                                     requires_approval=requires_approval)
            self.add_tools([spec.name])
            return obj

        if fn is None:
            return register
        return register(fn)

    def add_tools(self, names: Sequence[str]) -> list[str]:
        """Add tool names to the agent's config (kept in order, no duplicates); its tools."""
        self.refresh()
        tools = list(self.config.tools) + [n for n in names if n not in self.config.tools]
        if tools != list(self.config.tools):
            self.set(tools=tools)
        return tools

    # -- sessions -------------------------------------------------------------
    @property
    def user_name(self) -> str | None:
        """Who this handle's sessions are for: ``user``, else the store's user setting."""
        return self.user or self.store.settings.user_name

    def sessions(self) -> list[SessionSummary]:
        """This agent's sessions, newest first."""
        return self.store.sessions(self.name)

    def new_session(self, title: str | None = None, *, user: str | None = None,
                    **attrs: Any) -> SessionRecord:
        """Start a new session; the next turns go there."""
        session = self.store.new_session(self.id, title=title, user=user or self.user_name,
                                         **{**self.session_attrs, **attrs})
        self.session_id = session.id
        return session

    def resume(self, session_id: str | uuid.UUID | None = None) -> SessionRecord | None:
        """Continue a stored session (by id or prefix; default: the latest one, or None)."""
        if session_id is None:
            session = self.store.latest_session(self.id, user=self.user_name)
            if session is None:
                return None
        else:
            session = self.store.session(session_id)
            if session.agent_id != self.id:
                raise InvalidValueError(
                    f"session {short_id(session.id)} belongs to another agent, not {self.name!r}",
                    see="sessions list")
        self.session_id = session.id
        return session

    def current_session(self) -> SessionRecord | None:
        """The session the next turn continues (current, else latest); None if it would be new.

        Creates nothing; the latest session becomes current.
        """
        if self.session_id is not None:
            try:
                found = self.store.session(self.session_id)
            except NotFoundError:  # deleted from another kernel or the CLI
                found = None
            if found is not None and found.agent_id == self.id:
                return found
            self.session_id = None
        return self.resume()

    def session_for_turn(self, session: str | uuid.UUID | None = None, *,
                         new: bool = False) -> SessionRecord:
        """The session a turn goes to, by the rule in the class docstring; it becomes current."""
        if new and session is not None:
            raise InvalidValueError("give either a session or new_session=True, not both")
        if new:
            return self.new_session()
        if session is not None:
            found = self.resume(session)
            assert found is not None
            return found
        return self.current_session() or self.new_session()

    def history(self, session_id: str | uuid.UUID | None = None, *,
                last: int | None = None) -> list[MessageRecord]:
        """Messages of a session (default: the current one, else the latest), oldest first."""
        if session_id is None:
            current = self.current_session()
            if current is None:
                return []
            session_id = current.id
        return self.store.history(session_id, last=last)

    # -- turns ----------------------------------------------------------------
    def _request(self, message: str, *, session=None, new_session=False, schema=None,
                 tools: bool = True, model: str | None = None, approve=None,
                 stateless: bool = False, session_record: SessionRecord | None = None,
                 model_settings: dict[str, Any] | None = None) -> "TurnRequest":
        from .engine import TurnRequest

        if not isinstance(message, str) or not message.strip():
            raise InvalidValueError("the message is empty")
        self.refresh()
        # MCP servers start before the session is chosen: one that does not start is an
        # error with nothing created (not an empty new session)
        mcp_specs = (self.store.runtime.mcp_tool_specs(self.config)
                     if tools and self.config.mcp_servers else [])
        record = session_record or self.session_for_turn(session, new=new_session)
        if model is not None and not isinstance(model, str):
            # a ready langchain-core chat model object
            chat_model = model
            spec = str(getattr(model, "model_name", None) or getattr(model, "model", None)
                       or type(model).__name__)
        else:
            spec = model or self.config.model
            kwargs = settings_for(spec, self.config)
            if model_settings:
                check_model_settings(spec, model_settings)
                kwargs = {**kwargs, **model_settings}
            chat_model = self.store.runtime.model(spec, kwargs)
        specs, missing = self.store.runtime.tool_specs(self.config.tools) if tools else ([], [])
        specs = specs + mcp_specs
        if missing and self.warn_missing_tools and (record.id, tuple(missing)) not in self._warned:
            self._warned.add((record.id, tuple(missing)))
            log.warning("agent %s: tools not available in this process: %s (define them and "
                        "register them with agent.tool)", self.name, ", ".join(missing))
        return TurnRequest(
            agent=self.record, session_id=record.id, message=message, model=chat_model,
            model_name=spec, tools=specs, schema=schema, approve=approve,
            stateless=stateless, session_attrs=dict(record.attrs),
            count_tokens=self.store.runtime.token_counter(chat_model), missing_tools=missing,
        )

    async def astream(self, message: str, *, session: str | uuid.UUID | None = None,
                      new_session: bool = False, schema: Any = None, tools: bool = True,
                      model: Any = None,
                      approve: Callable[[ApprovalRequested], bool | Awaitable[bool]] | None = None,
                      model_settings: dict[str, Any] | None = None,
                      ) -> AsyncIterator[Event]:
        """Stream one turn's events on the current event loop.

        Cancelling the consuming task (a Stop button) ends the turn: what was
        produced is stored, marked ``interrupted``, and a final
        ``TurnFinished`` is still delivered to the engine's listeners.
        """
        req = await asyncio.to_thread(
            self._request, message, session=session, new_session=new_session, schema=schema,
            tools=tools, model=model, approve=approve, model_settings=model_settings)
        events: asyncio.Queue[Event] = asyncio.Queue()
        task = asyncio.ensure_future(self.store.runtime.engine.run_turn(req, events.put_nowait))
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
               model: Any = None, approve: Callable[[ApprovalRequested], bool] | None = None,
               model_settings: dict[str, Any] | None = None) -> Iterator[Event]:
        """Stream one turn's events (synchronously).

        ``model`` overrides the agent's model for this turn: a spec string or a
        langchain-core chat model object; ``model_settings`` (``temperature``,
        ``max_tokens``, ...) override its settings for this turn only.
        ``approve(event)`` is called in this thread for a tool that needs
        approval (no callback: denied). On Ctrl-C the turn stops, is stored
        marked ``interrupted``, its ``TurnFinished`` is yielded, and the
        KeyboardInterrupt propagates.
        """
        req = self._request(message, session=session, new_session=new_session, schema=schema,
                            tools=tools, model=model, model_settings=model_settings)
        bridge = _SyncBridge(self.store.runtime, req, approve)
        yield from bridge.events()

    def chat(self, message: str, *, session: str | uuid.UUID | None = None,
             new_session: bool = False, schema: Any = None, tools: bool = True,
             model: Any = None, approve: Callable[[ApprovalRequested], bool] | None = None,
             model_settings: dict[str, Any] | None = None) -> Reply:
        """Run one turn and return its Reply (``.text``, ``.data``, ``.tool_calls``, ``.usage``).

        Takes the keywords of :meth:`stream`.
        """
        req = self._request(message, session=session, new_session=new_session, schema=schema,
                            tools=tools, model=model, model_settings=model_settings)
        # Only what this thread acts on crosses over: each event handed across
        # threads wakes this one (a turn emits ~10 it would drop).
        bridge = _SyncBridge(self.store.runtime, req, approve,
                             only=(ApprovalRequested, TurnFinished))
        reply = None
        for event in bridge.events():
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
        ``{item}`` is the item itself; any other braces stay as written, so
        JSON in a prompt is safe). ``schema``: a pydantic model each answer
        must validate against. Results keep the input order: a list of
        Replies for a list, a DataFrame (text, data fields, status, error,
        tokens) for pandas input. A failing item is retried up to ``retries``
        times, then kept with its error; nothing is raised. All turns are
        stored in one new session.
        """
        from .batch import run_map

        return run_map(self, items, schema=schema, prompt=prompt, concurrency=concurrency,
                       retries=retries, tools=tools, progress=progress, model=model)


class _SyncBridge:
    """Runs one turn on the runtime's loop thread and hands events to this thread."""

    def __init__(self, runtime: "Runtime", req: "TurnRequest", approve,
                 only: tuple[type, ...] | None = None) -> None:
        self.runtime = runtime
        self.req = req
        self.approve_fn = approve
        self.queue: "queue.Queue[Event]" = queue.Queue()
        self.pending: dict[str, asyncio.Future] = {}
        req.approve = self._engine_approve
        #: the event types handed to the calling thread (None: all)
        self.only = only

    async def _engine_approve(self, event: ApprovalRequested) -> bool:
        future = asyncio.get_running_loop().create_future()
        self.pending[event.call_id] = future
        return await future

    def _answer(self, call_id: str, value: bool) -> None:
        def set_result() -> None:
            fut = self.pending.pop(call_id, None)
            if fut is not None and not fut.done():
                fut.set_result(value)

        self.runtime.loop.call(set_result)

    def _next(self, future) -> Event | None:
        while True:
            try:
                return self.queue.get(timeout=_POLL)
            except queue.Empty:
                if future.done() and self.queue.empty():
                    return None

    async def _run(self) -> Reply:
        self.task = asyncio.current_task()
        put, only = self.queue.put, self.only
        emit = put if only is None else (lambda e: put(e) if isinstance(e, only) else None)
        return await self.runtime.engine.run_turn(self.req, emit)

    def _cancel(self) -> None:
        task = getattr(self, "task", None)
        if task is not None:
            self.runtime.loop.call(task.cancel)

    def events(self) -> Iterator[Event]:
        self.task = None
        future = self.runtime.loop.submit(self._run())
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
