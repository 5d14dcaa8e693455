"""``/v1``: the OpenAI-compatible endpoints (``model`` is an agent's name).

``GET /v1/models`` lists the agents the key may use; ``POST
/v1/chat/completions`` runs one turn of the agent, with its own system prompt,
memory and tools (tool calls run here and are stored, as in a notebook turn),
as one JSON completion or, with ``stream: true``, OpenAI's server-sent events
(a final usage chunk with ``stream_options.include_usage``). Which session the
turn continues: :mod:`.turns`. What the agent cannot honour (client-side
tools, ``n`` > 1, images, a system message of the client, unknown fields) is a
400 with a clear message, never silently ignored.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..events import Token, TurnFinished
from .errors import AUTH_RESPONSES, COMMON_RESPONSES, ApiError
from .turns import SESSION_HEADER, Exchange, batches, final_reply, in_thread

if TYPE_CHECKING:  # pragma: no cover
    from ..events import Reply
    from .auth import Caller
    from .turns import Turns


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(max_length=32)
    content: str | list[TextPart] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


#: fields of OpenAI's request that an agent cannot honour, with why
_UNSUPPORTED = {
    "tools": "client-side tools are not supported: the agent runs its own tools on the server",
    "functions": "client-side functions are not supported: the agent runs its own tools",
    "tool_choice": "tool_choice is not supported: the agent chooses among its own tools",
    "function_call": "function_call is not supported: the agent runs its own tools",
    "response_format": "response_format is not supported (ask for JSON in the message)",
    "logprobs": "logprobs are not supported",
    "top_logprobs": "logprobs are not supported",
    "audio": "audio is not supported",
    "modalities": "only text is supported",
    "prediction": "predicted outputs are not supported",
}


class ChatCompletionRequest(BaseModel):
    """What ``POST /v1/chat/completions`` takes (OpenAI's fields an agent can honour)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=64, description="the agent's name")
    messages: list[ChatMessage] = Field(min_length=1, max_length=10_000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    n: int | None = Field(default=None, ge=1, le=128)
    user: str | None = Field(default=None, max_length=256,
                             description="recorded as the user of a new session")
    parallel_tool_calls: bool | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None


class ModelCard(BaseModel):
    id: str = Field(description="the agent's name")
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "agentnb"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """The answer of ``POST /v1/chat/completions`` without ``stream`` (OpenAI's shape)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage


_COMPLETION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ChatCompletion, "description": "one completion, or with stream: true "
          "server-sent events of chat.completion.chunk objects ending with data: [DONE]",
          "content": {"text/event-stream": {"schema": {"type": "string"}}},
          "headers": {SESSION_HEADER: {"description": "the session of this turn",
                                       "schema": {"type": "string"}}}},
    404: {"description": "no such agent or session"},
    502: {"description": "the model failed (the turn is stored)"},
}


def _text(message: ChatMessage, index: int) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part.type != "text":
            raise ApiError(400, f"messages[{index}]: {part.type!r} content is not supported "
                                "(only text; no images, audio or files)",
                           param=f"messages[{index}].content")
        parts.append(part.text or "")
    return "".join(parts)


def check_request(body: ChatCompletionRequest) -> tuple[list[Exchange], str, dict[str, Any]]:
    """(earlier conversation, the new message, model settings); 400 for what is unsupported."""
    for name in (body.model_extra or {}):
        if name in _UNSUPPORTED:
            raise ApiError(400, _UNSUPPORTED[name], param=name)
        raise ApiError(400, f"unsupported field {name[:40]!r}", param=name[:40])
    if body.n not in (None, 1):
        raise ApiError(400, "n > 1 is not supported: an agent gives one answer per turn",
                       param="n")
    if body.max_tokens is not None and body.max_completion_tokens is not None \
            and body.max_tokens != body.max_completion_tokens:
        raise ApiError(400, "give either max_tokens or max_completion_tokens",
                       param="max_completion_tokens")
    convo: list[Exchange] = []
    for i, message in enumerate(body.messages):
        if message.role in ("system", "developer"):
            raise ApiError(400, f"messages[{i}]: a {message.role} message is not supported: "
                                "the agent has its own system prompt (change it with PATCH "
                                f"/api/agents/{body.model[:64]})", param=f"messages[{i}].role")
        if message.role == "tool" or (message.model_extra or {}).get("tool_calls"):
            raise ApiError(400, f"messages[{i}]: client-side tool calls are not supported: the "
                                "agent runs its own tools on the server",
                           param=f"messages[{i}]")
        if message.role not in ("user", "assistant"):
            raise ApiError(400, f"messages[{i}]: unknown role {message.role[:32]!r} (user or "
                                "assistant)", param=f"messages[{i}].role")
        convo.append((message.role, _text(message, i)))
    if convo[-1][0] != "user":
        raise ApiError(400, "the last message must be the user's", param="messages")
    start = len(convo)
    while start > 0 and convo[start - 1][0] == "user":
        start -= 1
    new = "\n\n".join(text for _, text in convo[start:]).strip()
    if not new:
        raise ApiError(400, "the user's message is empty", param="messages")
    settings: dict[str, Any] = {}
    if body.temperature is not None:
        settings["temperature"] = body.temperature
    max_tokens = body.max_tokens or body.max_completion_tokens
    if max_tokens is not None:
        settings["max_tokens"] = max_tokens
    return convo[:start], new, settings


def _usage(reply: "Reply") -> dict[str, int]:
    return {"prompt_tokens": reply.usage.input_tokens,
            "completion_tokens": reply.usage.output_tokens,
            "total_tokens": reply.usage.total_tokens}


def _finish_reason(reply: "Reply") -> str:
    return "length" if reply.status == "interrupted" else "stop"


def failed(reply: "Reply") -> ApiError:
    """The error response of a turn that failed (it is stored, marked ``error``)."""
    return ApiError(502, f"the agent's turn failed: {reply.error or 'model error'} (the turn "
                         f"is stored in session {reply.session_id})", code="turn_failed")


def router(turns: "Turns", caller_dep: Any) -> APIRouter:
    """The ``/v1`` routes over ``turns``; ``caller_dep`` authenticates."""
    api = APIRouter(prefix="/v1", tags=["OpenAI-compatible"],
                    responses={**AUTH_RESPONSES, **COMMON_RESPONSES})

    def model_card(record) -> dict[str, Any]:
        return {"id": record.name, "object": "model",
                "created": int(record.created_at.timestamp()), "owned_by": "agentnb"}

    @api.get("/models", summary="the agents this key may use, as models",
             response_model=ModelList)
    def list_models(caller: "Caller" = Depends(caller_dep)) -> dict[str, Any]:
        return {"object": "list", "data": [model_card(r) for r in turns.visible_agents(caller)]}

    @api.get("/models/{model}", summary="one agent, as a model", response_model=ModelCard,
             responses={404: {"description": "no such agent here"}})
    def get_model(model: str, caller: "Caller" = Depends(caller_dep)) -> dict[str, Any]:
        return model_card(turns.agent_record(model, caller))

    @api.post("/chat/completions", summary="one turn of the agent named by model",
              responses=_COMPLETION_RESPONSES)
    async def chat_completions(
        body: ChatCompletionRequest,
        request: Request,
        caller: "Caller" = Depends(caller_dep),
        session_header: str | None = Header(default=None, alias=SESSION_HEADER,
                                            max_length=64),
    ):
        earlier, message, settings = check_request(body)
        record, handle, session = await in_thread(turns.prepare, body.model, caller,
                                                  session_header, earlier, user=body.user)
        events = await turns.start(handle, session, message, model_settings=settings)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        headers = {SESSION_HEADER: str(session.id)}
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return _stream(events, completion_id, created, record.name, include_usage, headers)
        reply = await final_reply(events)
        if reply.status == "error":
            err = failed(reply)
            return JSONResponse(err.body(), status_code=err.status, headers=headers)
        return JSONResponse({
            "id": completion_id, "object": "chat.completion", "created": created,
            "model": record.name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                         "finish_reason": _finish_reason(reply), "logprobs": None}],
            "usage": _usage(reply),
        }, headers=headers)

    return api


def _stream(events, completion_id: str, created: int, model: str, include_usage: bool,
            headers: dict[str, str]):
    from sse_starlette.sse import EventSourceResponse

    def chunk(delta: dict[str, Any], finish: str | None = None,
              usage: dict[str, int] | None = None, choices: bool = True) -> str:
        data: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk",
                                "created": created, "model": model,
                                "choices": [{"index": 0, "delta": delta,
                                             "finish_reason": finish, "logprobs": None}]
                                if choices else []}
        if include_usage:
            data["usage"] = usage
        return json.dumps(data, ensure_ascii=False)

    async def body():
        yield {"data": chunk({"role": "assistant", "content": ""})}
        reply = None
        async for batch in batches(events):
            text = "".join(e.text for e in batch if isinstance(e, Token))
            if text:
                yield {"data": chunk({"content": text})}
            for event in batch:  # a TurnError is said once, with the stored turn, at the end
                if isinstance(event, TurnFinished):
                    reply = event.reply
        assert reply is not None
        if reply.status == "error":
            yield {"data": json.dumps(failed(reply).body())}
            return
        yield {"data": chunk({}, _finish_reason(reply))}
        if include_usage:
            yield {"data": chunk({}, usage=_usage(reply), choices=False)}
        yield {"data": "[DONE]"}

    return EventSourceResponse(body(), headers=headers, ping=15)


__all__ = ["ChatCompletionRequest", "check_request", "router"]
