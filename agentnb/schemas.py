"""Pydantic records that cross every boundary.

The store returns these, the engine and the front ends consume them; no ORM
object leaves ``agentnb.store``. Records are frozen: change data through the
store, not by mutating a record.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
NAME_RULE = "a letter, then letters, digits, '-' or '_', at most 64 characters"

Role = Literal["system", "user", "assistant", "tool"]
MessageStatus = Literal["complete", "interrupted", "error"]
ToolStatus = Literal["pending", "running", "success", "error", "denied", "timeout"]
MemoryStrategy = Literal["full", "window", "tokens", "summary"]


from .text import looks_like_secret, short_id  # noqa: E402  (re-exported: records show ids)


#: A JSON object column: SQL NULL (or JSON null) reads as ``{}``.
JsonObject = Annotated[dict[str, Any], BeforeValidator(lambda value: value or {})]


class Record(BaseModel):
    """Base of the row records: frozen, built from ORM rows or mappings."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


class MemoryConfig(BaseModel):
    """How much of a session the model sees each turn.

    ``full``: everything; ``window``: the last ``window_turns`` turns;
    ``tokens``: the newest turns that fit in ``max_tokens``; ``summary``: a
    stored summary of older turns plus the last ``keep_turns`` turns.
    """

    model_config = ConfigDict(extra="forbid")

    strategy: MemoryStrategy = "full"
    window_turns: int = Field(default=10, ge=1)
    max_tokens: int = Field(default=4000, ge=1)
    keep_turns: int = Field(default=4, ge=1)


class AgentConfig(BaseModel):
    """An agent's configuration, stored as JSON in ``agents.config``."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = "offline"
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    system: str = ""
    tools: list[str] = Field(default_factory=list)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    max_iterations: int = Field(default=8, ge=1, le=100)
    tool_timeout: float = Field(default=60.0, gt=0)
    auto_approve: bool = False

    @field_validator("model_kwargs")
    @classmethod
    def _no_secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if looks_like_secret(key):
                raise ValueError(
                    f"model setting {key!r} looks like a secret; secrets come from "
                    "environment variables only and are never stored"
                )
        return value


class AgentRecord(Record):
    id: uuid.UUID
    name: str
    description: str = ""
    config: AgentConfig
    template: str | None = None
    created_at: datetime
    updated_at: datetime

    @field_validator("config", mode="before")
    @classmethod
    def _parse_config(cls, value: Any) -> Any:
        return AgentConfig.model_validate(value or {}) if isinstance(value, dict) else value


class SessionRecord(Record):
    id: uuid.UUID
    agent_id: uuid.UUID
    user_id: str | None = None
    title: str | None = None
    attrs: JsonObject = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class ToolCallRecord(Record):
    id: uuid.UUID
    message_id: uuid.UUID
    tool_name: str
    input_args: JsonObject = Field(default_factory=dict)
    output: str | None = None
    status: ToolStatus = "pending"
    error_message: str | None = None
    execution_time_ms: float | None = None
    created_at: datetime
    updated_at: datetime
    #: What else is known about the call (``server``: the MCP server of the tool).
    attrs: JsonObject = Field(default_factory=dict)


class MessageRecord(Record):
    id: uuid.UUID
    session_id: uuid.UUID
    position: int
    role: Role
    content: str = ""
    attrs: JsonObject = Field(default_factory=dict)
    input_tokens: int | None = None
    output_tokens: int | None = None
    tokens_used: int | None = None
    model: str | None = None
    status: MessageStatus = "complete"
    created_at: datetime
    tool_calls: tuple[ToolCallRecord, ...] = ()


KeyScope = Literal["agent", "admin"]


class ApiKeyRecord(Record):
    id: uuid.UUID
    #: None for an admin key.
    agent_id: uuid.UUID | None = None
    name: str
    key_prefix: str
    is_active: bool
    created_at: datetime
    last_used_at: datetime | None = None
    #: ``agent``: chat with and read its own agent only; ``admin``: everything.
    scope: KeyScope = "agent"


class NewApiKey(BaseModel):
    """A key just created: ``key`` is the plain secret, shown this once."""

    model_config = ConfigDict(frozen=True)

    record: ApiKeyRecord
    key: str


class SessionSummary(Record):
    """A session with the figures a listing shows."""

    session: SessionRecord
    agent_name: str
    messages: int = 0
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    first_message: str | None = None
    last_activity: datetime | None = None


class NewMessage(BaseModel):
    """A message to append in a turn (the store assigns id and position)."""

    role: Role
    content: str = ""
    attrs: dict[str, Any] = Field(default_factory=dict)
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None
    status: MessageStatus = "complete"
    tool_calls: list["NewToolCall"] = Field(default_factory=list)
    created_at: datetime | None = None


class NewToolCall(BaseModel):
    """A tool call to store with the message that asked for it."""

    tool_name: str
    input_args: dict[str, Any] = Field(default_factory=dict)
    output: str | None = None
    status: ToolStatus = "pending"
    error_message: str | None = None
    execution_time_ms: float | None = None
    id: uuid.UUID | None = None
    created_at: datetime | None = None
    attrs: dict[str, Any] = Field(default_factory=dict)


NewMessage.model_rebuild()


class UsageRow(Record):
    """Token and tool-call totals for one group (agent, session, model, day or user)."""

    key: str
    turns: int = 0
    messages: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0
