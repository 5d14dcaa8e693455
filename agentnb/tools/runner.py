"""Running one tool call safely: validate, run, time out, turn the result into text.

:func:`run_tool_call` never raises for anything a tool does: a bad argument, an
exception (any ``BaseException``: ``SystemExit``, a tool's own
``KeyboardInterrupt``) or a timeout becomes a :class:`ToolOutcome` the model can
read. Only cancellation (``asyncio.CancelledError``) and a ``KeyboardInterrupt``
on the main thread (the user's Ctrl-C) propagate, so the user can still stop a turn.

Sync tools run in a daemon thread of their own and async tools on the event
loop, so several calls run at once under ``asyncio.gather``.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import json
import os
import queue
import threading
import time
from typing import Any, Callable, Literal

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, ConfigDict, ValidationError

from ..text import shorten
from .registry import ToolSpec

__all__ = ["DEFAULT_MAX_OUTPUT_CHARS", "ToolOutcome", "run_tool_call", "format_result", "truncate"]

DEFAULT_MAX_OUTPUT_CHARS = 8000

OutcomeStatus = Literal["success", "error", "timeout"]


class ToolOutcome(BaseModel):
    """What came of one tool call: the text the model sees, or why there is none."""

    model_config = ConfigDict(frozen=True)

    status: OutcomeStatus
    output: str | None = None
    error_message: str | None = None
    execution_time_ms: float = 0.0


def truncate(text: str, limit: int = DEFAULT_MAX_OUTPUT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, with a note saying how much was cut."""
    if limit <= 0 or len(text) <= limit:
        return text
    return f"{text[:limit]}\n[truncated {len(text) - limit} chars]"


def format_result(value: Any, limit: int = DEFAULT_MAX_OUTPUT_CHARS) -> str:
    """A tool's return value as text for the model.

    ``str`` as is; pydantic models, dataclasses, dicts, lists and tuples as
    JSON; pandas objects through ``to_string``; anything else through ``str``.
    Cut to ``limit`` characters with a ``[truncated N chars]`` note.
    """
    return truncate(_to_text(value), limit)


def _to_text(value: Any) -> str:
    if value is None:
        return "(no return value)"
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _json(dataclasses.asdict(value))
    if isinstance(value, (dict, list, tuple)):
        return _json(value)
    content = getattr(value, "content", None)  # a langchain message (ToolMessage, ...)
    if content is not None and type(value).__module__.startswith("langchain_core"):
        return content if isinstance(content, str) else _json(content)
    to_string = getattr(value, "to_string", None)
    if callable(to_string) and type(value).__module__.startswith("pandas"):
        try:
            return to_string(max_rows=60, max_cols=30)
        except TypeError:
            return to_string()
    return str(value)


def _json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, BaseModel):
            return obj.model_dump(mode="json")
        if isinstance(obj, (set, frozenset)):
            return sorted(obj, key=repr)
        return str(obj)

    try:
        return json.dumps(value, ensure_ascii=False, default=default)
    except (TypeError, ValueError):  # circular references, odd keys
        return repr(value)


def _validation_message(spec: ToolSpec, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(arguments)"
        if err.get("type") == "missing":
            problems.append(f"missing required argument {loc!r}")
        elif err.get("type") == "extra_forbidden":
            problems.append(f"unexpected argument {loc!r}")
        else:
            got = err.get("input")
            shown = shorten(repr(got), 60, ellipsis="...")
            problems.append(f"{loc!r}: {err.get('msg')} (got {shown})")
    return f"invalid arguments for tool {spec.name!r}: " + "; ".join(problems)


def _check_args(spec: ToolSpec, args: Any) -> str | None:
    """A message for the model when ``args`` do not fit the tool's schema, else None."""
    if not isinstance(args, dict):
        return (f"invalid arguments for tool {spec.name!r}: expected a JSON object, "
                f"got {type(args).__name__}")
    schema = spec.tool.tool_call_schema
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return None  # a JSON-schema dict: the tool validates for itself
    fields = schema.model_fields
    if schema.model_config.get("extra") != "allow":
        unexpected = [k for k in args if k not in fields]
        if unexpected:
            takes = ", ".join(fields) or "no arguments"
            return (f"invalid arguments for tool {spec.name!r}: unexpected argument "
                    f"{unexpected[0]!r} (it takes: {takes})")
    try:
        schema.model_validate(args)
    except ValidationError as exc:
        return _validation_message(spec, exc)
    return None


class _DaemonWorkers:
    """Daemon threads for synchronous tool calls, reused from one call to the next.

    Starting a thread costs ~0.3-1 ms, a tool call is often less. A call gets
    an idle worker, or a new one when none is idle (so a call never waits
    behind another, and one that hangs past its timeout keeps its own thread
    without holding up the next); workers idle for ``IDLE`` seconds end.
    """

    IDLE = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = 0  # idle workers not yet promised a job

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1  # promised: that worker takes this job
        self._jobs.put(job)
        if start:
            threading.Thread(target=self._work, name="agentnb-tool", daemon=True).start()

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self.IDLE)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # nobody was promised this worker: end it
                        self._idle -= 1
                        return
                continue  # a job is on its way to this worker
            job()
            with self._lock:
                self._idle += 1


_WORKERS = _DaemonWorkers()


def _new_workers_after_fork() -> None:
    global _WORKERS
    _WORKERS = _DaemonWorkers()  # the parent's threads are not in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_workers_after_fork)


def _in_daemon_thread(tool: BaseTool, args: dict[str, Any]) -> asyncio.Future:
    """Run ``tool.invoke(args)`` in a daemon thread; a future for its result.

    A daemon thread rather than the loop's default executor: a Python thread
    cannot be killed, so a timed-out call keeps running until it returns. In a
    pool it would hold a worker (and block interpreter exit or
    ``asyncio.run``'s executor shutdown); a daemon thread holds nothing.
    The threads are reused between calls (:class:`_DaemonWorkers`).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()
    context = contextvars.copy_context()

    def settle(setter: str, value: Any) -> None:
        if not future.done():  # cancelled or timed out: the result is ignored
            getattr(future, setter)(value)

    def target() -> None:
        try:
            result = context.run(tool.invoke, args)
        except BaseException as exc:  # handed to the awaiting coroutine
            # Never a user's Ctrl-C here (signals go to the main thread), and an
            # asyncio future must not carry a KeyboardInterrupt/SystemExit: the
            # loop would re-raise it and die. Wrapped, it is the tool's error.
            outcome = ("set_exception", exc if isinstance(exc, Exception) else _Raised(exc))
        else:
            outcome = ("set_result", result)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    _WORKERS.submit(target)
    return future


class _Raised(Exception):
    """Carries what the tool raised past ``wait_for`` (so a tool's own TimeoutError is not ours)."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(exc)
        self.exc = exc


def _users_interrupt(exc: BaseException) -> bool:
    """True when ``exc`` stops the turn rather than being the tool's own failure.

    Cancellation always stops it. A KeyboardInterrupt is the user's Ctrl-C only
    on the main thread (where signals land, as when a notebook awaits the
    turn); on the store's loop thread or a sync tool's thread it can only be
    the tool's own ``raise KeyboardInterrupt``. Anything else a tool raises
    (SystemExit, GeneratorExit, a BaseException subclass) is the tool's error:
    escaping, it would end the loop thread and leave ``chat()`` waiting forever.
    """
    if isinstance(exc, asyncio.CancelledError):
        return True
    return isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread()


async def _guarded(awaitable: Any) -> Any:
    try:
        return await awaitable
    except _Raised:  # a sync tool's BaseException, wrapped in its thread
        raise
    except BaseException as exc:
        if _users_interrupt(exc):
            raise
        raise _Raised(exc) from None


def _contain(exc: BaseException) -> BaseException:
    """What an async tool's coroutine raises instead of ``exc`` (see :func:`_contained`)."""
    if isinstance(exc, _Raised) or _users_interrupt(exc):
        return exc
    return _Raised(exc)


def _contained(tool: BaseTool) -> BaseTool:
    """A copy of an async tool whose own coroutine catches what it raises.

    langchain runs a tool's coroutine in a task of its own, and asyncio lets a
    KeyboardInterrupt or SystemExit out of a task straight through the event
    loop, before any ``except`` of ours runs: the loop thread would die. So
    the catch goes inside the coroutine.
    """
    if isinstance(tool, StructuredTool) and tool.coroutine is not None:
        original = tool.coroutine

        @functools.wraps(original)  # langchain reads its signature (callbacks, config)
        async def coroutine(*args: Any, **kwargs: Any) -> Any:
            try:
                return await original(*args, **kwargs)
            except BaseException as exc:
                raise _contain(exc) from None

        return tool.model_copy(update={"coroutine": coroutine})
    bound = tool._arun

    @functools.wraps(bound)
    async def arun(*args: Any, **kwargs: Any) -> Any:
        try:
            return await bound(*args, **kwargs)
        except BaseException as exc:
            raise _contain(exc) from None

    copy = tool.model_copy()
    object.__setattr__(copy, "_arun", arun)  # an instance attribute shadows the method
    return copy


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ToolException):  # written for the model: the message alone
        return str(exc) or type(exc).__name__
    message = str(exc).strip()  # the whole message: the model reads it, tracebacks included
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


async def run_tool_call(
    spec: ToolSpec,
    args: dict[str, Any],
    *,
    timeout: float,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
) -> ToolOutcome:
    """Run one call of ``spec`` with ``args``; never raises for what the tool does.

    * arguments that do not fit the schema -> ``error`` with a message naming them;
    * an exception -> ``error`` with ``"ExceptionType: message"`` (a
      ``ToolException``'s message alone: the tool wrote it for the model);
    * no result after ``timeout`` seconds -> ``timeout``;
    * otherwise ``success`` with the result as text (see :func:`format_result`).

    ``asyncio.CancelledError`` and, on the main thread, ``KeyboardInterrupt`` propagate.
    """
    started = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000.0

    problem = _check_args(spec, args)
    if problem is not None:
        return ToolOutcome(status="error", error_message=problem, execution_time_ms=elapsed())
    tool = spec.tool
    if spec.is_async:
        pending: Any = _contained(tool).ainvoke(args)
    else:
        pending = _in_daemon_thread(tool, args)
    try:
        # On timeout wait_for cancels the coroutine (async tools) or stops waiting
        # for the thread's future (sync tools). A Python thread cannot be killed:
        # the timed-out call is abandoned, runs on to its end, and its result is ignored.
        result = await asyncio.wait_for(_guarded(pending), timeout=timeout)
    except _Raised as raised:
        message = truncate(_error_text(raised.exc), max_output_chars)
        return ToolOutcome(status="error", error_message=message, execution_time_ms=elapsed())
    except asyncio.TimeoutError:
        return ToolOutcome(
            status="timeout",
            error_message=f"no result after {timeout:g} s; the call was abandoned",
            execution_time_ms=elapsed(),
        )
    try:
        text = format_result(result, max_output_chars)
    except Exception as exc:  # a __str__ that raises
        return ToolOutcome(status="error",
                           error_message=f"the result cannot be shown as text ({_error_text(exc)})",
                           execution_time_ms=elapsed())
    return ToolOutcome(status="success", output=text, execution_time_ms=elapsed())
