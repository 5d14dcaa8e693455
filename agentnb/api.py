"""The Python API: ``agentnb.connect()`` and the objects it returns.

The magics, the widgets and the CLI are built on this module::

    store = agentnb.connect()                 # the default store
    agent = store.create_agent("calc", model="offline", system="You add numbers.")
    store.agents(); store.sessions(); store.usage(by="model")
    store.sql("select role, count(*) from messages group by role")
"""

from __future__ import annotations

import atexit
import logging
import sys
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping

from .agentconfig import apply_changes
from .config import Settings, load_settings, mask_url
from .errors import InvalidValueError
from .export import ExportFormat, export_session
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
    import pandas as pd

    from .agent import Agent


log = logging.getLogger(__name__)

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


class Store:
    """A connection to one agentnb store (a DuckDB file by default).

    Cheap to create; it opens the database file only while it works and
    releases it when idle, so several kernels and the CLI can share a store.
    """

    def __init__(self, settings: Settings, *, auto_upgrade: bool = True) -> None:
        self.settings = settings
        self.url = settings.url
        self.db = Database(
            self.url,
            lock_timeout=settings.lock_timeout,
            idle_release=settings.idle_release,
            auto_upgrade=auto_upgrade,
        )
        self.repo = Repository(self.db)
        #: The notebook's namespace (set by the IPython extension) for built-in tools.
        self.namespace: dict[str, Any] | None = None
        self._tools = None
        self._engine = None
        self._loop = None
        self._models: dict[str, Any] = {}
        _OPEN_STORES.add(self)

    def __repr__(self) -> str:
        return f"<agentnb.Store {mask_url(self.url)}>"

    # -- lifecycle ------------------------------------------------------------
    def init(self) -> str:
        """Create or upgrade the schema now; returns the revision."""
        from .store import migrate

        self.db.ensure_schema()
        with self.db.raw() as conn:
            return migrate.current_revision(conn) or ""

    def close(self) -> None:
        """Stop the loop thread and release the database file."""
        if self._loop is not None:
            self._loop.stop()
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- engine plumbing --------------------------------------------------------
    @property
    def tools(self):
        """The process's tool registry (notebook functions and LangChain tools)."""
        if self._tools is None:
            from .tools import ToolRegistry

            self._tools = ToolRegistry()
        return self._tools

    @property
    def engine(self):
        """The agent loop bound to this store."""
        if self._engine is None:
            from .engine import Engine

            self._engine = Engine(self.repo)
        return self._engine

    @property
    def loop(self):
        """The private event loop thread used by the synchronous API."""
        if self._loop is None:
            from .loopthread import LoopThread

            self._loop = LoopThread()
        return self._loop

    def model(self, spec: str, model_kwargs: Mapping[str, Any] | None = None):
        """The chat model for a spec and settings (cached per process)."""
        import json as _json

        key = spec + "|" + _json.dumps(dict(model_kwargs or {}), sort_keys=True, default=str)
        if key not in self._models:
            from .models import resolve_model

            self._models[key] = resolve_model(spec, dict(model_kwargs or {}))
        return self._models[key]

    @staticmethod
    def token_counter(chat_model: Any):
        """How to count tokens for a model without any download (memory budgets)."""
        from .memory import approx_tokens
        from .models import OfflineChatModel

        if isinstance(chat_model, OfflineChatModel):
            return chat_model.get_num_tokens_from_messages
        return approx_tokens

    def _namespace(self) -> dict[str, Any] | None:
        if self.namespace is not None:
            return self.namespace
        ipython = sys.modules.get("IPython")
        if ipython is not None:
            shell = ipython.get_ipython()
            if shell is not None:
                return shell.user_ns
        return None

    def resolve_tool(self, name: str):
        """A registered tool, a built-in, or a documented function of the notebook namespace."""
        if name in self.tools:
            return self.tools.get(name)
        from .tools import builtin_tools

        namespace = self._namespace()
        builtins = builtin_tools(namespace=namespace, sql_rows=self.sql_rows)
        if name in builtins:
            return builtins[name]
        candidate = (namespace or {}).get(name)
        if callable(candidate):
            try:
                return self.tools.register(candidate, name=name)
            except Exception:
                return None
        return None

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
        **config: Any,
    ) -> "Agent":
        """Create an agent and return its handle.

        ``template`` starts from a built-in or user template; the other
        arguments override it. ``memory`` is a strategy name (``"window"``)
        or a mapping of memory settings. Extra keyword arguments are config
        fields (``max_iterations=4``, ``auto_approve=True``, ...).
        """
        base: dict[str, Any] = {}
        if template is not None:
            from .templates import load_template

            tpl = load_template(template, self.settings)
            base = tpl.config.model_dump()
            description = description or tpl.description
        base.setdefault("model", self.settings.default_model)
        if model is not None:
            base["model"] = model
        if system is not None:
            base["system"] = system
        if tools is not None:
            base["tools"] = list(tools)
        if model_kwargs is not None:
            base["model_kwargs"] = {**base.get("model_kwargs", {}), **dict(model_kwargs)}
        cfg = AgentConfig.model_validate(base) if base else AgentConfig()
        if memory is not None:
            if isinstance(memory, MemoryConfig):
                memory = memory.model_dump()
            cfg = apply_changes(cfg, {"memory": memory})
        if config:
            cfg = apply_changes(cfg, config)
        record = self.repo.create_agent(name, cfg, description=description, template=template)
        return self._handle(record)

    def agent(self, name: str) -> "Agent":
        """The handle of an existing agent (NotFoundError suggests close names)."""
        return self._handle(self.repo.get_agent(name))

    def agents(self) -> list[AgentRecord]:
        """Every agent's record, by name."""
        return self.repo.list_agents()

    def update_agent(
        self,
        name: str,
        *,
        rename: str | None = None,
        description: str | None = None,
        **changes: Any,
    ) -> AgentRecord:
        """Change an agent: rename it, set its description, or config keys (see agentconfig)."""
        record = self.repo.get_agent(name)
        config = apply_changes(record.config, changes) if changes else None
        return self.repo.update_agent(
            record.id, name=rename, description=description, config=config
        )

    def delete_agent(self, name: str) -> dict[str, int]:
        """Delete an agent and everything it owns; returns rows removed per table."""
        return self.repo.delete_agent(name)

    def _handle(self, record: AgentRecord) -> "Agent":
        from .agent import Agent

        return Agent(self, record)

    # -- sessions -------------------------------------------------------------
    def sessions(self, agent: str | None = None, *, limit: int | None = None) -> list[SessionSummary]:
        """Sessions with their counts, newest first; optionally of one agent."""
        agent_id = self.repo.get_agent(agent).id if agent else None
        return self.repo.list_sessions(agent_id, limit=limit)

    def session(self, session_id: str | uuid.UUID) -> SessionRecord:
        """A session by id or unique prefix."""
        return self.repo.get_session(session_id)

    def history(self, session_id: str | uuid.UUID, *, last: int | None = None) -> list[MessageRecord]:
        """A session's messages (with tool calls), oldest first."""
        session = self.repo.get_session(session_id)
        return self.repo.history(session.id, last=last)

    def export(self, session_id: str | uuid.UUID, fmt: ExportFormat = "md") -> str:
        """A session as Markdown (``md``) or JSON (``json``) text."""
        if fmt not in ("md", "json"):
            raise InvalidValueError(f"unknown export format {fmt!r}: choose md or json")
        session = self.repo.get_session(session_id)
        agent = self.repo.get_agent(session.agent_id)
        return export_session(session, agent.name, self.repo.history(session.id), fmt)

    def search(self, text: str, *, agent: str | None = None, limit: int = 50):
        """Messages containing ``text``, newest first, as (agent name, message) pairs."""
        agent_id = self.repo.get_agent(agent).id if agent else None
        return self.repo.search_messages(text, agent_id=agent_id, limit=limit)

    # -- keys -----------------------------------------------------------------
    def create_key(self, agent: str, name: str = "default") -> NewApiKey:
        """A new API key for ``agent``; ``.key`` is the secret, shown only this once."""
        return self.repo.create_key(agent, name)

    def keys(self, agent: str | None = None) -> list[ApiKeyRecord]:
        """API keys (prefix and metadata only)."""
        return self.repo.list_keys(agent)

    def revoke_key(self, key_id: str) -> ApiKeyRecord:
        """Deactivate a key by id or unique prefix."""
        return self.repo.revoke_key(key_id)

    def verify_key(self, key: str) -> ApiKeyRecord | None:
        """The active key record for a presented key, or None."""
        return self.repo.verify_key(key)

    # -- analysis -------------------------------------------------------------
    def usage(
        self, by: Literal["agent", "session", "model", "day"] = "agent", *, agent: str | None = None
    ) -> list[UsageRow]:
        """Tokens and tool calls grouped by agent, session, model or day."""
        agent_id = self.repo.get_agent(agent).id if agent else None
        return self.repo.usage(by, agent_id=agent_id)

    def sql_rows(self, query: str, limit: int | None = None) -> tuple[list[str], list[tuple]]:
        """Run a read-only query; (column names, rows)."""
        return run_readonly(self.db, query, limit=limit)

    def sql(self, query: str) -> "pd.DataFrame":
        """Run a read-only query over the store; a pandas DataFrame."""
        import pandas as pd

        columns, rows = self.sql_rows(query)
        return pd.DataFrame.from_records(rows, columns=columns)


def connect(url: str | None = None, **settings: Any) -> Store:
    """Open a store: the default one (``AGENTNB_HOME``/``AGENTNB_DATABASE_URL``) or ``url``.

    Keyword arguments override settings (``lock_timeout=5``, ``home=...``).
    The schema is created or upgraded on first use.
    """
    loaded = load_settings(database_url=url, **settings)
    return Store(loaded.settings)
