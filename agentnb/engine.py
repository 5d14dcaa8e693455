"""The agent loop: one turn of a conversation.

``run_turn`` builds the context (memory strategy), streams the model, runs
the tool calls it asks for (in parallel, each with a timeout, approval where
needed), loops until a final answer or ``max_iterations``, and persists the
whole turn in one transaction. It emits typed events (:mod:`agentnb.events`)
that front ends render. It never imports IPython or ipywidgets.

Failure rules: a tool exception is a tool error the model sees; a retryable
model error (rate limit, timeout, connection) is retried with backoff a
bounded number of times before any token streamed; any other model error
ends the turn with status ``error`` and a clear message; a cancelled turn
(Stop, Ctrl-C) keeps what it produced, marked ``interrupted``. In every
case the turn is stored and the session stays usable.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.prompt_values import ChatPromptValue

from . import memory as mem
from .events import (
    ApprovalRequested,
    Event,
    MessageCompleted,
    Reply,
    Token,
    TokenUsage,
    ToolCallFinished,
    ToolCallStarted,
    TurnError,
    TurnFinished,
    TurnStarted,
    Usage,
)
from .schemas import AgentRecord, MessageRecord, NewMessage, NewToolCall, ToolCallRecord
from .store.types import utcnow
from .errors import InvalidValueError, error_text

if TYPE_CHECKING:  # pragma: no cover
    from .store import Repository
    from .tools import ToolSpec

log = logging.getLogger(__name__)

Emit = Callable[[Event], Any]
#: Called with an ApprovalRequested event; returns (or resolves to) True to run the tool.
Approver = Callable[[ApprovalRequested], "bool | Awaitable[bool]"]

#: Model errors worth retrying, and how often.
MAX_MODEL_RETRIES = 3
RETRY_BASE_DELAY = 0.5
_RETRYABLE_NAMES = ("RateLimit", "Timeout", "APIConnection", "ServiceUnavailable", "Overloaded",
                    "InternalServerError", "ConnectError", "ReadError")


def _bind_tools(model: Any, req: "TurnRequest") -> Any:
    """``model.bind_tools(...)``, or a one-line error saying what to do when it cannot."""
    try:
        return model.bind_tools([t.tool for t in req.tools])
    except (NotImplementedError, AttributeError) as exc:
        if isinstance(exc, AttributeError) and hasattr(model, "bind_tools"):
            raise
        names = ", ".join(t.name for t in req.tools)
        raise InvalidValueError(
            f"the model {req.model_name!r} ({type(model).__name__}) cannot call tools (it has "
            f"no bind_tools), but agent {req.agent.name!r} has tools ({names}): choose a model "
            "with tool calling for this agent, or remove its tools"
        ) from None


def is_retryable(exc: BaseException) -> bool:
    """True for rate limits, timeouts and connection errors (by type name or HTTP status)."""
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    names = [c.__name__ for c in type(exc).__mro__]
    if any(marker in n for n in names for marker in _RETRYABLE_NAMES):
        return True
    status = getattr(exc, "status_code", None) or getattr(
        getattr(exc, "response", None), "status_code", None
    )
    return status in (408, 409, 429, 500, 502, 503, 504)


@dataclass
class TurnRequest:
    """Everything one turn needs."""

    agent: AgentRecord
    session_id: uuid.UUID
    message: str
    model: BaseChatModel
    model_name: str
    tools: Sequence["ToolSpec"] = ()
    schema: Any = None
    approve: Approver | None = None
    #: For ``map``: ignore the session's earlier turns.
    stateless: bool = False
    session_attrs: dict[str, Any] = field(default_factory=dict)
    count_tokens: mem.TokenCounter = mem.approx_tokens
    #: Tools of the agent's config this process could not resolve (reported, not fatal).
    missing_tools: Sequence[str] = ()


@dataclass
class _TurnState:
    messages: list[NewMessage] = field(default_factory=list)
    calls: list[ToolCallRecord] = field(default_factory=list)
    usage_in: int = 0
    usage_out: int = 0
    text: str = ""
    data: Any = None
    status: str = "complete"
    error: str | None = None
    partial: str = ""
    #: the messages of the model call in progress (to estimate an interrupted call's usage)
    pending: list[BaseMessage] = field(default_factory=list)


async def _emit(emit: Emit, event: Event) -> None:
    result = emit(event)
    if inspect.isawaitable(result):
        await result


@dataclass
class _CachedHistory:
    """The newest stored messages of one session, as this process last saw them."""

    records: list[MessageRecord]
    #: True when ``records`` starts at the session's first message.
    complete: bool
    #: build_context's memo of converted turns.
    memo: dict = field(default_factory=dict)
    #: The most messages a turn of this session needed (grows past history_bound
    #: when turns are long); the cache keeps at least that many.
    bound: int | None = None
    #: The store's token (:mod:`agentnb.store.versions`) at which ``records`` were
    #: known to be the session's newest: while it holds, no query is needed.
    token: tuple | None = None


class Engine:
    """Runs turns against one store's repository."""

    #: Sessions whose history the engine keeps in memory (least recently used dropped).
    CACHED_SESSIONS = 16

    def __init__(self, repo: "Repository") -> None:
        self.repo = repo
        self._histories: OrderedDict[uuid.UUID, _CachedHistory] = OrderedDict()
        self._histories_lock = threading.Lock()

    # -- history cache ------------------------------------------------------------
    def _history(self, session_id: uuid.UUID, bound: int | None) -> tuple[list[MessageRecord], dict]:
        """The messages a strategy needs (``bound`` newest, None: all) and the turn memo.

        Sessions only ever grow by whole turns, so a cached history is still
        the session's when nothing was written to it since (the store's token
        has not moved: no query at all), or else when the newest stored
        message is the cached newest one: a one-row read instead of reading
        (and validating) the whole history every turn. Anything else (another
        process wrote a turn, a strategy needs more than is cached) reloads
        from the store.
        """
        with self._histories_lock:
            cached = self._histories.get(session_id)
        token = self.repo.token(session_id)  # before the reads it vouches for
        if cached is not None and (bound is None and cached.complete
                                   or bound is not None
                                   and (cached.complete or len(cached.records) >= bound)):
            known = cached.records[-1].id if cached.records else None
            if (token is not None and cached.token == token
                    or self.repo.newest_message_id(session_id) == known):
                cached.token = token
                with self._histories_lock:
                    if self._histories.get(session_id) is cached:
                        self._histories.move_to_end(session_id)
                records = cached.records
                return (records if bound is None else records[-bound:]), cached.memo
        records = self.repo.history(session_id, last=bound, with_tool_calls=True)
        entry = _CachedHistory(records, complete=bound is None or len(records) < bound,
                               bound=bound, token=token)
        if cached is not None and bound is not None and cached.bound is not None:
            entry.bound = max(bound, cached.bound)
        with self._histories_lock:
            self._histories[session_id] = entry
            self._histories.move_to_end(session_id)
            while len(self._histories) > self.CACHED_SESSIONS:
                self._histories.popitem(last=False)
        return records, entry.memo

    def _history_now(self, session_id: uuid.UUID,
                     bound: int | None) -> tuple[list[MessageRecord], dict] | None:
        """:meth:`_history` when the cache is vouched for without any read, else None.

        Touches neither the database nor its lock, so the event loop can call it
        without a hand-off to a worker thread.
        """
        with self._histories_lock:
            cached = self._histories.get(session_id)
        if cached is None or cached.token is None or not (
                cached.complete or bound is not None and len(cached.records) >= bound):
            return None
        if self.repo.current_token(session_id) != cached.token:
            return None
        records = cached.records
        return (records if bound is None else records[-bound:]), cached.memo

    async def _history_async(self, session_id: uuid.UUID,
                             bound: int | None) -> tuple[list[MessageRecord], dict]:
        found = self._history_now(session_id, bound)
        if found is not None:
            return found
        return await asyncio.to_thread(self._history, session_id, bound)

    def _remember(self, session_id: uuid.UUID, records: Sequence[MessageRecord],
                  bound: int | None, tokens: Sequence[tuple | None] = (None, None)) -> None:
        """Add a persisted turn to the session's cached history (or drop it if out of step).

        ``tokens``: the session's token before and after the turn's write; the
        cache stays vouched for if it was at the first.
        """
        if not records:
            return
        with self._histories_lock:
            cached = self._histories.get(session_id)
            if cached is None:
                return
            last = cached.records[-1].position if cached.records else -1
            if records[0].position != last + 1:
                del self._histories[session_id]  # out of step: the next turn reloads
                return
            before, after = tokens
            cached.token = after if before is not None and cached.token == before else None
            merged = cached.records + list(records)  # a new list: readers keep theirs
            if bound is not None and cached.bound is not None:
                bound = max(bound, cached.bound)
            if bound is not None and len(merged) > 2 * bound:
                merged = merged[-bound:]
                cached.complete = False
            cached.records = merged

    def _learned_bound(self, session_id: uuid.UUID, bound: int) -> int:
        """``bound``, or more if earlier turns of this session needed more."""
        with self._histories_lock:
            cached = self._histories.get(session_id)
        if cached is not None and cached.bound is not None:
            return max(bound, cached.bound)
        return bound

    def forget(self, session_id: uuid.UUID | None = None) -> None:
        """Drop cached history (of one session, or all)."""
        with self._histories_lock:
            if session_id is None:
                self._histories.clear()
            else:
                self._histories.pop(session_id, None)

    # -- context --------------------------------------------------------------
    async def _context(self, req: TurnRequest, new: HumanMessage) -> list[BaseMessage]:
        cfg = req.agent.config
        if req.stateless:
            return mem.build_context(cfg.memory, cfg.system, [], new, count_tokens=req.count_tokens)
        bound = mem.history_bound(cfg.memory)
        if bound is None:  # full, summary: the whole session
            history, memo = await self._history_async(req.session_id, None)
            summary = None
            if cfg.memory.strategy == "summary":
                stored = req.session_attrs.get("summary")
                due = mem.summary_due(cfg.memory, history, stored)
                if due is not None:
                    stored = await self._summarise(req, due, stored)
                summary = stored.get("text") if stored else None
            return mem.build_context(
                cfg.memory, cfg.system, history, new, summary=summary,
                count_tokens=req.count_tokens, memo=memo,
            )
        # window, tokens: the newest ``bound`` messages, more if that was too few
        bound = self._learned_bound(req.session_id, bound)
        while True:
            history, memo = await self._history_async(req.session_id, bound)
            stats: dict[str, int] = {}
            context = mem.build_context(
                cfg.memory, cfg.system, history, new, count_tokens=req.count_tokens, memo=memo,
                stats=stats,
            )
            if len(history) < bound or not mem.needs_older_history(cfg.memory, stats):
                return context
            bound *= 4

    async def _summarise(self, req: TurnRequest, due, stored: dict | None) -> dict | None:
        older, through = due
        previous = f"Earlier summary:\n{stored['text']}\n\n" if stored else ""
        prompt = [
            HumanMessage(f"{mem.SUMMARY_PROMPT}\n\n{previous}Conversation:\n{mem.transcript(older)}")
        ]
        try:
            result = await req.model.ainvoke(prompt)
        except Exception as exc:  # the turn goes on with the old summary
            log.warning("summary failed: %s", error_text(exc))
            return stored
        text = result.content if isinstance(result.content, str) else str(result.content)
        new = {"text": text, "through_position": through, "updated_at": utcnow().isoformat()}
        attrs = {**req.session_attrs, "summary": new}
        await asyncio.to_thread(self.repo.update_session, req.session_id, attrs=attrs)
        req.session_attrs = attrs
        return new

    # -- one turn -------------------------------------------------------------
    async def run_turn(self, req: TurnRequest, emit: Emit) -> Reply:
        """Run one turn, emitting events; always persists and returns the Reply."""
        state = _TurnState()
        started = utcnow()
        state.messages.append(NewMessage(role="user", content=req.message, created_at=started))
        cancelled = False
        try:
            await _emit(emit, TurnStarted(session_id=req.session_id, agent=req.agent.name,
                                          model=req.model_name,
                                          missing_tools=list(req.missing_tools)))
            context = await self._context(req, HumanMessage(req.message))
            if req.schema is not None and not req.tools:
                await self._structured(req, state, context, emit)
            else:
                await self._loop(req, state, context, emit)
                if req.schema is not None and state.status == "complete":
                    await self._structured(req, state, self._replay(context, state), emit)
        except asyncio.CancelledError:
            cancelled = True
            state.status = "interrupted"
            if state.partial:
                # A stream stopped early never gets its usage report: estimate it with
                # the agent's token counter, and say so, so usage stays near the truth.
                tokens_in, tokens_out = _estimate_usage(req, state)
                state.usage_in += tokens_in or 0
                state.usage_out += tokens_out or 0
                state.messages.append(NewMessage(
                    role="assistant", content=state.partial, model=req.model_name,
                    status="interrupted", input_tokens=tokens_in, output_tokens=tokens_out,
                    attrs={"usage": "estimated"} if tokens_out is not None else {},
                ))
            self._close_open_calls(state, "interrupted")
        except BaseException as exc:  # model failure: keep the turn, mark it
            # A BaseException too (a model raising KeyboardInterrupt/SystemExit off
            # the main thread): let out, it would end the loop thread and hang chat().
            if isinstance(exc, GeneratorExit) or (
                    isinstance(exc, KeyboardInterrupt)
                    and threading.current_thread() is threading.main_thread()):
                raise
            state.status = "error"
            state.error = error_text(exc)
            state.messages.append(NewMessage(
                role="assistant", content=state.partial, model=req.model_name, status="error",
                attrs={"error": state.error},
            ))
            self._close_open_calls(state, "error")
            await _emit(emit, TurnError(message=state.error, retryable=is_retryable(exc)))
        reply = await self._persist(req, state)
        await _emit(emit, TurnFinished(reply=reply))
        if cancelled:
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()  # the cancel was handled: the turn ended, interrupted
        return reply

    def _replay(self, context: list[BaseMessage], state: _TurnState) -> list[BaseMessage]:
        """Context plus the messages this turn produced so far (for a final structured call)."""
        records = [m for m in state.messages if m.role != "user"]
        extra: list[BaseMessage] = []
        for m in records:
            if m.role == "assistant":
                calls = [{"id": mem.call_id(c.id), "name": c.tool_name, "args": c.input_args,
                          "type": "tool_call"} for c in m.tool_calls]
                extra.append(AIMessage(m.content, tool_calls=calls))
            elif m.role == "tool":
                extra.append(ToolMessage(m.content, tool_call_id=mem.call_id(
                    m.attrs["tool_call_record_id"]), name=m.attrs.get("tool_name")))
        return context + extra

    async def _loop(self, req: TurnRequest, state: _TurnState, context: list[BaseMessage],
                    emit: Emit) -> None:
        cfg = req.agent.config
        model = req.model
        if req.tools:
            model = _bind_tools(model, req)
        by_name = {t.name: t for t in req.tools}
        messages = list(context)
        for _iteration in range(cfg.max_iterations):
            ai = await self._call_model(model, messages, req, state, emit)
            tool_calls = list(ai.tool_calls or [])
            new_calls = [
                NewToolCall(id=uuid.uuid4(), tool_name=c["name"], input_args=c.get("args") or {},
                            status="pending", created_at=utcnow(),
                            attrs=dict(by_name[c["name"]].call_attrs) if c["name"] in by_name
                            else {})
                for c in tool_calls
            ]
            state.messages.append(NewMessage(
                role="assistant", content=_text(ai), model=req.model_name,
                input_tokens=_usage(ai)[0], output_tokens=_usage(ai)[1],
                tool_calls=new_calls, attrs=_ai_attrs(ai),
            ))
            state.partial = ""
            await _emit(emit, MessageCompleted(content=_text(ai), tool_call_count=len(new_calls)))
            messages.append(AIMessage(_text(ai), tool_calls=[
                {"id": mem.call_id(nc.id), "name": nc.tool_name, "args": nc.input_args,
                 "type": "tool_call"} for nc in new_calls]))
            if not new_calls:
                state.text = _text(ai)
                return
            results = await self._run_tools(req, new_calls, by_name, emit)
            for nc, outcome_text in zip(new_calls, results):
                state.messages.append(NewMessage(
                    role="tool", content=outcome_text,
                    attrs={"tool_call_record_id": str(nc.id), "tool_name": nc.tool_name},
                ))
                messages.append(ToolMessage(outcome_text, tool_call_id=mem.call_id(nc.id),
                                            name=nc.tool_name))
        state.status = "error"
        state.error = (f"stopped after max_iterations={cfg.max_iterations} model calls "
                       "without a final answer")
        state.text = state.messages[-1].content if state.messages else ""
        state.messages.append(NewMessage(role="assistant", content="", model=req.model_name,
                                         status="error", attrs={"error": state.error}))
        await _emit(emit, TurnError(message=state.error))

    async def _call_model(self, model, messages, req: TurnRequest, state: _TurnState,
                          emit: Emit) -> AIMessage:
        attempt = 0
        while True:
            full: AIMessageChunk | None = None
            streamed = False
            state.pending = messages
            try:
                # A prompt value, not a list: langchain-core would otherwise convert
                # (check) every message of the context again on every call.
                async for chunk in model.astream(ChatPromptValue.model_construct(
                        messages=messages)):
                    full = chunk if full is None else full + chunk
                    text = _text(chunk)
                    if text:
                        streamed = True
                        state.partial += text
                        await _emit(emit, Token(text=text))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if streamed or attempt >= MAX_MODEL_RETRIES or not is_retryable(exc):
                    raise
                attempt += 1
                delay = RETRY_BASE_DELAY * (2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
                await _emit(emit, TurnError(
                    message=f"{error_text(exc)}; retrying in {delay:.1f} s "
                            f"({attempt}/{MAX_MODEL_RETRIES})", retryable=True))
                await asyncio.sleep(delay)
                continue
            ai = _to_message(full)
            tin, tout = _usage(ai)
            state.usage_in += tin or 0
            state.usage_out += tout or 0
            if tin is not None or tout is not None:
                await _emit(emit, Usage(input_tokens=tin or 0, output_tokens=tout or 0,
                                        model=req.model_name))
            return ai

    async def _run_tools(self, req: TurnRequest, calls: list[NewToolCall],
                         by_name: dict[str, "ToolSpec"], emit: Emit) -> list[str]:
        from .tools import run_tool_call

        cfg = req.agent.config
        results: dict[int, str] = {}

        async def one(index: int, call: NewToolCall) -> None:
            spec = by_name.get(call.tool_name)
            key = mem.call_id(call.id)
            await _emit(emit, ToolCallStarted(call_id=key, tool_name=call.tool_name,
                                              input_args=call.input_args))
            call.status = "running"
            if spec is None:
                known = ", ".join(sorted(by_name)) or "none"
                self._finish(call, "error", None, f"unknown tool {call.tool_name!r} (tools: {known})", 0.0)
            elif spec.requires_approval and not cfg.auto_approve and not await self._approved(req, call, key, emit):
                self._finish(call, "denied", None, "the user denied this tool call", 0.0)
            else:
                outcome = await run_tool_call(spec, dict(call.input_args), timeout=cfg.tool_timeout)
                self._finish(call, outcome.status, outcome.output, outcome.error_message,
                             outcome.execution_time_ms)
            results[index] = _result_text(call)
            await _emit(emit, ToolCallFinished(
                call_id=key, tool_name=call.tool_name, input_args=call.input_args,
                status=call.status, output=call.output, error_message=call.error_message,
                execution_time_ms=call.execution_time_ms))

        await asyncio.gather(*(one(i, c) for i, c in enumerate(calls)))
        return [results[i] for i in range(len(calls))]

    async def _approved(self, req: TurnRequest, call: NewToolCall, key: str, emit: Emit) -> bool:
        event = ApprovalRequested(call_id=key, tool_name=call.tool_name, input_args=call.input_args)
        await _emit(emit, event)
        if req.approve is None:
            return False
        answer = req.approve(event)
        if inspect.isawaitable(answer):
            answer = await answer
        return bool(answer)

    @staticmethod
    def _finish(call: NewToolCall, status: str, output: str | None, error: str | None,
                elapsed_ms: float | None) -> None:
        call.status = status  # type: ignore[assignment]
        call.output = output
        call.error_message = error
        call.execution_time_ms = elapsed_ms

    @staticmethod
    def _close_open_calls(state: _TurnState, why: str) -> None:
        for m in state.messages:
            for c in m.tool_calls:
                if c.status in ("pending", "running"):
                    c.status = "error"
                    c.error_message = f"{why} before the tool call finished"

    async def _structured(self, req: TurnRequest, state: _TurnState,
                          context: list[BaseMessage], emit: Emit) -> None:
        runnable = req.model.with_structured_output(req.schema, include_raw=True)
        attempt = 0
        while True:
            try:
                out = await runnable.ainvoke(context)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempt >= MAX_MODEL_RETRIES or not is_retryable(exc):
                    raise
                attempt += 1
                await asyncio.sleep(RETRY_BASE_DELAY * (2 ** (attempt - 1)))
        raw, parsed, err = out.get("raw"), out.get("parsed"), out.get("parsing_error")
        tin, tout = _usage(raw) if isinstance(raw, AIMessage) else (None, None)
        state.usage_in += tin or 0
        state.usage_out += tout or 0
        if tin is not None or tout is not None:
            await _emit(emit, Usage(input_tokens=tin or 0, output_tokens=tout or 0,
                                    model=req.model_name))
        if parsed is None:
            raise ValueError(f"the model's answer did not match {_schema_name(req.schema)}: "
                             f"{err or 'no structured output'}")
        state.data = parsed
        text = _json_of(parsed)
        state.text = text
        state.messages.append(NewMessage(
            role="assistant", content=text, model=req.model_name, input_tokens=tin,
            output_tokens=tout, attrs={"schema": _schema_name(req.schema)},
        ))
        await _emit(emit, Token(text=text))
        await _emit(emit, MessageCompleted(content=text))

    async def _persist(self, req: TurnRequest, state: _TurnState) -> Reply:
        messages = state.messages
        tokens: list = [None, None]
        write = asyncio.to_thread(self.repo.append_turn, req.session_id, messages, tokens)
        try:
            records = await asyncio.shield(write)
        except asyncio.CancelledError:
            # A second cancel while saving: finish the write before giving up.
            records = await write
        self._remember(req.session_id, records, mem.history_bound(req.agent.config.memory),
                       tokens)
        calls = [c for m in records for c in m.tool_calls]
        if state.status != "complete" and not state.text:
            state.text = state.partial or next(
                (m.content for m in reversed(records) if m.role == "assistant" and m.content), "")
        return Reply(
            text=state.text, data=state.data, status=state.status, error=state.error,
            session_id=req.session_id, agent=req.agent.name, model=req.model_name,
            usage=TokenUsage(input_tokens=state.usage_in, output_tokens=state.usage_out),
            tool_calls=calls, messages=records,
        )


# -- helpers ------------------------------------------------------------------
def _estimate_usage(req: TurnRequest, state: _TurnState) -> tuple[int | None, int | None]:
    """(input, output) tokens of the model call that was interrupted, by the token counter."""
    try:
        tokens_in = int(req.count_tokens(list(state.pending))) if state.pending else None
        tokens_out = int(req.count_tokens([AIMessage(state.partial)]))
    except Exception:  # an estimate is not worth failing the turn's persistence for
        log.debug("could not estimate the usage of an interrupted call", exc_info=True)
        return None, None
    return tokens_in, tokens_out


def _text(message: Any) -> str:
    if message is None:
        return ""
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(block.get("text", ""))
    return "".join(parts)


def _usage(message: Any) -> tuple[int | None, int | None]:
    meta = getattr(message, "usage_metadata", None)
    if not meta:
        return None, None
    return meta.get("input_tokens"), meta.get("output_tokens")


def _ai_attrs(message: AIMessage) -> dict[str, Any]:
    meta = getattr(message, "response_metadata", None) or {}
    keep = {k: meta[k] for k in ("finish_reason", "stop_reason", "model_name") if k in meta}
    return {k: v for k, v in keep.items() if isinstance(v, (str, int, float, bool))}


def _to_message(chunk: AIMessageChunk | None) -> AIMessage:
    if chunk is None:
        return AIMessage("")
    return AIMessage(
        content=chunk.content,
        tool_calls=chunk.tool_calls,
        usage_metadata=chunk.usage_metadata,
        response_metadata=chunk.response_metadata,
        id=chunk.id,
    )


def _result_text(call: NewToolCall) -> str:
    if call.status == "success":
        return call.output if call.output is not None else ""
    if call.status == "denied":
        return "Tool call denied by the user."
    if call.status == "timeout":
        return f"Error: the tool timed out. {call.error_message or ''}".strip()
    return f"Error: {call.error_message or call.status}"


def _schema_name(schema: Any) -> str:
    if isinstance(schema, dict):
        return str(schema.get("title") or schema.get("name") or "schema")
    return getattr(schema, "__name__", str(schema))


def _json_of(value: Any) -> str:
    if hasattr(value, "model_dump_json"):
        return value.model_dump_json()
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except TypeError:
        return str(value)
