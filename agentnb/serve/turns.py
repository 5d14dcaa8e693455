"""Turns over HTTP: which agent, which session, and the turn's events, for both APIs.

The session rule of an HTTP turn (the one place it lives):

* ``X-Agentnb-Session: ID`` (or ``"session"`` in ``/api``): continue that
  stored session of the agent (404 if it is not one of the agent's);
* else, for ``/v1``, the conversation the client sent before its new message,
  when it equals a stored session of the agent (same user messages and final
  answers, in order): continue that session;
* else a new session.

Turns of one session run one at a time (a lock per session in this process),
so two requests that continue the same conversation never interleave their
messages.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterable, Sequence

from starlette.concurrency import run_in_threadpool

from ..agent import Agent
from .errors import ApiError

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Store
    from ..events import Event, Reply
    from ..schemas import AgentRecord, MessageRecord, SessionRecord
    from .auth import Caller

SESSION_HEADER = "X-Agentnb-Session"

#: (role, text) of a conversation: user messages and the agent's final answers
Exchange = tuple[str, str]


def exchanges(messages: Sequence["MessageRecord"]) -> list[Exchange]:
    """A stored session as a client sees it: each user message, then the turn's last answer."""
    out: list[Exchange] = []
    answer: str | None = None
    for m in messages:
        if m.role == "user":
            if answer is not None:
                out.append(("assistant", answer))
            answer = None
            out.append(("user", m.content))
        elif m.role == "assistant" and out:
            answer = m.content  # the last assistant message of the turn is its answer
    if answer is not None:
        out.append(("assistant", answer))
    return out


class Turns:
    """Runs HTTP turns on one store (the agents it serves, sessions, locks)."""

    def __init__(self, store: "Store", agents: Iterable[str] | None = None) -> None:
        self.store = store
        #: None: every agent of the store
        self.agents = set(agents) if agents is not None else None
        self._locks: "weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock]" = \
            weakref.WeakValueDictionary()

    # -- agents ----------------------------------------------------------------------
    def serves(self, name: str) -> bool:
        return self.agents is None or name in self.agents

    def agent_record(self, name: str, caller: "Caller") -> "AgentRecord":
        """The record of a served agent this caller may use (404 / 403)."""
        if not self.serves(name):
            raise ApiError(404, f"agent {name!r} is not served here (see GET /api/agents)")
        record = self.store.get_agent(name)
        caller.check_agent(record)
        return record

    def visible_agents(self, caller: "Caller") -> list["AgentRecord"]:
        """The served agents this caller may use, by name."""
        if caller.admin:
            records = self.store.agents()
        elif caller.key.agent_id is None:
            records = []
        else:
            records = [self.store.get_agent(caller.key.agent_id)]
        return [r for r in records if self.serves(r.name)]

    def handle(self, record: "AgentRecord", caller: "Caller", user: str | None = None) -> Agent:
        """A fresh handle for one request (no state shared between requests).

        Its sessions record ``user`` (the request's OpenAI ``user`` field), else the
        name of the API key: who did what in a team store.
        """
        return Agent(self.store, record, user=user or caller.key.name,
                     session_attrs={"source": "http", "key_id": str(caller.key.id)})

    def prepare(self, name: str, caller: "Caller", session_id: str | None,
                earlier: Sequence[Exchange] = (), *, user: str | None = None
                ) -> tuple["AgentRecord", Agent, "SessionRecord"]:
        """Agent, handle and session of one turn, in one call (one hop to a thread)."""
        record = self.agent_record(name, caller)
        handle = self.handle(record, caller, user=user)
        return record, handle, self.session(handle, session_id, earlier)

    # -- sessions --------------------------------------------------------------------
    def session(self, handle: Agent, session_id: str | None,
                earlier: Sequence[Exchange] = ()) -> "SessionRecord":
        """The session of this turn, by the rule in the module docstring (sync: a thread)."""
        if session_id is not None:
            session_id = session_id.strip()
            if not session_id:
                raise ApiError(400, f"{SESSION_HEADER} is empty")
            found = self.store.session(session_id)  # NotFoundError: 404
            if found.agent_id != handle.id:
                raise ApiError(404, f"no session {session_id[:40]!r} of agent {handle.name!r}")
            handle.session_id = found.id
            return found
        if earlier:
            match = self.matching_session(handle, earlier)
            if match is not None:
                handle.session_id = match
                return self.store.session(match)
        return handle.new_session()

    def matching_session(self, handle: Agent, earlier: Sequence[Exchange]) -> uuid.UUID | None:
        """The newest stored session of the agent whose conversation is ``earlier``."""
        if earlier[0][0] != "user":
            return None
        first = earlier[0][1]
        turns = sum(1 for role, _ in earlier if role == "user")
        for summary in self.store.sessions(handle.name):
            if summary.turns != turns or summary.first_message != first:
                continue
            if exchanges(self.store.history(summary.session.id)) == list(earlier):
                return summary.session.id
        return None

    # -- turns -----------------------------------------------------------------------
    async def start(self, handle: Agent, session: "SessionRecord", message: str, *,
                    model_settings: dict[str, Any] | None = None) -> AsyncIterator["Event"]:
        """The turn's events; the first is already taken, so a bad setting raises here."""
        lock = self._locks.get(session.id)
        if lock is None:
            lock = self._locks[session.id] = asyncio.Lock()
        await lock.acquire()
        try:
            events = handle.astream(message, session=session.id,
                                    model_settings=model_settings or None)
            first = await events.__anext__()
        except BaseException:
            lock.release()
            raise
        return self._rest(first, events, lock)

    @staticmethod
    async def _rest(first: "Event", events: AsyncIterator["Event"],
                    lock: asyncio.Lock) -> AsyncIterator["Event"]:
        try:
            yield first
            async for event in events:
                yield event
        finally:
            try:
                await events.aclose()  # a disconnected client: the turn ends, interrupted
            finally:
                lock.release()


async def batches(events: AsyncIterator["Event"]) -> AsyncIterator[list["Event"]]:
    """The events in batches: each batch is what arrived while the last one was being sent.

    A model that streams faster than the client reads (the offline model, a local one)
    would cost one server-sent event per token; batched, the tokens that queued up go out
    as one. A slow model's tokens still go out one by one, as they come.
    """
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump() -> None:
        try:
            async for event in events:
                queue.put_nowait(event)
        finally:
            queue.put_nowait(done)

    task = asyncio.ensure_future(pump())
    try:
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            finished = batch[-1] is done
            if finished:
                batch.pop()
            if batch:
                yield batch
            if finished:
                break
        await task  # the turn's own errors, if any
    finally:
        if not task.done():  # the client went away: the turn ends, interrupted
            task.cancel()
            try:
                await task
            except BaseException:
                pass


async def in_thread(fn, *args: Any, **kwargs: Any) -> Any:
    """Run a store call off the event loop (the store's calls are synchronous)."""
    return await run_in_threadpool(fn, *args, **kwargs)


__all__ = ["Exchange", "SESSION_HEADER", "Turns", "batches", "exchanges", "in_thread"]


async def final_reply(events: AsyncIterator["Event"]) -> "Reply":
    """Drain a turn's events (a non-streaming request) and return its final reply."""
    from ..events import TurnFinished

    reply = None
    async for event in events:
        if isinstance(event, TurnFinished):
            reply = event.reply
    assert reply is not None, "a turn's events end with TurnFinished"
    return reply
