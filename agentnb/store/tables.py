"""The five tables of the store, as SQLAlchemy Core tables.

Keys are UUIDs generated in Python: DuckDB has no SERIAL and alembic creates
no sequences, and a client-side key lets one turn be written with plain
multi-row INSERTs and no RETURNING round trip.

Foreign keys exist in the metadata on every dialect but are emitted as DDL only
on SQLite and PostgreSQL. DuckDB cannot cascade, refuses to delete children
and parent in one transaction, and refuses to update an indexed column of a
referenced row (STACK.md), which would make "delete an agent" and "rename an
agent" impossible to do atomically. The store deletes children itself, and
its tests check integrity on DuckDB.

Core tables, not ORM models: the store reads and writes rows, never objects,
and ``sqlalchemy.orm`` alone costs a process ~5 MB and ~0.1-0.2 s to import.
``Agent.__table__`` and the other names stay for callers that used the models.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

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

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _fk(column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [target]).ddl_if(dialect=FK_DIALECTS)


def _id() -> sa.Column:
    return sa.Column("id", sa.Uuid, primary_key=True, default=uuid.uuid4)


def _time(name: str, *, index: bool = False, onupdate: bool = False,
          nullable: bool = False, default: bool = True) -> sa.Column:
    return sa.Column(name, UTCDateTime(), nullable=nullable, index=index,
                     default=utcnow if default else None, onupdate=utcnow if onupdate else None)


agents = sa.Table(
    "agents", metadata,
    _id(),
    sa.Column("name", sa.String(64), nullable=False, unique=True, index=True),
    sa.Column("description", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("config", sa.JSON, nullable=False, default=dict),
    sa.Column("template", sa.String(64), nullable=True),
    _time("created_at", index=True),
    _time("updated_at", onupdate=True),
)

sessions = sa.Table(
    "sessions", metadata,
    _id(),
    sa.Column("agent_id", sa.Uuid, nullable=False, index=True),
    sa.Column("user_id", sa.String(128), nullable=True, index=True),
    sa.Column("title", sa.String(256), nullable=True),
    sa.Column("attrs", sa.JSON, nullable=False, default=dict),
    _time("created_at", index=True),
    _time("updated_at", onupdate=True),
    _fk("agent_id", "agents.id"),
)

messages = sa.Table(
    "messages", metadata,
    _id(),
    sa.Column("session_id", sa.Uuid, nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False, default=""),
    sa.Column("attrs", sa.JSON, nullable=False, default=dict),
    sa.Column("input_tokens", sa.Integer, nullable=True),
    sa.Column("output_tokens", sa.Integer, nullable=True),
    sa.Column("tokens_used", sa.Integer, nullable=True),
    sa.Column("model", sa.String(128), nullable=True),
    sa.Column("status", sa.String(16), nullable=False, default="complete"),
    _time("created_at", index=True),
    _fk("session_id", "sessions.id"),
    # a session's newest messages and next position; not on DuckDB (revision 0003)
    sa.Index("ix_messages_session_id_position", "session_id", "position").ddl_if(
        dialect=FK_DIALECTS),
)

tool_calls = sa.Table(
    "tool_calls", metadata,
    _id(),
    sa.Column("message_id", sa.Uuid, nullable=False, index=True),
    sa.Column("tool_name", sa.String(128), nullable=False, index=True),
    sa.Column("input_args", sa.JSON, nullable=False, default=dict),
    sa.Column("output", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, default="pending"),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("execution_time_ms", sa.Float, nullable=True),
    _time("created_at", index=True),
    _time("updated_at", onupdate=True),
    #: Nullable: added by revision 0002 (DuckDB adds only nullable columns to indexed tables).
    sa.Column("attrs", sa.JSON, nullable=True, default=dict),
    _fk("message_id", "messages.id"),
)

api_keys = sa.Table(
    "api_keys", metadata,
    _id(),
    #: None for an admin key (scope ``admin``), which belongs to no agent.
    sa.Column("agent_id", sa.Uuid, nullable=True, index=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("key_prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True, index=True),
    sa.Column("is_active", sa.Boolean, nullable=False, default=True, index=True),
    _time("created_at", index=True),
    _time("last_used_at", nullable=True, default=False),
    #: ``agent``: may use its own agent only; ``admin``: may do everything.
    sa.Column("scope", sa.String(16), nullable=False, default="agent", server_default="agent"),
    _fk("agent_id", "agents.id"),
)


class _Model:
    """What callers of the former ORM models used: ``Agent.__table__``."""

    def __init_subclass__(cls, table: sa.Table, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.__table__ = table
        cls.__tablename__ = table.name


class Agent(_Model, table=agents):
    pass


class ChatSession(_Model, table=sessions):
    pass


class Message(_Model, table=messages):
    pass


class ToolCall(_Model, table=tool_calls):
    pass


class ApiKey(_Model, table=api_keys):
    pass
