"""Reads and writes of the store, in records.

Every public method runs in one transaction (a write) or one connection
(a read) and returns :mod:`agentnb.schemas` records. A turn of a
conversation is written by :meth:`Repository.append_turn` in one transaction.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any, Iterable, Literal, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..text import did_you_mean, excerpt
from ..errors import AlreadyExistsError, InvalidNameError, InvalidValueError, NotFoundError
from ..schemas import (
    NAME_PATTERN,
    NAME_RULE,
    AgentConfig,
    AgentRecord,
    ApiKeyRecord,
    MessageRecord,
    NewApiKey,
    NewMessage,
    SessionRecord,
    SessionSummary,
    ToolCallRecord,
    UsageRow,
    short_id,
)
from . import keys as keymat
from .database import Database
from .ids import id_clause
from .tables import Agent, ApiKey, ChatSession, Message, ToolCall
from .types import utcnow

agents_t = Agent.__table__
sessions_t = ChatSession.__table__
messages_t = Message.__table__
tool_calls_t = ToolCall.__table__
api_keys_t = ApiKey.__table__

#: How often a key's ``last_used_at`` is written at most (a read per request, not a write).
LAST_USED_EVERY = timedelta(minutes=1)

UsageBy = Literal["agent", "session", "model", "day", "user"]


def validate_name(name: str) -> str:
    """Return ``name`` if it follows the naming rule, else raise InvalidNameError."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidNameError(f"invalid agent name {name!r}: use {NAME_RULE}")
    return name


class Repository:
    """CRUD over the five tables of one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: Agents and sessions as last read, with the token they were read at
        #: (see :mod:`.versions`): a turn's re-reads of them cost no query.
        self._records: dict[tuple, tuple[tuple, Any]] = {}

    def token(self, session_id: uuid.UUID | None = None) -> tuple | None:
        """What this process knows the store's content (and the session's) by, or None.

        Read before the data it vouches for: a record read after this token
        was taken is at least as new as the token says (see :mod:`.versions`).
        """
        with self.db.read():
            return self.db.token(session_id)

    def current_token(self, session_id: uuid.UUID | None = None) -> tuple | None:
        """:meth:`token` without waiting for the connection (None unless it is open now)."""
        return self.db.token(session_id)

    def _known(self, key: tuple, session_id: uuid.UUID | None = None) -> Any:
        hit = self._records.get(key)
        if hit is not None and hit[0] == self.db.token(session_id):
            return hit[1]
        return None

    # -- agents ---------------------------------------------------------------
    def create_agent(
        self,
        name: str,
        config: AgentConfig | None = None,
        *,
        description: str = "",
        template: str | None = None,
    ) -> AgentRecord:
        """Create an agent; raises AlreadyExistsError if the name is taken."""
        validate_name(name)
        config = config or AgentConfig()
        now = utcnow()
        row = {
            "id": uuid.uuid4(),
            "name": name,
            "description": description or "",
            "config": config.model_dump(mode="json"),
            "template": template,
            "created_at": now,
            "updated_at": now,
        }
        with self.db.write() as conn:
            if self._agent_row(conn, name) is not None:
                raise AlreadyExistsError(f"an agent named {name!r} already exists")
            conn.execute(agents_t.insert().values(row))
        return AgentRecord.model_validate(row)

    def get_agent(self, name_or_id: str | uuid.UUID) -> AgentRecord:
        """The agent with this name (or id); NotFoundError suggests close names."""
        known = self._known(("agent", name_or_id))
        if known is not None:  # nothing was written since it was read
            return known
        with self.db.read() as conn:
            if conn.dialect.name == "duckdb":  # every turn reads it: skip SQL compilation
                token = self.db.token()
                column = "id" if isinstance(name_or_id, uuid.UUID) else "name"
                found = _duckdb_row(conn, agents_t, column, name_or_id)
                if found is not None:
                    record = AgentRecord.model_validate(found)
                    if token is not None:
                        self._records[("agent", record.id)] = (token, record)
                        self._records[("agent", record.name)] = (token, record)
                    return record
            row = self._agent_row(conn, name_or_id)
            if row is None:
                names = [r.name for r in conn.execute(sa.select(agents_t.c.name))]
                raise NotFoundError(_not_found("agent", str(name_or_id), names), see="agents list")
            return AgentRecord.model_validate(row._mapping)

    def find_agent(self, name: str) -> AgentRecord | None:
        """The agent named ``name``, or None."""
        with self.db.read() as conn:
            row = self._agent_row(conn, name)
            return AgentRecord.model_validate(row._mapping) if row is not None else None

    def list_agents(self) -> list[AgentRecord]:
        """Every agent, by name."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(agents_t).order_by(agents_t.c.name)).all()
        return [AgentRecord.model_validate(r._mapping) for r in rows]

    def update_agent(
        self,
        name_or_id: str | uuid.UUID,
        *,
        name: str | None = None,
        description: str | None = None,
        config: AgentConfig | None = None,
    ) -> AgentRecord:
        """Rename an agent or change its description or config."""
        values: dict[str, Any] = {"updated_at": utcnow()}
        if name is not None:
            values["name"] = validate_name(name)
        if description is not None:
            values["description"] = description
        if config is not None:
            values["config"] = config.model_dump(mode="json")
        with self.db.write() as conn:
            row = self._require_agent(conn, name_or_id)
            if name is not None and name != row.name and self._agent_row(conn, name) is not None:
                raise AlreadyExistsError(f"an agent named {name!r} already exists")
            conn.execute(agents_t.update().where(agents_t.c.id == row.id).values(values))
            updated = conn.execute(sa.select(agents_t).where(agents_t.c.id == row.id)).one()
        return AgentRecord.model_validate(updated._mapping)

    def delete_agent(self, name_or_id: str | uuid.UUID) -> dict[str, int]:
        """Delete an agent with its sessions, messages, tool calls and keys.

        One transaction; children first (DuckDB cannot cascade). Returns the
        number of rows removed from each table.
        """
        with self.db.write() as conn:
            row = self._require_agent(conn, name_or_id)
            counts = _delete_sessions(conn, sessions_t.c.agent_id == row.id)
            counts["api_keys"] = conn.execute(
                api_keys_t.delete().where(api_keys_t.c.agent_id == row.id)).rowcount
            counts["agents"] = conn.execute(
                agents_t.delete().where(agents_t.c.id == row.id)).rowcount
        return counts

    def _agent_row(self, conn: Connection, name_or_id: str | uuid.UUID):
        if isinstance(name_or_id, uuid.UUID):
            clause = agents_t.c.id == name_or_id
        else:
            clause = agents_t.c.name == name_or_id
        return conn.execute(sa.select(agents_t).where(clause)).first()

    def _require_agent(self, conn: Connection, name_or_id: str | uuid.UUID):
        row = self._agent_row(conn, name_or_id)
        if row is None:
            names = [r.name for r in conn.execute(sa.select(agents_t.c.name))]
            raise NotFoundError(_not_found("agent", str(name_or_id), names), see="agents list")
        return row

    # -- sessions -------------------------------------------------------------
    def create_session(
        self,
        agent_id: uuid.UUID,
        *,
        title: str | None = None,
        user_id: str | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> SessionRecord:
        """A new, empty session of an agent."""
        now = utcnow()
        row = {
            "id": uuid.uuid4(),
            "agent_id": agent_id,
            "user_id": user_id,
            "title": title,
            "attrs": attrs or {},
            "created_at": now,
            "updated_at": now,
        }
        with self.db.write() as conn:
            self._require_agent(conn, agent_id)
            conn.execute(sessions_t.insert().values(row))
        return SessionRecord.model_validate(row)

    def get_session(self, session_id: str | uuid.UUID) -> SessionRecord:
        """A session by id or unique id prefix."""
        if isinstance(session_id, uuid.UUID):
            known = self._known(("session", session_id), session_id)
            if known is not None:  # nothing was written since it was read
                return known
        with self.db.read() as conn:
            if conn.dialect.name == "duckdb" and isinstance(session_id, uuid.UUID):
                token = self.db.token(session_id)
                found = _duckdb_row(conn, sessions_t, "id", session_id)
                if found is not None:
                    record = SessionRecord.model_validate(found)
                    if token is not None:
                        self._records[("session", session_id)] = (token, record)
                    return record
            return SessionRecord.model_validate(self._require_session(conn, session_id)._mapping)

    def latest_session(self, agent_id: uuid.UUID, *,
                       user_id: str | None = None) -> SessionRecord | None:
        """The agent's most recently active session, or None; ``user_id``: of that user
        (or of no recorded user)."""
        query = (sa.select(sessions_t).where(sessions_t.c.agent_id == agent_id)
                 .order_by(sessions_t.c.updated_at.desc()).limit(1))
        if user_id is not None:
            query = query.where(sa.or_(sessions_t.c.user_id == user_id,
                                       sessions_t.c.user_id.is_(None)))
        with self.db.read() as conn:
            row = conn.execute(query).first()
        return SessionRecord.model_validate(row._mapping) if row is not None else None

    def list_sessions(
        self, agent_id: uuid.UUID | None = None, *, limit: int | None = None,
        user_id: str | None = None,
    ) -> list[SessionSummary]:
        """Sessions (newest activity first) with message, turn and token counts;
        ``user_id``: only the sessions of that user."""
        m = messages_t
        stats = (
            sa.select(
                m.c.session_id,
                sa.func.count().label("messages"),
                sa.func.count().filter(m.c.role == "user").label("turns"),
                sa.func.coalesce(sa.func.sum(m.c.input_tokens), 0).label("input_tokens"),
                sa.func.coalesce(sa.func.sum(m.c.output_tokens), 0).label("output_tokens"),
                sa.func.max(m.c.created_at).label("last_activity"),
                sa.func.min(m.c.position).filter(m.c.role == "user").label("first_user_pos"),
            )
            .group_by(m.c.session_id)
            .subquery()
        )
        first = sa.select(m.c.content).where(
            m.c.session_id == sessions_t.c.id, m.c.position == stats.c.first_user_pos
        ).scalar_subquery()
        query = (
            sa.select(
                sessions_t,
                agents_t.c.name.label("agent_name"),
                stats.c.messages,
                stats.c.turns,
                stats.c.input_tokens,
                stats.c.output_tokens,
                stats.c.last_activity,
                first.label("first_message"),
            )
            .join(agents_t, agents_t.c.id == sessions_t.c.agent_id)
            .outerjoin(stats, stats.c.session_id == sessions_t.c.id)
            .order_by(sessions_t.c.updated_at.desc())
        )
        if agent_id is not None:
            query = query.where(sessions_t.c.agent_id == agent_id)
        if user_id is not None:
            query = query.where(sessions_t.c.user_id == user_id)
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        out = []
        for r in rows:
            mp = r._mapping
            session = SessionRecord.model_validate({c.name: mp[c.name] for c in sessions_t.c})
            out.append(
                SessionSummary(
                    session=session,
                    agent_name=mp["agent_name"],
                    messages=mp["messages"] or 0,
                    turns=mp["turns"] or 0,
                    input_tokens=mp["input_tokens"] or 0,
                    output_tokens=mp["output_tokens"] or 0,
                    first_message=mp["first_message"],
                    last_activity=_aware(mp["last_activity"]),
                )
            )
        return out

    def session_counts(self, *, user_id: str | None = None) -> dict[str, int]:
        """Sessions per agent name, counted by the database (agents without any left out);
        ``user_id``: only that user's sessions."""
        query = (
            sa.select(agents_t.c.name, sa.func.count())
            .select_from(sessions_t)
            .join(agents_t, agents_t.c.id == sessions_t.c.agent_id)
            .group_by(agents_t.c.name)
        )
        if user_id is not None:
            query = query.where(sessions_t.c.user_id == user_id)
        with self.db.read() as conn:
            return {name: int(n) for name, n in conn.execute(query).all()}

    def update_session(
        self,
        session_id: uuid.UUID,
        *,
        title: str | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> SessionRecord:
        """Set a session's title or replace its attrs."""
        values: dict[str, Any] = {"updated_at": utcnow()}
        if title is not None:
            values["title"] = title
        if attrs is not None:
            values["attrs"] = attrs
        with self.db.write() as conn:
            row = self._require_session(conn, session_id)
            conn.execute(sessions_t.update().where(sessions_t.c.id == row.id).values(values))
            updated = conn.execute(sa.select(sessions_t).where(sessions_t.c.id == row.id)).one()
        return SessionRecord.model_validate(updated._mapping)

    def delete_session(self, session_id: str | uuid.UUID) -> dict[str, int]:
        """Delete one session with its messages and tool calls."""
        with self.db.write() as conn:
            row = self._require_session(conn, session_id)
            return _delete_sessions(conn, sessions_t.c.id == row.id)

    def _require_session(self, conn: Connection, session_id: str | uuid.UUID):
        return _one_by_id(conn, sessions_t, session_id, "session", "sessions list")

    # -- messages -------------------------------------------------------------
    def append_turn(
        self, session_id: uuid.UUID, messages: Sequence[NewMessage],
        versions: list | None = None,
    ) -> list[MessageRecord]:
        """Append the messages of one turn (with their tool calls) in one transaction.

        On DuckDB the rows go in as one multi-row INSERT per table on the
        driver connection (no SQL compilation per call: duckdb-engine has no
        statement cache), and the next position comes from a per-session
        cache validated by the session's ``updated_at`` stamp (see
        :func:`_duckdb_append`) instead of a ``max(position)`` scan.

        ``versions``: a list that receives the session's token before and after
        this write (see :mod:`.versions`; Nones when unknown), so a cache that
        was valid before it can stay valid with this turn added.
        """
        if not messages:
            return []
        now = utcnow()
        message_rows: list[dict[str, Any]] = []
        call_rows: list[dict[str, Any]] = []
        records: list[MessageRecord] = []
        positions: dict[uuid.UUID, tuple[int, datetime]] = self.__dict__.setdefault(
            "_next_positions", {}
        )
        with self.db.write(session=session_id) as conn:
            before = self.db.token(session_id)  # this process's writers wait for us
            fast = conn.dialect.name == "duckdb"
            if fast:
                next_pos = _duckdb_claim_positions(conn, session_id, now, positions)
            else:
                if conn.dialect.name == "postgresql":
                    # Writers of one session in other processes: the row lock queues them,
                    # so each reads max(position) after the previous turn committed
                    # (READ COMMITTED takes a new snapshot per statement).
                    conn.execute(sa.select(sessions_t.c.id).where(
                        sessions_t.c.id == session_id).with_for_update())
                next_pos = conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(messages_t.c.position), -1)).where(
                        messages_t.c.session_id == session_id
                    )
                ).scalar_one() + 1
            for offset, msg in enumerate(messages):
                message_id = uuid.uuid4()
                created = msg.created_at or now
                tokens = (
                    (msg.input_tokens or 0) + (msg.output_tokens or 0)
                    if msg.input_tokens is not None or msg.output_tokens is not None
                    else None
                )
                mrow = {
                    "id": message_id,
                    "session_id": session_id,
                    "position": next_pos + offset,
                    "role": msg.role,
                    "content": msg.content,
                    "attrs": msg.attrs,
                    "input_tokens": msg.input_tokens,
                    "output_tokens": msg.output_tokens,
                    "tokens_used": tokens,
                    "model": msg.model,
                    "status": msg.status,
                    "created_at": created,
                }
                message_rows.append(mrow)
                calls = []
                for call in msg.tool_calls:
                    crow = {
                        "id": call.id or uuid.uuid4(),
                        "message_id": message_id,
                        "tool_name": call.tool_name,
                        "input_args": call.input_args,
                        "output": call.output,
                        "status": call.status,
                        "error_message": call.error_message,
                        "execution_time_ms": call.execution_time_ms,
                        "created_at": call.created_at or created,
                        "updated_at": now,
                        "attrs": call.attrs,
                    }
                    call_rows.append(crow)
                    calls.append(ToolCallRecord.model_validate(crow))
                records.append(MessageRecord.model_validate({**mrow, "tool_calls": tuple(calls)}))
            if fast:
                _duckdb_insert(conn, messages_t, message_rows)
                _duckdb_insert(conn, tool_calls_t, call_rows)
            else:
                conn.execute(messages_t.insert(), message_rows)
                if call_rows:
                    conn.execute(tool_calls_t.insert(), call_rows)
                conn.execute(
                    sessions_t.update().where(sessions_t.c.id == session_id).values(updated_at=now)
                )
        if fast:  # committed: remember where this session continues
            positions[session_id] = (next_pos + len(messages), _naive_utc(now))
        after = before[:-1] + (before[-1] + 1,) if before is not None else None
        key = ("session", session_id)
        hit = self._records.get(key)
        if hit is not None:
            if before is not None and hit[0] == before:  # still right, but for updated_at
                self._records[key] = (after, hit[1].model_copy(update={"updated_at": now}))
            else:
                self._records.pop(key, None)
        if versions is not None:
            versions[:] = [before, after]
        return records

    def newest_message_id(self, session_id: uuid.UUID) -> uuid.UUID | None:
        """The id of the session's newest message (None when it has none).

        What the engine's history cache checks before every turn, so it is
        one narrow query (a plain one on the driver connection on DuckDB).
        """
        with self.db.read() as conn:
            if conn.dialect.name == "duckdb":
                row = conn.connection.driver_connection.execute(
                    "SELECT id FROM messages WHERE session_id = ? "
                    "ORDER BY position DESC LIMIT 1", [session_id]).fetchone()
            else:
                row = conn.execute(
                    sa.select(messages_t.c.id).where(messages_t.c.session_id == session_id)
                    .order_by(messages_t.c.position.desc()).limit(1)).first()
        if row is None:
            return None
        value = row[0]
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    def history(
        self, session_id: uuid.UUID, *, last: int | None = None, with_tool_calls: bool = True
    ) -> list[MessageRecord]:
        """A session's messages in order; ``last=N`` gives only the newest N."""
        if self.db.dialect == "duckdb":  # (elsewhere: no extra connection just to ask)
            with self.db.read() as conn:
                return _duckdb_history(conn, session_id, last, with_tool_calls)
        query = sa.select(messages_t).where(messages_t.c.session_id == session_id)
        with self.db.read() as conn:
            if last is not None:
                rows = conn.execute(
                    query.order_by(messages_t.c.position.desc()).limit(last)
                ).all()
                rows.reverse()
            else:
                rows = conn.execute(query.order_by(messages_t.c.position)).all()
            calls: dict[uuid.UUID, list[ToolCallRecord]] = {}
            if with_tool_calls and rows:
                ids = [r.id for r in rows if r.role == "assistant"]
                for chunk in _chunks(ids, 500):
                    for c in conn.execute(
                        sa.select(tool_calls_t)
                        .where(tool_calls_t.c.message_id.in_(chunk))
                        .order_by(tool_calls_t.c.created_at)
                    ):
                        calls.setdefault(c.message_id, []).append(
                            ToolCallRecord.model_validate(c._mapping)
                        )
        return [
            MessageRecord.model_validate({**r._mapping, "tool_calls": tuple(calls.get(r.id, ()))})
            for r in rows
        ]

    def search_messages(
        self, text: str, *, agent_id: uuid.UUID | None = None, limit: int = 50
    ) -> list[tuple[str, MessageRecord]]:
        """Messages whose content contains ``text`` (case-insensitive), newest first."""
        query = (
            sa.select(messages_t, agents_t.c.name.label("agent_name"))
            .join(sessions_t, sessions_t.c.id == messages_t.c.session_id)
            .join(agents_t, agents_t.c.id == sessions_t.c.agent_id)
            .where(sa.func.lower(messages_t.c.content).contains(text.lower()))
            .order_by(messages_t.c.created_at.desc())
            .limit(limit)
        )
        if agent_id is not None:
            query = query.where(sessions_t.c.agent_id == agent_id)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        cols = [c.name for c in messages_t.c]
        return [
            (r.agent_name, MessageRecord.model_validate({c: r._mapping[c] for c in cols}))
            for r in rows
        ]

    # -- api keys -------------------------------------------------------------
    def create_key(self, agent: str | uuid.UUID | None, name: str = "default", *,
                   admin: bool = False) -> NewApiKey:
        """A new key for an agent, or (``admin``) for the whole store.

        The plain key is in the result, and only there.
        """
        if admin == (agent is not None):
            raise InvalidValueError("a key is either an agent's key or an admin key")
        plain = keymat.generate_key()
        with self.db.write() as conn:
            agent_id = self._require_agent(conn, agent).id if agent is not None else None
            row = {
                "id": uuid.uuid4(),
                "agent_id": agent_id,
                "scope": "admin" if admin else "agent",
                "name": name,
                "key_prefix": keymat.key_prefix(plain),
                "key_hash": keymat.hash_key(plain),
                "is_active": True,
                "created_at": utcnow(),
                "last_used_at": None,
            }
            conn.execute(api_keys_t.insert().values(row))
        return NewApiKey(record=ApiKeyRecord.model_validate(row), key=plain)

    def list_keys(self, agent: str | uuid.UUID | None = None) -> list[ApiKeyRecord]:
        """Keys (never their secret), newest first, optionally of one agent."""
        query = sa.select(api_keys_t).order_by(api_keys_t.c.created_at.desc())
        with self.db.read() as conn:
            if agent is not None:
                query = query.where(api_keys_t.c.agent_id == self._require_agent(conn, agent).id)
            rows = conn.execute(query).all()
        return [ApiKeyRecord.model_validate(r._mapping) for r in rows]

    def revoke_key(self, key_id: str | uuid.UUID) -> ApiKeyRecord:
        """Deactivate a key by id or unique id prefix."""
        with self.db.write() as conn:
            found = _one_by_id(conn, api_keys_t, key_id, "API key", "keys list")
            conn.execute(
                api_keys_t.update().where(api_keys_t.c.id == found.id).values(is_active=False)
            )
            row = conn.execute(sa.select(api_keys_t).where(api_keys_t.c.id == found.id)).one()
        return ApiKeyRecord.model_validate(row._mapping)

    def verify_key(self, plain: str) -> ApiKeyRecord | None:
        """The active key record matching ``plain`` (and mark it used), else None.

        The lookup is by hash, and the final comparison is constant-time, so
        timing does not reveal how much of a guessed key was right.
        ``last_used_at`` is written at most once per :data:`LAST_USED_EVERY`
        per key: a server verifying a key on every request reads, and writes
        only about once a minute.
        """
        if not isinstance(plain, str) or not plain.startswith(keymat.KEY_PREFIX):
            return None
        digest = keymat.hash_key(plain)
        with self.db.read() as conn:
            if conn.dialect.name == "duckdb":  # every HTTP request reads it: no SQL compilation
                row = _duckdb_row(conn, api_keys_t, "key_hash", digest)
                if row is not None and not row["is_active"]:
                    row = None
            else:
                found = conn.execute(sa.select(api_keys_t).where(
                    api_keys_t.c.key_hash == digest, api_keys_t.c.is_active.is_(True))).first()
                row = dict(found._mapping) if found is not None else None
        if row is None or not keymat.hashes_match(plain, row["key_hash"]):
            return None
        now = utcnow()
        last = row["last_used_at"]
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=now.tzinfo)
        if last is not None and now - last < LAST_USED_EVERY:
            return ApiKeyRecord.model_validate(row)
        with self.db.write() as conn:
            conn.execute(
                api_keys_t.update().where(api_keys_t.c.id == row["id"]).values(last_used_at=now)
            )
        return ApiKeyRecord.model_validate({**row, "last_used_at": now})

    # -- usage ----------------------------------------------------------------
    def usage(self, by: UsageBy = "agent", *, agent_id: uuid.UUID | None = None) -> list[UsageRow]:
        """Token and tool-call totals grouped by agent, session, model, day or user."""
        m, s, a, t = messages_t, sessions_t, agents_t, tool_calls_t
        turns = sa.func.count().filter(m.c.role == "user")
        if by == "model":
            # Only assistant messages name a model, so a turn counts for the model of its
            # first answer: an assistant message right after the user's message.
            prev_role = sa.func.lag(m.c.role).over(partition_by=m.c.session_id,
                                                  order_by=m.c.position)
            m = sa.select(*messages_t.c, prev_role.label("prev_role")).subquery("m")
            turns = sa.func.count().filter(sa.and_(m.c.role == "assistant",
                                                   m.c.prev_role == "user"))
        if by == "agent":
            key = a.c.name
        elif by == "session":
            key = sa.cast(s.c.id, sa.String)
        elif by == "model":
            key = sa.func.coalesce(m.c.model, "")
        elif by == "user":  # who started the session (sessions.user_id); "" when unknown
            key = sa.func.coalesce(s.c.user_id, "")
        elif by == "day":
            key = sa.cast(sa.func.date(m.c.created_at), sa.String) if self.db.dialect != "duckdb" \
                else sa.cast(sa.cast(m.c.created_at, sa.Date), sa.String)
        else:
            raise InvalidValueError(f"usage by {by!r}: choose agent, session, model, day or user")
        calls = (
            sa.select(t.c.message_id, sa.func.count().label("n")).group_by(t.c.message_id).subquery()
        )
        query = (
            sa.select(
                key.label("key"),
                turns.label("turns"),
                sa.func.count().label("messages"),
                sa.func.coalesce(sa.func.sum(m.c.input_tokens), 0).label("input_tokens"),
                sa.func.coalesce(sa.func.sum(m.c.output_tokens), 0).label("output_tokens"),
                sa.func.coalesce(sa.func.sum(calls.c.n), 0).label("tool_calls"),
            )
            .select_from(m)
            .join(s, s.c.id == m.c.session_id)
            .join(a, a.c.id == s.c.agent_id)
            .outerjoin(calls, calls.c.message_id == m.c.id)
            .group_by(key)
            .order_by(key)
        )
        if by == "model":
            query = query.where(m.c.role == "assistant")
        if agent_id is not None:
            query = query.where(s.c.agent_id == agent_id)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [
            UsageRow(
                key=_canonical_id(r.key) if by == "session" else str(r.key),
                turns=int(r.turns or 0),
                messages=int(r.messages or 0),
                input_tokens=int(r.input_tokens or 0),
                output_tokens=int(r.output_tokens or 0),
                tool_calls=int(r.tool_calls or 0),
            )
            for r in rows
        ]

    # -- counts ---------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Row count of each table."""
        with self.db.read() as conn:
            return {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in (agents_t, sessions_t, messages_t, tool_calls_t, api_keys_t)
            }


def _one_by_id(conn: Connection, table: sa.Table, wanted: str | uuid.UUID, kind: str,
               listing: str):
    """The one row whose id is ``wanted`` or starts with it; clear errors otherwise.

    ``listing``: the command that lists the ids (``"sessions list"``).
    """
    rows = conn.execute(sa.select(table).where(id_clause(table.c.id, wanted)).limit(2)).all()
    if not rows:
        raise NotFoundError(f"no {kind} {excerpt(str(wanted), 40)[1:-1]}", see=listing)
    if len(rows) > 1:
        raise InvalidValueError(f"{kind} id prefix {wanted!s} is ambiguous; type more digits")
    return rows[0]


def _not_found(kind: str, wanted: str, names: Iterable[str]) -> str:
    names = list(names)
    close = did_you_mean(wanted, names)
    shown = excerpt(wanted)
    if close:
        return f"no {kind} named {shown}; did you mean {close!r}?"
    if names:
        return f"no {kind} named {shown} (have: {', '.join(sorted(names)[:10])})"
    return f"no {kind} named {shown} (none exist yet; create one first)"


def _delete_sessions(conn: Connection, which: sa.ColumnElement[bool]) -> dict[str, int]:
    """Delete the sessions ``which`` selects with their messages and tool calls, children
    first (DuckDB cannot cascade); rows removed per table."""
    session_ids = sa.select(sessions_t.c.id).where(which)
    message_ids = sa.select(messages_t.c.id).where(messages_t.c.session_id.in_(session_ids))
    return {
        "tool_calls": conn.execute(
            tool_calls_t.delete().where(tool_calls_t.c.message_id.in_(message_ids))).rowcount,
        "messages": conn.execute(
            messages_t.delete().where(messages_t.c.session_id.in_(session_ids))).rowcount,
        "sessions": conn.execute(sessions_t.delete().where(which)).rowcount,
    }


def _canonical_id(value: Any) -> str:
    """An id as text the same way on every dialect (SQLite keeps UUIDs as 32 hex digits)."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return str(value)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    from datetime import timezone

    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# -- DuckDB fast path of append_turn ---------------------------------------------
def _naive_utc(value: datetime) -> datetime:
    """How :class:`~agentnb.store.types.UTCDateTime` stores a datetime."""
    from datetime import timezone

    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _duckdb_claim_positions(
    conn: Connection,
    session_id: uuid.UUID,
    now: datetime,
    positions: dict[uuid.UUID, tuple[int, datetime]],
) -> int:
    """Stamp the session's ``updated_at`` and return its next message position.

    ``positions`` maps a session to (next position, the ``updated_at`` this
    process wrote with it). If the stamp is still the session's, nobody (no
    other process, thread or store object) appended since, so the cached
    position is right; the check is folded into the UPDATE the turn does
    anyway. Otherwise the position comes from ``max(position)``. The caller
    stores the new pair only after the commit.
    """
    raw = conn.connection.driver_connection
    stamp = _naive_utc(now)
    cached = positions.pop(session_id, None)
    if cached is not None:
        hit = raw.execute(
            "UPDATE sessions SET updated_at = ? WHERE id = ? AND updated_at = ? RETURNING id",
            [stamp, session_id, cached[1]],
        ).fetchall()
        if hit:
            return cached[0]
    raw.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", [stamp, session_id])
    last = raw.execute(
        "SELECT max(position) FROM messages WHERE session_id = ?", [session_id]
    ).fetchone()[0]
    return 0 if last is None else last + 1


def _duckdb_insert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """One multi-row INSERT on the driver connection, values as the column types bind them."""
    if not rows:
        return
    cols = list(rows[0])
    params: list[Any] = []
    for row in rows:
        for name in cols:
            value = row[name]
            if isinstance(value, datetime):
                value = _naive_utc(value)
            elif isinstance(value, (dict, list)):
                value = json.dumps(value)
            params.append(value)
    one = "(" + ", ".join(["?"] * len(cols)) + ")"
    sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES " + ", ".join([one] * len(rows))
    conn.connection.driver_connection.execute(sql, params)


_MESSAGE_COLS = [c.name for c in messages_t.c]
_CALL_COLS = [c.name for c in tool_calls_t.c]
_JSON_COLS = {"attrs", "input_args", "config"}
_TIME_COLS = {"created_at", "updated_at"}


def _duckdb_records(cols: list[str], rows: list[tuple],
                    **known: Any) -> list[dict[str, Any]]:
    """Driver rows as the column types would load them (aware UTC times, parsed JSON).

    ``known``: columns not fetched because every row has the same value (the
    session a history was read by), added to each record.
    """
    from datetime import timezone

    json_at = [i for i, c in enumerate(cols) if c in _JSON_COLS]
    time_at = [i for i, c in enumerate(cols) if c in _TIME_COLS]
    out = []
    for row in rows:
        values = list(row)
        for i in json_at:
            value = values[i]
            if value == "{}":  # most rows' attrs: skip the parser (a new dict for each row)
                values[i] = {}
            elif isinstance(value, str):
                values[i] = json.loads(value)
        for i in time_at:
            if values[i] is not None:
                values[i] = values[i].replace(tzinfo=timezone.utc)
        record = dict(zip(cols, values))
        if known:
            record.update(known)
        out.append(record)
    return out


def _duckdb_row(conn: Connection, table: sa.Table, column: str,
                value: Any) -> dict[str, Any] | None:
    """The row of ``table`` whose ``column`` is ``value``, loaded as the column types would
    (see :func:`_duckdb_records`), by a plain query on the driver connection; or None."""
    cols = [c.name for c in table.c]
    row = conn.connection.driver_connection.execute(
        f"SELECT {', '.join(cols)} FROM {table.name} WHERE {column} = ? LIMIT 1", [value]
    ).fetchone()
    return _duckdb_records(cols, [row])[0] if row is not None else None


def _duckdb_history(
    conn: Connection, session_id: uuid.UUID, last: int | None, with_tool_calls: bool
) -> list[MessageRecord]:
    """``Repository.history`` on DuckDB: two plain queries on the driver connection.

    No SQL compilation per call; the newest ``last`` messages come from a
    top-N query (DuckDB prunes row groups with a dynamic filter on
    ``position``); their tool calls from one ``IN`` list, or for the whole
    history from a join on the session.
    """
    raw = conn.connection.driver_connection
    # session_id is what the rows are read by: not fetched (DuckDB would build a UUID
    # object for every row), the caller's value is put in each record
    fetched = [c for c in _MESSAGE_COLS if c != "session_id"]
    mcols = ", ".join(fetched)
    if last is not None:
        sql = (
            f"SELECT {mcols} FROM (SELECT {mcols} FROM messages WHERE session_id = ? "
            "ORDER BY position DESC LIMIT ?) ORDER BY position"
        )
        rows = raw.execute(sql, [session_id, max(int(last), 0)]).fetchall()
    else:
        sql = f"SELECT {mcols} FROM messages WHERE session_id = ? ORDER BY position"
        rows = raw.execute(sql, [session_id]).fetchall()
    messages = _duckdb_records(fetched, rows, session_id=session_id)
    calls: dict[uuid.UUID, list[ToolCallRecord]] = {}
    if with_tool_calls and messages:
        ccols = ", ".join(f"t.{c}" for c in _CALL_COLS)
        ids = [m["id"] for m in messages if m["role"] == "assistant"]
        if last is None:
            call_rows = raw.execute(
                f"SELECT {ccols} FROM tool_calls t JOIN messages m ON m.id = t.message_id "
                "WHERE m.session_id = ? ORDER BY t.created_at",
                [session_id],
            ).fetchall()
        elif ids:
            call_rows = raw.execute(
                f"SELECT {ccols} FROM tool_calls t WHERE t.message_id IN "
                f"({', '.join(['?'] * len(ids))}) ORDER BY t.created_at",
                ids,
            ).fetchall()
        else:
            call_rows = []
        wanted = set(ids)
        for c in _duckdb_records(_CALL_COLS, call_rows):
            if c["message_id"] in wanted:
                calls.setdefault(c["message_id"], []).append(ToolCallRecord.model_validate(c))
    for m in messages:
        m["tool_calls"] = tuple(calls.get(m["id"], ()))
    return [MessageRecord.model_validate(m) for m in messages]


__all__ = ["Repository", "validate_name", "short_id"]
