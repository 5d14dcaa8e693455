"""The five tables of the store, as SQLAlchemy ORM models.

Keys are UUIDs generated in Python: DuckDB has no SERIAL and alembic creates
no sequences, and a client-side key lets one turn be written with plain
multi-row INSERTs and no RETURNING round trip.

Foreign keys exist in the ORM on every dialect but are emitted as DDL only
on SQLite and PostgreSQL. DuckDB cannot cascade, refuses to delete children
and parent in one transaction, and refuses to update an indexed column of a
referenced row (STACK.md), which would make "delete an agent" and "rename an
agent" impossible to do atomically. The store deletes children itself, and
its tests check integrity on DuckDB.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .types import UTCDateTime, utcnow

#: Dialects on which foreign-key constraints are created.
FK_DIALECTS = ("sqlite", "postgresql")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: sa.JSON()}


def _fk(column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [target]).ddl_if(dialect=FK_DIALECTS)


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True, index=True)
    description: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    config: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    template: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    sessions: Mapped[list["ChatSession"]] = relationship(back_populates="agent")
    api_keys: Mapped[list["ApiKey"]] = relationship(back_populates="agent")


class ChatSession(Base):
    __tablename__ = "sessions"
    __table_args__ = (_fk("agent_id", "agents.id"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    agent_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, index=True)
    user_id: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    title: Mapped[str | None] = mapped_column(sa.String(256))
    attrs: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    agent: Mapped[Agent] = relationship(back_populates="sessions")
    messages: Mapped[list["Message"]] = relationship(back_populates="session")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (_fk("session_id", "sessions.id"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, index=True)
    position: Mapped[int] = mapped_column(sa.Integer)
    role: Mapped[str] = mapped_column(sa.String(16))
    content: Mapped[str] = mapped_column(sa.Text, default="")
    attrs: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    input_tokens: Mapped[int | None] = mapped_column(sa.Integer)
    output_tokens: Mapped[int | None] = mapped_column(sa.Integer)
    tokens_used: Mapped[int | None] = mapped_column(sa.Integer)
    model: Mapped[str | None] = mapped_column(sa.String(128))
    status: Mapped[str] = mapped_column(sa.String(16), default="complete")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    session: Mapped[ChatSession] = relationship(back_populates="messages")
    tool_calls: Mapped[list["ToolCall"]] = relationship(back_populates="message")


class ToolCall(Base):
    __tablename__ = "tool_calls"
    __table_args__ = (_fk("message_id", "messages.id"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    message_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, index=True)
    tool_name: Mapped[str] = mapped_column(sa.String(128), index=True)
    input_args: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    output: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    execution_time_ms: Mapped[float | None] = mapped_column(sa.Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: Nullable: added by revision 0002 (DuckDB adds only nullable columns to indexed tables).
    attrs: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, default=dict, nullable=True)

    message: Mapped[Message] = relationship(back_populates="tool_calls")


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (_fk("agent_id", "agents.id"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    #: None for an admin key (scope ``admin``), which belongs to no agent.
    agent_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, index=True, nullable=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    key_prefix: Mapped[str] = mapped_column(sa.String(16))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True, index=True)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_used_at: Mapped[datetime | None] = mapped_column()
    #: ``agent``: may use its own agent only; ``admin``: may do everything.
    scope: Mapped[str] = mapped_column(sa.String(16), default="agent", server_default="agent")

    agent: Mapped[Agent] = relationship(back_populates="api_keys")


metadata = Base.metadata
