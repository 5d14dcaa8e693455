"""``agentnb mcp serve``: the store's agents and their history as an MCP server.

Imported only by ``agentnb mcp serve`` (it imports the mcp SDK at once).
A front end like the CLI and the notebook: it calls the Python API
(:class:`~agentnb.api.Store`, :class:`~agentnb.agent.Agent`) and nothing
below it. Built with the ``mcp`` SDK's FastMCP; stdio by default, streamable
HTTP with ``--http`` (every request then needs ``Authorization: Bearer KEY``,
an API key of the store: an agent key reaches its own agent, an admin key
everything).

Tools:

* ``chat(agent, message, session?)``: one stored turn; the answer, the tool
  calls, the session id (pass it back as ``session`` to continue; without it
  each call starts a new session, so a coding agent never writes into a
  notebook's conversation by accident). Tools that need approval are denied
  unless the agent auto-approves: nobody is there to ask.
* ``list_agents()``, ``list_sessions(agent?, limit?)``, ``get_session(id)``;
* ``search_history(query, agent?, limit?)``: messages containing a text,
  newest first;
* ``query_history(sql)``: read-only SQL over the store's tables, under the
  guard of the model's ``query_store`` tool (:meth:`Store.guarded_sql_rows`).
  Not offered with ``--agents`` (SQL reads every agent's rows), and over HTTP
  only to admin keys.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, Sequence, TextIO

from mcp.server.fastmcp import Context, FastMCP
from pydantic import Field

from .errors import UserError, error_text
from .text import shorten

if TYPE_CHECKING:  # pragma: no cover
    from .api import Store
    from .commands.mcp import ServePlan

__all__ = ["build_server", "serve"]

#: The most rows ``query_history`` returns.
MAX_SQL_ROWS = 200
_INSTRUCTIONS = (
    "agentnb: AI agents that live in Jupyter notebooks, and the stored history of every "
    "conversation and tool call. chat sends a message to an agent; the other tools read "
    "what the agents did.")


class _Access:
    """Which agents a caller may reach: the --agents list, narrowed by an HTTP key's scope."""

    def __init__(self, store: "Store", agents: Sequence[str], *, http: bool) -> None:
        self.store = store
        self.agents = tuple(agents)
        self.http = http

    def _key(self, ctx: Any) -> Any:
        """The verified key of this HTTP request (None over stdio)."""
        if not self.http:
            return None
        request = getattr(getattr(ctx, "request_context", None), "request", None)
        user = request.scope.get("user") if request is not None else None
        token = getattr(user, "access_token", None)
        if token is None:
            from mcp.server.auth.middleware.auth_context import get_access_token

            token = get_access_token()
        if token is None:  # the SDK's middleware refuses such requests before they get here
            raise _error("not authenticated: send Authorization: Bearer KEY")
        return token

    def allowed(self, ctx: Any) -> set[str] | None:
        """Names of the agents this caller reaches (None: every agent)."""
        token = self._key(ctx)
        names = set(self.agents) if self.agents else None
        if token is not None and "admin" not in token.scopes:
            agent_id = (token.claims or {}).get("agent_id")
            mine = {a.name for a in self.store.agents() if str(a.id) == agent_id}
            names = mine if names is None else names & mine
        return names

    def check_agent(self, ctx: Any, name: str) -> str:
        allowed = self.allowed(ctx)
        if allowed is not None and name not in allowed:
            raise _error(f"no agent named {name!r} here (agents: "
                         f"{', '.join(sorted(allowed)) or 'none'})")
        return name

    def may_query(self, ctx: Any) -> bool:
        token = self._key(ctx)
        return not self.agents and (token is None or "admin" in token.scopes)


def _error(message: str) -> Exception:
    from mcp.server.fastmcp.exceptions import ToolError

    return ToolError(message)


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a (blocking) Python API call in a worker thread; a UserError is the tool's error."""
    import anyio

    def run() -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise _error(error_text(exc)) from None

    return await anyio.to_thread.run_sync(run)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _tool_call(call: Any) -> dict[str, Any]:
    return {"tool": call.tool_name, "args": call.input_args, "status": call.status,
            "output": call.output, "error": call.error_message,
            **({"server": call.attrs["server"]} if call.attrs.get("server") else {})}


def build_server(store: "Store", agents: Sequence[str] = (), *, http: bool = False,
                 host: str = "127.0.0.1", port: int = 8765) -> Any:
    """The FastMCP server over ``store`` (only ``agents`` when given)."""
    access = _Access(store, agents, http=http)
    options: dict[str, Any] = {}
    if http:
        from mcp.server.auth.provider import AccessToken
        from mcp.server.auth.settings import AuthSettings

        class KeyVerifier:
            """A bearer token is an API key of the store (``Store.verify_key``)."""

            async def verify_token(self, token: str) -> AccessToken | None:
                import anyio

                record = await anyio.to_thread.run_sync(store.verify_key, token)
                if record is None:
                    return None
                return AccessToken(token=token, client_id=str(record.id), scopes=[record.scope],
                                   claims={"agent_id": str(record.agent_id)
                                           if record.agent_id else None})

        options = {"token_verifier": KeyVerifier(),
                   "auth": AuthSettings(issuer_url=f"http://{host}:{port}",
                                        resource_server_url=None),
                   "host": host, "port": port}
    server = FastMCP("agentnb", instructions=_INSTRUCTIONS, log_level="WARNING", **options)

    @server.tool()
    async def chat(agent: str, message: Annotated[str, Field(min_length=1)],
                   session: str | None = None, ctx: Context = None) -> dict[str, Any]:
        """Send a message to an agent; one turn, stored like any other.

        Returns the answer, its status, the tool calls the agent made and the
        session id. Without ``session`` the turn starts a new session; pass
        the returned session_id to continue that conversation.
        """
        access.check_agent(ctx, agent)
        handle = await _call(store.agent, agent)
        handle.session_attrs = {"source": "mcp"}
        if session is not None:
            await _call(handle.resume, session)
        try:
            reply = await handle.achat(message, new_session=session is None)
        except UserError as exc:
            raise _error(error_text(exc)) from None
        return {"answer": reply.text, "status": reply.status, "error": reply.error,
                "session_id": str(reply.session_id), "agent": reply.agent, "model": reply.model,
                "tool_calls": [_tool_call(c) for c in reply.tool_calls],
                "usage": {"input_tokens": reply.usage.input_tokens,
                          "output_tokens": reply.usage.output_tokens}}

    @server.tool()
    async def list_agents(ctx: Context = None) -> list[dict[str, Any]]:
        """The agents of the store: name, description, model, tools, MCP servers, sessions."""
        allowed = access.allowed(ctx)
        records = await _call(store.agents)
        counts = await _call(store.session_counts)
        return [{"name": a.name, "description": a.description, "model": a.config.model,
                 "tools": list(a.config.tools), "mcp_servers": list(a.config.mcp_servers),
                 "sessions": counts.get(a.name, 0)}
                for a in records if allowed is None or a.name in allowed]

    @server.tool()
    async def list_sessions(agent: str | None = None,
                            limit: Annotated[int, Field(ge=1, le=1000)] = 20,
                            ctx: Context = None) -> list[dict[str, Any]]:
        """Sessions (conversations), newest first; optionally of one agent."""
        allowed = access.allowed(ctx)
        if agent is not None:
            access.check_agent(ctx, agent)
        found = []
        for name in ([agent] if agent is not None else sorted(allowed) if allowed is not None
                     else [None]):
            found += await _call(store.sessions, name, limit=limit)
        found.sort(key=lambda s: s.last_activity or s.session.updated_at, reverse=True)
        return [{"id": str(s.session.id), "agent": s.agent_name, "title": s.session.title,
                 "messages": s.messages, "turns": s.turns,
                 "first_message": shorten(s.first_message or "", 200),
                 "last_activity": _iso(s.last_activity), "created_at": _iso(s.session.created_at)}
                for s in found[:limit]]

    @server.tool()
    async def get_session(id: Annotated[str, Field(min_length=1)],
                          ctx: Context = None) -> dict[str, Any]:
        """One session's messages (with their tool calls), oldest first; ``id`` or a prefix."""
        record = await _call(store.session, id)
        agent = await _call(store.get_agent, record.agent_id)
        allowed = access.allowed(ctx)
        if allowed is not None and agent.name not in allowed:
            raise _error(f"no session {id!r} here")
        messages = await _call(store.history, record.id)
        return {"id": str(record.id), "agent": agent.name, "title": record.title,
                "created_at": _iso(record.created_at),
                "messages": [{"position": m.position, "role": m.role, "content": m.content,
                              "status": m.status, "model": m.model,
                              "created_at": _iso(m.created_at),
                              "tool_calls": [_tool_call(c) for c in m.tool_calls]}
                             for m in messages]}

    @server.tool()
    async def search_history(query: Annotated[str, Field(min_length=1)],
                             agent: str | None = None,
                             limit: Annotated[int, Field(ge=1, le=1000)] = 20,
                             ctx: Context = None) -> list[dict[str, Any]]:
        """Messages containing ``query`` (any case), newest first; optionally of one agent."""
        allowed = access.allowed(ctx)
        if agent is not None:
            access.check_agent(ctx, agent)
        names = [agent] if agent is not None else (sorted(allowed) if allowed is not None
                                                   else [None])
        hits = []
        for name in names:
            hits += await _call(store.search, query, agent=name, limit=limit)
        hits.sort(key=lambda pair: pair[1].created_at, reverse=True)
        return [{"agent": name, "session_id": str(m.session_id), "position": m.position,
                 "role": m.role, "content": shorten(m.content, 500),
                 "created_at": _iso(m.created_at)} for name, m in hits[:limit]]

    if not agents:
        @server.tool()
        async def query_history(sql: Annotated[str, Field(min_length=1)],
                                ctx: Context = None) -> dict[str, Any]:
            """Read-only SQL (one DuckDB SELECT) over the store's tables.

            Tables: agents, sessions, messages, tool_calls (attrs.server names an
            MCP tool's server), api_keys (hashes only). Files, URLs, other
            databases and writes are refused. At most 200 rows.
            """
            if not access.may_query(ctx):
                raise _error("query_history needs an admin key (agentnb keys create --admin)")
            columns, rows = await _call(store.guarded_sql_rows, sql, MAX_SQL_ROWS + 1)
            from .render.results import to_jsonable

            return {"columns": list(columns),
                    "rows": to_jsonable([list(r) for r in rows[:MAX_SQL_ROWS]]),
                    "truncated": len(rows) > MAX_SQL_ROWS}

    return server


def serve(plan: "ServePlan", store: "Store", *, err: TextIO | None = None) -> int:
    """Run the MCP server of ``plan`` until stdin closes (stdio) or Ctrl-C (HTTP)."""
    err = err or sys.stderr
    store.init()  # the schema now, not at the first call
    server = build_server(store, plan.agents, http=plan.http, host=plan.host, port=plan.port)
    if not plan.http:
        server.run(transport="stdio")
        return 0
    import anyio
    import uvicorn

    if plan.host not in ("127.0.0.1", "localhost", "::1"):
        err.write(f"agentnb mcp serve: warning: listening on {plan.host}: keys and conversations "
                  "travel in clear unless a TLS proxy is in front\n")
    config = uvicorn.Config(server.streamable_http_app(), host=plan.host, port=plan.port,
                            log_level="warning", lifespan="on")
    runner = uvicorn.Server(config)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(runner.serve)
            while not runner.started:
                if runner.should_exit:
                    return
                await anyio.sleep(0.05)
            err.write(f"agentnb mcp serve: http://{plan.host}:{plan.port}/mcp (streamable HTTP; "
                      "send Authorization: Bearer KEY, a key from agentnb keys create AGENT, "
                      "or --admin)\n")
            err.flush()

    try:
        anyio.run(main)
    except KeyboardInterrupt:
        pass
    if not runner.started:
        raise UserError(f"mcp serve: could not listen on {plan.host}:{plan.port} (is the port "
                        "in use?)")
    return 0

