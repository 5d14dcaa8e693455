"""Typed events of a turn, streamed from the engine to the front ends.

A turn emits, in order: ``TurnStarted``; then any number of ``Token``,
``ToolCallStarted`` / ``ApprovalRequested`` / ``ToolCallFinished``,
``MessageCompleted`` and ``Usage`` events; then exactly one ``TurnFinished``
carrying the :class:`Reply` (also when the turn failed or was interrupted,
with ``reply.status`` saying so). ``TurnError`` comes before ``TurnFinished``
when a model call failed.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from .schemas import MessageRecord, ToolCallRecord, ToolStatus

TurnStatus = Literal["complete", "interrupted", "error"]


class TokenUsage(BaseModel):
    """Tokens a turn used, summed over its model calls."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class Reply(BaseModel):
    """What one turn produced: the final text, tool calls, usage, status."""

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    text: str = ""
    data: Any = None
    status: TurnStatus = "complete"
    error: str | None = None
    session_id: uuid.UUID
    agent: str
    model: str
    usage: TokenUsage = Field(default_factory=TokenUsage)
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    messages: list[MessageRecord] = Field(default_factory=list)

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        from .text import shorten

        short = shorten(self.text, 60)
        return f"Reply({short!r}, status={self.status!r}, tool_calls={len(self.tool_calls)})"


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, protected_namespaces=())


class TurnStarted(_Event):
    kind: Literal["turn_started"] = "turn_started"
    session_id: uuid.UUID
    agent: str
    model: str
    #: Tools in the agent's config that this process cannot run (not defined here):
    #: front ends say so once per session, in their own words.
    missing_tools: list[str] = Field(default_factory=list)


class Token(_Event):
    """A piece of the assistant's text as it streams."""

    kind: Literal["token"] = "token"
    text: str


class ToolCallStarted(_Event):
    kind: Literal["tool_call_started"] = "tool_call_started"
    call_id: str
    tool_name: str
    input_args: dict[str, Any] = Field(default_factory=dict)


class ApprovalRequested(_Event):
    """A tool call waits for the user's yes or no (see the engine's ``approve`` callback)."""

    kind: Literal["approval_requested"] = "approval_requested"
    call_id: str
    tool_name: str
    input_args: dict[str, Any] = Field(default_factory=dict)


class ToolCallFinished(_Event):
    kind: Literal["tool_call_finished"] = "tool_call_finished"
    call_id: str
    tool_name: str
    input_args: dict[str, Any] = Field(default_factory=dict)
    status: ToolStatus
    output: str | None = None
    error_message: str | None = None
    execution_time_ms: float | None = None


class MessageCompleted(_Event):
    """One model call finished (an assistant message, possibly with tool calls)."""

    kind: Literal["message_completed"] = "message_completed"
    role: str = "assistant"
    content: str = ""
    tool_call_count: int = 0


class Usage(_Event):
    kind: Literal["usage"] = "usage"
    input_tokens: int = 0
    output_tokens: int = 0
    model: str = ""


class TurnError(_Event):
    kind: Literal["error"] = "error"
    message: str
    retryable: bool = False


class TurnFinished(_Event):
    kind: Literal["turn_finished"] = "turn_finished"
    reply: Reply


Event = Union[
    TurnStarted,
    Token,
    ToolCallStarted,
    ApprovalRequested,
    ToolCallFinished,
    MessageCompleted,
    Usage,
    TurnError,
    TurnFinished,
]
