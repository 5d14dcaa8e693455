"""Tools from MCP servers: each server started on first use and kept for the process.

An agent's config names MCP servers (:class:`~agentnb.schemas.McpServerConfig`:
a stdio command, or a streamable-HTTP URL). :class:`McpHub` (one per
:class:`~agentnb.runtime.Runtime`) turns them into :class:`ToolSpec`\\ s named
``<server>_<tool>``, with the server's descriptions and JSON schemas, which
then run like any other tool: the same approval, timeout and ``tool_calls``
rows (whose ``attrs`` name the server).

The protocol is the ``mcp`` SDK's (its stdio and streamable-HTTP transports and
``ClientSession``); ``langchain-mcp-adapters`` turns the server's tools into
LangChain tools. Both are imported on first use (the adapters cost ~0.7 s).

Lifetime: a server's session is opened once, on the hub's own event loop
(the loop thread the runtime hands in), and held open for the life of the
process, so 20 calls are 20 requests to one server process, not 20 processes.
A server that died is restarted once, on its next call; a crash or a hang
during a call is a tool error the model reads, and the turn goes on. A server
that does not start is one :class:`~agentnb.errors.McpServerError` line naming
its command (or URL) and the tail of its stderr. :meth:`McpHub.close` (at
``Store.close`` and at interpreter exit) stops them all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import tempfile
import threading
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import McpServerError
from ..schemas import ENV_REFERENCE
from ..text import one_line, shorten
from .registry import TOOL_NAME_PATTERN, ToolSpec

if TYPE_CHECKING:  # pragma: no cover
    from ..schemas import McpServerConfig

__all__ = ["McpHub", "McpServer", "START_TIMEOUT", "expand_env", "server_environment"]

log = logging.getLogger(__name__)

#: Seconds a server has to start and list its tools.
START_TIMEOUT = 30.0
#: How much of a failed server's stderr an error line quotes.
_STDERR_TAIL = 300
_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


try:
    _GROUPS: tuple[type, ...] = (BaseExceptionGroup,)  # type: ignore[name-defined]
except NameError:  # pragma: no cover - Python 3.10: anyio brings the backport
    from exceptiongroup import BaseExceptionGroup as _Group

    _GROUPS = (_Group,)


class _Died(Exception):
    """The server's connection ended (its process exited, its HTTP session failed)."""


def expand_env(template: str, environ: Mapping[str, str], what: str) -> str:
    """``template`` with every ``${VAR}`` replaced from ``environ``; unset is an error."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in environ:
            raise McpServerError(f"the environment variable {name} is not set ({what} "
                                 "takes its value from it); set it and try again")
        return environ[name]

    return ENV_REFERENCE.sub(value, template)


def server_environment(name: str, config: "McpServerConfig",
                       environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The variables a stdio server gets beyond the SDK's safe defaults (None: just those)."""
    if not config.env:
        return None
    environ = os.environ if environ is None else environ
    out = {}
    for target, source in config.env.items():
        if source not in environ:
            raise McpServerError(f"the environment variable {source} is not set (the server "
                                 "takes it from agentnb's environment); set it and try again")
        out[target] = environ[source]
    return out


def _tool_name(server: str, tool: str) -> str:
    """``<server>_<tool>`` as every provider accepts it (letters, digits, ``_``, ``-``, 64)."""
    name = _BAD_NAME_CHARS.sub("_", f"{server}_{tool}")[:64]
    return name if TOOL_NAME_PATTERN.match(name) else "_" + name[:63]


def _content_text(content: Any) -> str:
    """An MCP result (LangChain content blocks) as the text the model reads."""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            else:
                parts.append(json.dumps(block, ensure_ascii=False, default=str))
        return "\n".join(parts) if parts else "(no content)"
    return str(content)


class _Connection:
    """One open session to a server: its task on the hub loop, its tools, its stderr."""

    def __init__(self, server: "McpServer") -> None:
        self.server = server
        self.tools: dict[str, Any] = {}  # the adapters' tools by the server's own names
        self.described: list[tuple[str, str, Any]] = []  # (tool name, description, schema)
        self.dead = asyncio.Event()
        self._stop = asyncio.Event()
        self._ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task | None = None
        self._stderr = tempfile.TemporaryFile() if server.config.transport == "stdio" else None
        self.failure: str | None = None

    # -- stderr ----------------------------------------------------------------------
    def stderr_tail(self) -> str:
        """The end of what the server wrote to stderr, as one line ('' when nothing)."""
        if self._stderr is None:
            return ""
        try:
            size = os.fstat(self._stderr.fileno()).st_size
            # pread: the server writes through the same file offset, which must not move
            raw = os.pread(self._stderr.fileno(), 4096, max(0, size - 4096))
        except (OSError, ValueError, AttributeError):  # closed; no pread (Windows)
            return ""
        lines = [ln.strip() for ln in raw.decode("utf-8", "replace").splitlines() if ln.strip()]
        text = " | ".join(lines[-4:])
        return text if len(text) <= _STDERR_TAIL else "…" + text[-_STDERR_TAIL:]

    # -- opening and closing ---------------------------------------------------------
    def _transport(self):
        config = self.server.config
        if config.transport == "stdio":
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            params = StdioServerParameters(
                command=str(config.command), args=list(config.args),
                env=server_environment(self.server.name, config))
            return stdio_client(params, errlog=self._stderr)
        headers = {name: expand_env(value, os.environ, f"header {name}")
                   for name, value in config.headers.items()}
        return _http_transport(str(config.url), headers)

    async def open(self, timeout: float) -> None:
        self._task = asyncio.ensure_future(self._run())
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise McpServerError(self.server.failed_to_start(
                f"no answer within {timeout:g} s", self)) from None

    async def _run(self) -> None:
        try:
            import anyio
            from langchain_mcp_adapters.tools import load_mcp_tools
            from mcp import ClientSession

            async with AsyncExitStack() as stack:
                read, write = (await stack.enter_async_context(self._transport()))[:2]
                # Messages pass through a pump so that the end of the server's stream
                # (a process that exited) is noticed at once: the SDK's session would
                # leave a request sent afterwards waiting forever.
                to_session, from_pump = anyio.create_memory_object_stream(0)
                group = await stack.enter_async_context(anyio.create_task_group())
                stack.callback(group.cancel_scope.cancel)
                group.start_soon(self._pump, read, to_session)
                session = await stack.enter_async_context(ClientSession(from_pump, write))
                await self._until_dead(session.initialize())
                tools = await self._until_dead(load_mcp_tools(
                    session, server_name=self.server.name, tool_name_prefix=False,
                    handle_tool_errors=False))
                self.tools = {t.name: t for t in tools}
                self.described = [(t.name, t.description or "", t.args_schema) for t in tools]
                if not self._ready.done():
                    self._ready.set_result(None)
                stop = asyncio.ensure_future(self._stop.wait())
                dead = asyncio.ensure_future(self.dead.wait())
                try:
                    await asyncio.wait({stop, dead}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stop.cancel()
                    dead.cancel()
        except BaseException as exc:  # noqa: BLE001 - reported through _ready or the next call
            if not self._ready.done():
                self._ready.set_exception(McpServerError(self.server.failed_to_start(
                    self._reason(exc), self)))
            elif not self._stop.is_set():
                self.failure = self._reason(exc)
                log.debug("MCP server %s ended", self.server.name, exc_info=True)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            self.dead.set()
            if not self._ready.done():
                self._ready.set_exception(McpServerError(self.server.failed_to_start(
                    "it stopped", self)))

    async def _pump(self, read, to_session) -> None:
        try:
            async with to_session:
                async for item in read:
                    await to_session.send(item)
        except Exception:  # noqa: BLE001 - a broken stream is a dead server
            log.debug("MCP server %s: stream ended", self.server.name, exc_info=True)
        finally:
            self.dead.set()

    async def _until_dead(self, awaitable: Any) -> Any:
        """``awaitable``'s result, or :class:`_Died` as soon as the connection ends."""
        work = asyncio.ensure_future(awaitable)
        dead = asyncio.ensure_future(self.dead.wait())
        try:
            done, _ = await asyncio.wait({work, dead}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            work.cancel()
            raise
        finally:
            dead.cancel()
        if work in done:
            return work.result()
        work.cancel()
        raise _Died()

    def _reason(self, exc: BaseException) -> str:
        while isinstance(exc, _GROUPS) and exc.exceptions:  # type: ignore[attr-defined]
            exc = exc.exceptions[0]
        if isinstance(exc, McpServerError):
            return exc.message
        if isinstance(exc, ImportError):
            return (f"the MCP client is not installed ({one_line(exc, limit=80)}); "
                    "pip install 'agentnb[mcp]'")
        if isinstance(exc, FileNotFoundError):
            return f"command not found ({one_line(exc, limit=120)})"
        if isinstance(exc, (_Died, asyncio.CancelledError)) or _is_closed(exc):
            return "it exited before it answered"
        text = one_line(exc, limit=160)
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - closing anyway
                self._task.cancel()
        if self._stderr is not None:
            self._stderr.close()

    # -- calls -----------------------------------------------------------------------
    async def call(self, tool: str, args: dict[str, Any]) -> str:
        adapter_tool = self.tools.get(tool)
        if adapter_tool is None:
            raise McpServerError(f"MCP server {self.server.name!r} no longer has a tool "
                                 f"{tool!r}")
        try:
            content = await self._until_dead(adapter_tool.ainvoke(args))
        except _Died:
            raise
        except Exception as exc:
            if _is_closed(exc):
                raise _Died() from None
            raise
        return _content_text(content)


@asynccontextmanager
async def _http_transport(url: str, headers: dict[str, str]):
    """The SDK's streamable-HTTP transport over an httpx client of ours (closed with it)."""
    import httpx
    from mcp.client.streamable_http import streamable_http_client

    # the SDK's defaults: a response stream may stay open, so reads wait longer
    timeout = httpx.Timeout(30.0, read=300.0)
    async with httpx.AsyncClient(headers=headers or None, timeout=timeout) as client:
        async with streamable_http_client(url, http_client=client) as streams:
            yield streams


def _is_closed(exc: BaseException) -> bool:
    """True for the SDK's "connection closed" error (a request cut off by a dead server)."""
    try:
        from mcp.shared.exceptions import McpError
        from mcp.types import CONNECTION_CLOSED
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, McpError) and getattr(exc.error, "code", None) == CONNECTION_CLOSED


class McpServer:
    """One configured server of an agent; its connection lives on the hub loop."""

    def __init__(self, hub: "McpHub", name: str, config: "McpServerConfig") -> None:
        self.hub = hub
        self.name = name
        self.config = config
        #: How many times a process (or HTTP session) was started.
        self.starts = 0
        self._conn: _Connection | None = None
        self._lock: asyncio.Lock | None = None
        self._failed: str | None = None
        self._described: list[tuple[str, str, Any]] | None = None

    def __repr__(self) -> str:
        return f"<McpServer {self.name!r} {self.config.describe()!r} starts={self.starts}>"

    def failed_to_start(self, reason: str, conn: _Connection | None = None) -> str:
        """The one line for a server that did not start: what, why, and its stderr's end."""
        what = ("at " if self.config.transport == "http" else "") + self.config.describe()
        line = f"MCP server {self.name!r} did not start ({shorten(what, 160)}): {reason}"
        tail = conn.stderr_tail() if conn is not None else ""
        return line + (f"; stderr: {tail}" if tail else "")

    async def _ensure(self) -> _Connection:
        """The open connection, started now if there is none (restarted once after a death)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._conn is not None and not self._conn.dead.is_set():
                return self._conn
            if self._failed is not None:
                raise McpServerError(self._failed)
            restarting = self._conn is not None
            if restarting:
                await self._conn.close()
                self._conn = None
            conn = _Connection(self)
            self.starts += 1
            try:
                await conn.open(self.hub.start_timeout)
            except McpServerError as exc:
                await conn.close()
                if restarting:  # restarted once: a server that dies and will not come back stays down
                    self._failed = f"{exc.message} (after it stopped; not restarted again)"
                raise
            self._conn = conn
            self._described = conn.described
            return conn

    async def _call(self, tool: str, args: dict[str, Any]) -> str:
        # A server that exited while idle has left an end-of-file in its pipe: a few turns of
        # the loop let the pump see it, so the call goes to a restarted server instead of
        # failing (a fixed number of steps of the loop, not a wait)
        for _ in range(10):
            await asyncio.sleep(0)
        conn = await self._ensure()
        try:
            return await conn.call(tool, args)
        except _Died:
            # it died during this call: the model reads why; the next call restarts it
            from langchain_core.tools import ToolException

            tail = conn.stderr_tail()
            reason = f" ({shorten(conn.failure, 120)})" if conn.failure else ""
            # a ToolException: the model reads the message alone
            raise ToolException(
                f"MCP server {self.name!r} stopped during the call{reason}"
                + (f"; stderr: {tail}" if tail else "")
                + "; it is restarted on the next call") from None
        except McpServerError as exc:  # it died before and did not come back
            from langchain_core.tools import ToolException

            raise ToolException(exc.message) from None

    # -- from any thread -------------------------------------------------------------
    def describe_tools(self) -> list[tuple[str, str, Any]]:
        """(tool name, description, JSON schema) of the server's tools; starts it if needed."""
        if self._described is None:
            self.hub.run(self._ensure(), self.hub.start_timeout + 10)
        assert self._described is not None
        return self._described

    def specs(self) -> list[ToolSpec]:
        """The server's tools as agentnb tools (``<server>_<tool>``)."""
        from langchain_core.tools import StructuredTool

        approve_all = self.config.approve
        wanted = set(self.config.approve_tools)
        specs = []
        for tool, description, schema in self.describe_tools():
            name = _tool_name(self.name, tool)
            lc_tool = StructuredTool(name=name, description=description or f"{tool} ({self.name})",
                                     args_schema=schema, coroutine=self._caller(tool))
            specs.append(ToolSpec(
                name=name, description=lc_tool.description, tool=lc_tool,
                requires_approval=approve_all or tool in wanted or name in wanted,
                source="mcp", call_attrs={"server": self.name}))
        return specs

    def _caller(self, tool: str) -> Any:
        """The coroutine a turn awaits for ``tool``: the call runs on the hub loop."""

        async def call(**kwargs: Any) -> str:
            return await self.hub.arun(self._call(tool, kwargs))

        return call

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


class McpHub:
    """The MCP servers of one runtime, by name and config; their sessions on ``loop``.

    ``loop`` is a :class:`~agentnb.loopthread.LoopThread` (anything with
    ``submit(coro)`` and ``stop()``): the servers' sessions live there, so a
    turn on any event loop or thread can call them.
    """

    def __init__(self, loop: Any, *, start_timeout: float = START_TIMEOUT) -> None:
        self._loop = loop
        self.start_timeout = start_timeout
        self._servers: dict[tuple[str, str], McpServer] = {}
        self._lock = threading.Lock()

    def server(self, name: str, config: "McpServerConfig") -> McpServer:
        """The server of that name and config (not started until its tools are needed)."""
        key = (name, config.model_dump_json())
        with self._lock:
            found = self._servers.get(key)
            if found is None:
                found = self._servers[key] = McpServer(self, name, config)
        return found

    def specs(self, servers: Mapping[str, "McpServerConfig"]) -> list[ToolSpec]:
        """The tools of every server in ``servers`` (each started on first use)."""
        out: list[ToolSpec] = []
        for name, config in servers.items():
            out.extend(self.server(name, config).specs())
        return out

    def servers(self) -> list[McpServer]:
        """The servers this hub knows (started or not)."""
        with self._lock:
            return list(self._servers.values())

    # -- running on the hub loop -----------------------------------------------------
    def run(self, coro: Any, timeout: float) -> Any:
        """Run ``coro`` on the hub loop and wait for it here (never from the hub loop)."""
        import concurrent.futures

        future = self._loop.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:  # not the builtin one before Python 3.11
            future.cancel()
            raise McpServerError(f"an MCP server did not answer within {timeout:g} s") from None

    async def arun(self, coro: Any) -> Any:
        """Await ``coro`` on the hub loop from another loop (cancelling it cancels it there)."""
        return await asyncio.wrap_future(self._loop.submit(coro))

    def close(self) -> None:
        """Stop every server (their processes end) and the hub loop."""
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
        started = [s for s in servers if s._conn is not None]
        if started:

            async def close_all() -> None:
                await asyncio.gather(*(s.close() for s in started), return_exceptions=True)

            try:
                self._loop.submit(close_all()).result(15)
            except Exception:  # noqa: BLE001 - exiting anyway
                log.debug("closing MCP servers failed", exc_info=True)
        self._loop.stop()
