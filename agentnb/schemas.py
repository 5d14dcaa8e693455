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

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

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


#: An MCP server's name (tools are named ``<server>_<tool>``, so it is kept short).
MCP_SERVER_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
#: A reference to an environment variable in a stored value: ``${NAME}``.
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: A stored header value: ``${VAR}``, optionally after an auth scheme (``Bearer ${VAR}``).
_HEADER_TEMPLATE = re.compile(r"^(?:(?:Bearer|Basic|Token) )?\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


class McpServerConfig(BaseModel):
    """One MCP server an agent takes tools from, stored in ``agents.config``.

    ``transport="stdio"``: agentnb starts ``command`` with ``args``;
    ``transport="http"``: it connects to the streamable-HTTP ``url``.
    Secrets are never stored: ``env`` maps a variable the server gets to the
    name of a variable of agentnb's environment (read when the server
    starts); a header value is ``${VAR}`` or ``Bearer ${VAR}``. ``approve``
    asks before every call of the server's tools, ``approve_tools`` before
    calls of the tools named there.
    """

    model_config = ConfigDict(extra="forbid")

    transport: Literal["stdio", "http"] = "stdio"
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    approve: bool = False
    approve_tools: list[str] = Field(default_factory=list)

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, source in value.items():
            if not _ENV_NAME.match(str(name)) or not _ENV_NAME.match(str(source)):
                raise ValueError(
                    f"env {name!r}: give the NAME of an environment variable (letters, digits, "
                    "'_'); values are read from the environment when the server starts, never "
                    "stored")
        return value

    @field_validator("url")
    @classmethod
    def _no_secret_in_url(cls, value: str | None) -> str | None:
        from .text import mask_urls

        if value and mask_urls(value) != value:
            raise ValueError(
                f"the URL {mask_urls(value)} holds a secret; secrets are never stored: send it "
                "in a header from an environment variable (--header NAME=VAR)")
        return value

    @field_validator("headers")
    @classmethod
    def _header_templates(cls, value: dict[str, str]) -> dict[str, str]:
        for name, template in value.items():
            if not _HEADER_TEMPLATE.match(str(template)):
                raise ValueError(
                    f"header {name!r}: give the name of an environment variable (NAME=VAR); "
                    "header values are never stored")
        return value

    @model_validator(mode="after")
    def _complete(self) -> "McpServerConfig":
        if self.transport == "stdio":
            if not self.command:
                raise ValueError("a stdio MCP server needs a command")
            if self.url or self.headers:
                raise ValueError("a stdio MCP server takes a command, not a URL or headers")
        else:
            if not self.url or not re.match(r"^https?://[^\s/]+", self.url):
                raise ValueError("an HTTP MCP server needs a URL such as "
                                 "http://127.0.0.1:8000/mcp")
            if self.command or self.args or self.env:
                raise ValueError("an HTTP MCP server takes a URL, not a command")
            _check_url(self.url)
        _check_args(self.args)
        return self

    def describe(self) -> str:
        """How the server is started or reached, as a user would write it (no secrets)."""
        if self.transport == "http":
            return str(self.url)
        import shlex

        return shlex.join([str(self.command), *self.args])


def _check_url(url: str) -> None:
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url)
    if parts.password:
        raise ValueError("the URL holds a password; pass it in a header from an environment "
                         "variable (--header Authorization=VAR)")
    for key, _ in parse_qsl(parts.query):
        if looks_like_secret(key):
            raise ValueError(f"the URL holds a secret ({key}=...); pass it in a header from an "
                             "environment variable (--header NAME=VAR)")


def _check_args(args: list[str]) -> None:
    """A command line that carries a secret (``--api-key sk-...``) is refused."""
    for index, arg in enumerate(args):
        flag, sep, _value = str(arg).partition("=")
        if not flag.startswith("-"):
            continue
        name = flag.lstrip("-")
        if looks_like_secret(name) and (sep or index + 1 < len(args)):
            raise ValueError(
                f"argument {flag} passes a secret on the command line, where it would be "
                f"stored; give it to the server from an environment variable "
                f"(--env NAME) instead")


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
    #: MCP servers whose tools the agent uses (``<server>_<tool>``), by server name.
    mcp_servers: dict[str, McpServerConfig] = Field(default_factory=dict)

    @field_validator("mcp_servers")
    @classmethod
    def _server_names(cls, value: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        for name in value:
            if not MCP_SERVER_PATTERN.match(str(name)):
                raise ValueError(f"MCP server name {name!r} is not usable: a letter, then "
                                 "letters, digits, '-' or '_', at most 32 characters")
        return value

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
