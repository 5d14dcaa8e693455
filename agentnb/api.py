"""The Python API: ``agentnb.connect()`` and the objects it returns.

Every front end (the magics, the widgets, the CLI, HTTP, MCP) is built on this
module, and it is the only door to the store::

    store = agentnb.connect()                 # the default store
    agent = store.create_agent("calc", model="offline", system="You add numbers.")
    store.agents(); store.sessions(); store.usage(by="model")
    store.sql("select role, count(*) from messages group by role")

A :class:`Store` is the records side (agents, sessions, messages, keys, usage,
SQL, the schema); its :attr:`Store.runtime` (:class:`~agentnb.runtime.Runtime`)
runs turns. :func:`connect` composes the two.
"""

from __future__ import annotations

import atexit
import logging
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping

from pydantic import BaseModel, ConfigDict

from .agentconfig import UNSET, apply_changes
from .config import Settings, load_settings, mask_url
from .errors import AlreadyExistsError, InvalidValueError, StoreNotFoundError
from .export import ExportFormat, export_session
from .runtime import Runtime
from .schemas import (
    AgentConfig,
    AgentRecord,
    ApiKeyRecord,
    MemoryConfig,
    MessageRecord,
    NewApiKey,
    SessionRecord,
    SessionSummary,
    UsageRow,
)
from .store import Database, Repository
from .store.readonly import run_readonly

if TYPE_CHECKING:  # pragma: no cover
    from .store.copy import CopyReport
    import pandas as pd

    from .agent import Agent


log = logging.getLogger(__name__)

UsageBy = Literal["agent", "session", "model", "day", "user"]

#: Stores not closed yet. A store left open at exit (IPython keeps the user's
#: namespace alive to the end) leaves DuckDB objects for the interpreter's final
#: teardown, and duckdb's bindings then print "nanobind: leaked ... instances";
#: closing them first releases them (and the file) in order.
_OPEN_STORES: "weakref.WeakSet[Store]" = weakref.WeakSet()


@atexit.register
def _close_open_stores() -> None:
    for store in list(_OPEN_STORES):
        try:
            store.close()
        except Exception:  # exiting anyway: never turn a clean exit into a traceback
            log.debug("closing a store at exit failed", exc_info=True)


class SchemaStatus(BaseModel):
    """Where a store's schema stands: its revision and this agentnb's newest."""

    model_config = ConfigDict(frozen=True)

    url: str  #: masked: safe to show
    revision: str | None
    head: str

    @property
    def is_head(self) -> bool:
        return self.revision == self.head

    @property
    def state(self) -> Literal["empty", "head", "older", "newer"]:
        """``empty`` (no schema yet), ``head``, ``older`` (upgradable) or ``newer``."""
        from .store import migrate

        if self.revision is None:
            return "empty"
        if self.revision == self.head:
            return "head"
        return "older" if migrate.known_revision(self.revision) else "newer"


class Migration(BaseModel):
    """What ``upgrade``/``downgrade``/``init`` did: the revision before and after."""

    model_config = ConfigDict(frozen=True)

    before: str | None
    after: str | None


class Store:
    """A connection to one agentnb store (a DuckDB file by default).

    Cheap to create; it opens the database file only while it works and
    releases it when idle, so several kernels and the CLI can share a store.
    """

    def __init__(self, settings: Settings, *, auto_upgrade: bool = True,
                 namespace: dict[str, Any] | None = None, create: bool = True) -> None:
        """``create=False``: raise :class:`~agentnb.errors.StoreNotFoundError` when there is
        no store at the address instead of creating one (read-only commands)."""
        self.settings = settings
        self.url = settings.url
        self._db = Database(
            self.url,
            lock_timeout=settings.lock_timeout,
            idle_release=settings.idle_release,
            auto_upgrade=auto_upgrade,
        )
        if not create and not self._db.exists():
            self._db.close()
            raise StoreNotFoundError(
                f"there is no agentnb store at {mask_url(self.url)} yet; check the address, "
                "or create the store", see="init")
        self._repo = Repository(self._db)
        #: What runs this store's turns in this process (engine, loop thread, tools, models).
        self.runtime = Runtime(self._repo, namespace=namespace, sql_rows=self.sql_rows)
        _OPEN_STORES.add(self)

    def __repr__(self) -> str:
        return f"<agentnb.Store {mask_url(self.url)}>"

    @property
    def display_url(self) -> str:
        """The store's URL with every secret masked: what front ends show."""
        return mask_url(self.url)

    @property
    def tools(self):
        """The process's tool registry (``runtime.tools``): register notebook functions here."""
        return self.runtime.tools

    # -- lifecycle and schema ----------------------------------------------------
    def init(self) -> Migration:
        """Create or upgrade the schema now; the revision before and after."""
        before = self.schema_status().revision
        self._db.ensure_schema()
        return Migration(before=before, after=self.schema_status().revision)

    def schema_status(self) -> SchemaStatus:
        """The store's schema revision and this agentnb's newest (touches nothing)."""
        from .store import migrate

        with self._db.raw() as conn:
            revision = migrate.current_revision(conn)
        return SchemaStatus(url=self.display_url, revision=revision,
                            head=migrate.head_revision())

    def migrate(self, direction: Literal["upgrade", "downgrade"], revision: str) -> Migration:
        """Upgrade or downgrade the schema to ``revision`` (``head``, ``base``, an id)."""
        from .store import migrate

        if direction not in ("upgrade", "downgrade"):
            raise InvalidValueError(f"migrate: {direction!r} is neither upgrade nor downgrade")
        if not isinstance(revision, str) or not revision.strip():
            raise InvalidValueError("give a revision: head, base or a revision id")
        with self._db.raw() as conn:
            before = migrate.current_revision(conn)
            getattr(migrate, direction)(conn, revision.strip())
            after = migrate.current_revision(conn)
        return Migration(before=before, after=after)

    def copy_to(self, url: str, *, merge: bool = False, progress: Any = None) -> "CopyReport":
        """Copy this store's agents, sessions, messages, tool calls and keys into ``url``.

        The target is created or upgraded, must be empty unless ``merge``, and is
        written in one transaction verified by row counts and id checksums; this
        store is only read. ``progress(table, done, total)`` is called per batch.
        """
        from .store.copy import copy_store, open_target

        target = open_target(url, lock_timeout=self.settings.lock_timeout)
        try:
            return copy_store(self._db, target, merge=merge, progress=progress)
        finally:
            target.close()

    def copy_from(self, url: str, *, merge: bool = False, progress: Any = None) -> "CopyReport":
        """Copy the store at ``url`` into this one (the other side of :meth:`copy_to`);
        the store at ``url`` is only read and must exist."""
        from .store.copy import copy_store, open_source

        source = open_source(url, lock_timeout=self.settings.lock_timeout)
        try:
            return copy_store(source, self._db, merge=merge, progress=progress)
        finally:
            source.close()

    def close(self) -> None:
        """Stop the loop thread and release the database file."""
        self.runtime.close()
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- agents ---------------------------------------------------------------
    def create_agent(
        self,
        name: str,
        *,
        model: str | None = None,
        system: str | None = None,
        template: str | None = None,
        description: str = "",
        tools: Iterable[str] | None = None,
        memory: str | Mapping[str, Any] | MemoryConfig | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
        **config: Any,
    ) -> "Agent":
        """Create an agent and return its handle.

        ``template`` starts from a built-in or user template; the other
        arguments override it. ``memory`` is a strategy name (``"window"``)
        or a mapping of memory settings. Extra keyword arguments are config
        fields or model settings (``max_iterations=4``, ``temperature=0``).
        Everything is validated first (the model spec, the settings against
        the model's own parameters). ``exist_ok``: an agent of that name is
        returned as it is instead of raising :class:`AlreadyExistsError`.
        """
        if exist_ok:
            found = self._repo.find_agent(name) if isinstance(name, str) else None
            if found is not None:
                return self._handle(found)
        base: dict[str, Any] = {}
        if template is not None:
            from .templates import load_template

            tpl = load_template(template, self.settings)
            base = tpl.config.model_dump()
            description = description or tpl.description
        changes: dict[str, Any] = {"model": model or base.get("model")
                                   or self.settings.default_model}
        if system is not None:
            changes["system"] = system
        if tools is not None:
            changes["tools"] = list(tools)
        if model_kwargs is not None:
            changes["model_kwargs"] = {**base.get("model_kwargs", {}), **dict(model_kwargs)}
        if memory is not None:
            changes["memory"] = memory.model_dump() if isinstance(memory, MemoryConfig) else memory
        changes.update(config)
        cfg = apply_changes(AgentConfig.model_validate(base), changes)
        try:
            record = self._repo.create_agent(name, cfg, description=description,
                                             template=template)
        except AlreadyExistsError:
            if exist_ok:
                return self.agent(name)
            raise
        return self._handle(record)

    def agent(self, name: str) -> "Agent":
        """The handle of an existing agent (NotFoundError suggests close names)."""
        return self._handle(self._repo.get_agent(name))

    def find_agent(self, name: str) -> AgentRecord | None:
        """The record of the agent called ``name``, or None."""
        return self._repo.find_agent(name)

    def get_agent(self, name_or_id: str | uuid.UUID) -> AgentRecord:
        """The record of an agent by name or id (NotFoundError suggests close names)."""
        return self._repo.get_agent(name_or_id)

    def agents(self) -> list[AgentRecord]:
        """Every agent's record, by name."""
        return self._repo.list_agents()

    def update_agent(
        self,
        name: str,
        /,
        *,
        rename: str | None = None,
        description: str | None = None,
        unset: Iterable[str] = (),
        **changes: Any,
    ) -> AgentRecord:
        """Change an agent: rename it, set its description, set or ``unset`` config keys.

        ``changes`` are config keys and model settings (see
        :mod:`agentnb.agentconfig`); a value of None removes the key. Everything
        is validated before anything is stored.
        """
        record = self._repo.get_agent(name)
        all_changes = {**changes, **{key: UNSET for key in unset}}
        for key in ("name", "description"):
            if key in all_changes:
                value = all_changes.pop(key)
                if key == "name":
                    if value is UNSET or value is None:
                        raise InvalidValueError("name: an agent must have a name")
                    rename = str(value)
                else:
                    description = "" if value is UNSET or value is None else str(value)
        config = apply_changes(record.config, all_changes) if all_changes else None
        return self._repo.update_agent(record.id, name=rename, description=description,
                                       config=config)

    def delete_agent(self, name: str) -> dict[str, int]:
        """Delete an agent and everything it owns; returns rows removed per table."""
        return self._repo.delete_agent(name)

    def _handle(self, record: AgentRecord) -> "Agent":
        from .agent import Agent

        return Agent(self, record)

    # -- sessions -------------------------------------------------------------
    def sessions(self, agent: str | None = None, *, limit: int | None = None,
                 user: str | None = None) -> list[SessionSummary]:
        """Sessions with their counts, newest first; optionally of one agent, of one user
        (the ``user_id`` they were started with: ``AGENTNB_USER``, else the OS user)."""
        agent_id = self._repo.get_agent(agent).id if agent else None
        return self._repo.list_sessions(agent_id, limit=limit, user_id=user)

    def session(self, session_id: str | uuid.UUID) -> SessionRecord:
        """A session by id or unique prefix."""
        return self._repo.get_session(session_id)

    def session_summary(self, session_id: str | uuid.UUID) -> SessionSummary:
        """A session with its figures (messages, turns, tokens, first message)."""
        session = self._repo.get_session(session_id)
        for summary in self._repo.list_sessions(session.agent_id):
            if summary.session.id == session.id:
                return summary
        raise AssertionError("a session that exists is listed")  # pragma: no cover

    def latest_session(self, agent: str | uuid.UUID, *,
                       user: str | None = None) -> SessionRecord | None:
        """The agent's most recently active session, or None; ``user``: the latest of
        that user's sessions (and of sessions without a recorded user)."""
        agent_id = agent if isinstance(agent, uuid.UUID) else self._repo.get_agent(agent).id
        return self._repo.latest_session(agent_id, user_id=user)

    def new_session(self, agent: str | uuid.UUID, *, title: str | None = None,
                    user: str | None = None, **attrs: Any) -> SessionRecord:
        """A new, empty session of ``agent``; ``attrs`` record where it started.

        ``user``: who the session is for (default: the ``user`` setting, else
        the OS user).
        """
        agent_id = agent if isinstance(agent, uuid.UUID) else self._repo.get_agent(agent).id
        return self._repo.create_session(agent_id, title=title,
                                         user_id=user or self.settings.user_name,
                                         attrs=attrs)

    def session_counts(self, *, user: str | None = None) -> dict[str, int]:
        """How many sessions each agent has, by agent name (agents without any are left out);
        ``user``: only that user's sessions."""
        return self._repo.session_counts(user_id=user)

    def history(self, session_id: str | uuid.UUID, *,
                last: int | None = None) -> list[MessageRecord]:
        """A session's messages (with tool calls), oldest first."""
        session = self._repo.get_session(session_id)
        return self._repo.history(session.id, last=last)

    def export(self, session_id: str | uuid.UUID, fmt: ExportFormat = "md") -> str:
        """A session as Markdown (``md``) or JSON (``json``) text."""
        if fmt not in ("md", "json"):
            raise InvalidValueError(f"unknown export format {fmt!r}: choose md or json")
        session = self._repo.get_session(session_id)
        agent = self._repo.get_agent(session.agent_id)
        return export_session(session, agent.name, self._repo.history(session.id), fmt)

    def search(self, text: str, *, agent: str | None = None, limit: int = 50):
        """Messages containing ``text``, newest first, as (agent name, message) pairs."""
        agent_id = self._repo.get_agent(agent).id if agent else None
        return self._repo.search_messages(text, agent_id=agent_id, limit=limit)

    # -- keys -----------------------------------------------------------------
    def create_key(self, agent: str | None = None, name: str = "default", *,
                   admin: bool = False) -> NewApiKey:
        """A new API key for ``agent`` (or, with ``admin``, for the whole store).

        ``.key`` is the secret, shown only this once; the store keeps its hash.
        """
        return self._repo.create_key(agent, name, admin=admin)

    def keys(self, agent: str | None = None) -> list[ApiKeyRecord]:
        """API keys (prefix and metadata only), newest first."""
        return self._repo.list_keys(agent)

    def revoke_key(self, key_id: str) -> ApiKeyRecord:
        """Deactivate a key by id or unique prefix."""
        return self._repo.revoke_key(key_id)

    def verify_key(self, key: str) -> ApiKeyRecord | None:
        """The active key record for a presented key, or None."""
        return self._repo.verify_key(key)

    # -- analysis -------------------------------------------------------------
    def usage(self, by: UsageBy = "agent", *, agent: str | None = None) -> list[UsageRow]:
        """Tokens and tool calls grouped by agent, session, model, day (or user)."""
        agent_id = self._repo.get_agent(agent).id if agent else None
        return self._repo.usage(by, agent_id=agent_id)

    def counts(self) -> dict[str, int]:
        """Row count of each table."""
        return self._repo.counts()

    def sql_rows(self, query: str, limit: int | None = None) -> tuple[list[str], list[tuple]]:
        """Run a read-only query; (column names, rows)."""
        return run_readonly(self._db, query, limit=limit)

    def guarded_sql_rows(self, query: str,
                         limit: int | None = None) -> tuple[list[str], list[tuple]]:
        """Run SQL under the guard of the model's ``query_store`` tool; (columns, rows).

        Stricter than :meth:`sql_rows`: one SELECT over the store's own tables
        only (no files, URLs, other databases or functions that reach outside),
        checked by :func:`agentnb.tools.check_store_query`. What front ends that
        serve other programs (``mcp serve``'s ``query_history``) use.
        """
        from langchain_core.tools import ToolException

        from .tools import check_store_query

        query = str(query).strip().rstrip(";").strip()
        try:
            check_store_query(query)
        except ToolException as exc:
            raise InvalidValueError(str(exc)) from None
        return self.sql_rows(query, limit)

    def sql(self, query: str) -> "pd.DataFrame":
        """Run a read-only query over the store; a pandas DataFrame."""
        import pandas as pd

        columns, rows = self.sql_rows(query)
        return pd.DataFrame.from_records(rows, columns=columns)


def connect(url: str | None = None, *, namespace: dict[str, Any] | None = None,
            create: bool = True, **settings: Any) -> Store:
    """Open a store: the default one (``AGENTNB_HOME``/``AGENTNB_DATABASE_URL``) or ``url``.

    ``namespace``: the variables the built-in tools see and where tools named
    in an agent's config are found (``namespace=globals()`` in a notebook; the
    ``%load_ext agentnb`` extension passes its own). Keyword arguments
    override settings (``lock_timeout=5``, ``home=...``). The schema is
    created or upgraded on first use; ``create=False`` raises
    :class:`~agentnb.errors.StoreNotFoundError` where there is no store yet.
    """
    loaded = load_settings(database_url=url, **settings)
    return Store(loaded.settings, namespace=namespace, create=create)
