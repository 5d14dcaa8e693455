"""``/api``: agentnb's own REST endpoints (JSON), the same records the CLI's ``--json`` shows.

Read and chat (any key, for the agents it may use)::

    GET  /api/agents                      GET /api/agents/{name}
    GET  /api/agents/{name}/sessions      GET /api/sessions/{id}
    POST /api/agents/{name}/chat          {"message", "session"?}  (?stream=true: SSE)

Admin (an admin key only)::

    POST /api/agents   PATCH /api/agents/{name}   DELETE /api/agents/{name}
    GET /api/keys      POST /api/keys             DELETE /api/keys/{id}

A chat without ``session`` starts a new session; give the returned
``session_id`` to continue it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..commands.views import agent_json, key_json, session_json
from ..events import TurnFinished
from .errors import AUTH_RESPONSES, COMMON_RESPONSES
from .openai_api import failed
from .turns import SESSION_HEADER, final_reply, in_thread

if TYPE_CHECKING:  # pragma: no cover
    from ..events import Reply
    from .auth import Caller
    from .turns import Turns

Name = Field(min_length=1, max_length=64)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=1_000_000)
    session: str | None = Field(default=None, min_length=1, max_length=64,
                                description="continue this session (id or unique prefix)")


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Name
    model: str | None = Field(default=None, max_length=200)
    system: str | None = Field(default=None, max_length=100_000)
    template: str | None = Field(default=None, max_length=64)
    description: str = Field(default="", max_length=10_000)
    tools: list[str] | None = Field(default=None, max_length=200)
    memory: str | dict[str, Any] | None = None
    settings: dict[str, Any] = Field(default_factory=dict,
                                     description="other config keys and model settings")


class AgentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=64,
                             description="a new name")
    description: str | None = Field(default=None, max_length=10_000)
    set: dict[str, Any] = Field(default_factory=dict, description="config keys to change")
    unset: list[str] = Field(default_factory=list, max_length=100,
                             description="config keys back to their default")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str | None = Field(default=None, min_length=1, max_length=64,
                              description="the agent of an agent key")
    name: str = Field(default="default", min_length=1, max_length=64)
    admin: bool = False


class ToolCallOut(BaseModel):
    id: str
    tool_name: str
    input_args: dict[str, Any]
    output: str | None
    status: str
    error_message: str | None
    execution_time_ms: float | None


class ReplyOut(BaseModel):
    """A turn's reply (``POST /api/agents/{name}/chat``)."""

    text: str
    status: str = Field(description="complete, interrupted or error")
    error: str | None
    session_id: str
    agent: str
    model: str
    usage: dict[str, int]
    tool_calls: list[ToolCallOut]


def message_json(m) -> dict[str, Any]:
    """A stored message with its tool calls and token counts."""
    return {
        "id": str(m.id), "position": m.position, "role": m.role, "content": m.content,
        "status": m.status, "model": m.model, "input_tokens": m.input_tokens,
        "output_tokens": m.output_tokens, "created_at": m.created_at.isoformat(),
        "tool_calls": [call_json(c) for c in m.tool_calls],
    }


def call_json(c) -> dict[str, Any]:
    return {"id": str(c.id), "tool_name": c.tool_name, "input_args": c.input_args,
            "output": c.output, "status": c.status, "error_message": c.error_message,
            "execution_time_ms": c.execution_time_ms}


def reply_json(reply: "Reply") -> dict[str, Any]:
    return {
        "text": reply.text, "status": reply.status, "error": reply.error,
        "session_id": str(reply.session_id), "agent": reply.agent, "model": reply.model,
        "usage": {"input_tokens": reply.usage.input_tokens,
                  "output_tokens": reply.usage.output_tokens},
        "tool_calls": [call_json(c) for c in reply.tool_calls],
    }


def router(turns: "Turns", caller_dep: Any) -> APIRouter:
    """The ``/api`` routes over ``turns``; ``caller_dep`` authenticates."""
    store = turns.store
    api = APIRouter(prefix="/api", tags=["agentnb"],
                    responses={**AUTH_RESPONSES, **COMMON_RESPONSES})

    @api.get("/agents", summary="the agents this key may use")
    def list_agents(caller: "Caller" = Depends(caller_dep)) -> list[dict[str, Any]]:
        return [agent_json(r) for r in turns.visible_agents(caller)]

    @api.get("/agents/{name}", summary="one agent's record and config")
    def get_agent(name: str, caller: "Caller" = Depends(caller_dep)) -> dict[str, Any]:
        return agent_json(turns.agent_record(name, caller))

    @api.get("/agents/{name}/sessions", summary="the agent's sessions, newest first")
    def agent_sessions(name: str, limit: int | None = Query(default=None, ge=1, le=10_000),
                       caller: "Caller" = Depends(caller_dep)) -> list[dict[str, Any]]:
        record = turns.agent_record(name, caller)
        return [session_json(s) for s in store.sessions(record.name, limit=limit)]

    @api.get("/sessions/{session_id}", summary="a session: its messages, tool calls, tokens")
    def get_session(session_id: str, caller: "Caller" = Depends(caller_dep)) -> dict[str, Any]:
        session = store.session(session_id)
        caller.check_agent_id(session.agent_id)
        summary = store.session_summary(session.id)
        if not turns.serves(summary.agent_name):
            from .errors import ApiError

            raise ApiError(404, f"agent {summary.agent_name!r} is not served here")
        return {**session_json(summary),
                "messages": [message_json(m) for m in store.history(session.id)]}

    @api.post("/agents/{name}/chat", summary="one turn: the reply, its tool calls, usage, "
                                               "session (stream=true: the turn's events, SSE)",
              responses={200: {"model": ReplyOut, "description": "the reply, or with "
                               "stream=true server-sent events (event: the turn event's kind)",
                               "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                         502: {"description": "the model failed (the turn is stored)"}})
    async def chat(name: str, body: ChatRequest,
                   stream: bool = Query(default=False, description="stream events as SSE"),
                   caller: "Caller" = Depends(caller_dep)):
        _, handle, session = await in_thread(turns.prepare, name, caller, body.session)
        events = await turns.start(handle, session, body.message)
        headers = {SESSION_HEADER: str(session.id)}
        if stream:
            from sse_starlette.sse import EventSourceResponse

            async def sse():
                async for event in events:
                    if isinstance(event, TurnFinished):
                        yield {"event": event.kind, "data": _dumps(reply_json(event.reply))}
                    else:
                        yield {"event": event.kind, "data": event.model_dump_json()}

            return EventSourceResponse(sse(), headers=headers, ping=15)
        reply = await final_reply(events)
        if reply.status == "error":
            err = failed(reply)
            return JSONResponse(err.body(), status_code=err.status, headers=headers)
        return JSONResponse(reply_json(reply), headers=headers)

    # -- admin -----------------------------------------------------------------------
    @api.post("/agents", status_code=201, summary="create an agent (admin)",
              responses={409: {"description": "the name is taken"}})
    def create_agent(body: AgentCreate, caller: "Caller" = Depends(caller_dep)):
        caller.check_admin()
        agent = store.create_agent(body.name, model=body.model, system=body.system,
                                   template=body.template, description=body.description,
                                   tools=body.tools, memory=body.memory, **body.settings)
        return JSONResponse(agent_json(agent.record), status_code=201)

    @api.patch("/agents/{name}", summary="change an agent (admin)")
    def update_agent(name: str, body: AgentUpdate,
                     caller: "Caller" = Depends(caller_dep)) -> dict[str, Any]:
        caller.check_admin()
        record = store.update_agent(name, rename=body.name, description=body.description,
                                    unset=body.unset, **body.set)
        return agent_json(record)

    @api.delete("/agents/{name}", summary="delete an agent with everything it owns (admin)")
    def delete_agent(name: str, caller: "Caller" = Depends(caller_dep)) -> dict[str, Any]:
        caller.check_admin()
        record = store.get_agent(name)
        return {"deleted": record.name, "rows": store.delete_agent(record.name)}

    @api.get("/keys", summary="API keys: prefix and metadata, never the key (admin)")
    def list_keys(agent: str | None = Query(default=None, max_length=64),
                  caller: "Caller" = Depends(caller_dep)) -> list[dict[str, Any]]:
        caller.check_admin()
        names = {a.id: a.name for a in store.agents()}
        return [key_json(k, names.get(k.agent_id)) for k in store.keys(agent)]

    @api.post("/keys", status_code=201, summary="a new API key, shown in this response only "
                                                 "(admin)")
    def create_key(body: KeyCreate, caller: "Caller" = Depends(caller_dep)):
        caller.check_admin()
        if body.admin == (body.agent is not None):
            from .errors import ApiError

            raise ApiError(400, "give either agent (an agent's key) or admin: true")
        agent = store.get_agent(body.agent).name if body.agent else None
        new = store.create_key(agent, body.name, admin=body.admin)
        return JSONResponse({**key_json(new.record, agent), "key": new.key}, status_code=201,
                            headers={"Cache-Control": "no-store"})

    @api.delete("/keys/{key_id}", summary="revoke a key: it stops working at once (admin)")
    def revoke_key(key_id: str, caller: "Caller" = Depends(caller_dep)) -> dict[str, Any]:
        caller.check_admin()
        record = store.revoke_key(key_id)
        names = {a.id: a.name for a in store.agents()}
        return key_json(record, names.get(record.agent_id))

    return api


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


__all__ = ["router"]
