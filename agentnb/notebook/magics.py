"""``AgentMagics``: the ``%agent`` magic and the notebook's agentnb state.

One instance per IPython shell holds what a notebook is working with: the
store (opened on first use), the current agent and session, and the tool
registry that ``%agent tool`` fills. Everything a front end inside the
kernel needs (``%%chat``, the panel) reaches that state through this
object; get it with :func:`agentnb.notebook.extension.get_magics`.

The subcommands themselves live in :mod:`agentnb.notebook.commands`; this
module only splits the line and dispatches. Importing it costs nothing
heavy: the store, pandas, langchain and ipywidgets load on first use.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from traitlets import CaselessStrEnum, Float, Int, TraitError, Unicode, observe, validate
from traitlets.config import Configurable

from .parsing import user_errors

if TYPE_CHECKING:  # pragma: no cover
    from ..agent import Agent
    from ..api import Store
    from ..schemas import AgentRecord, SessionRecord

#: ``offline``, or ``provider:model`` (``openai:gpt-4o-mini``, ``ollama:llama3``).
_MODEL_SPEC = re.compile(r"^(offline|[A-Za-z][A-Za-z0-9_.-]*:\S+)$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+._-]*://")

NO_AGENT_HINT = (
    "no current agent; create one with %agent create NAME, or pick one with %agent use NAME"
)


@magics_class
class AgentMagics(Magics, Configurable):
    """The ``%agent`` line magic; configure with ``%config AgentMagics.<name> = value``."""

    database_url = Unicode(
        "",
        help="SQLAlchemy URL of the store; empty means the default store "
        "(AGENTNB_DATABASE_URL, or the DuckDB file in AGENTNB_HOME).",
    ).tag(config=True)
    default_agent = Unicode(
        "", help="Agent made current on first use when the notebook has picked none."
    ).tag(config=True)
    default_model = Unicode(
        "",
        help="Model spec for agents created with %agent create without --model "
        "(e.g. 'offline', 'openai:gpt-4o-mini'); empty means the store's default.",
    ).tag(config=True)
    stream_rate = Float(
        20.0, help="Most display updates per second while a reply streams."
    ).tag(config=True)
    history_limit = Int(
        50, help="Messages %agent history shows when -n is not given (0 shows all)."
    ).tag(config=True)
    chat_display = CaselessStrEnum(
        ["auto", "rich", "text"], default_value="auto",
        help="How %%chat shows a turn: 'rich' (one HTML output updated in place, for "
        "notebooks), 'text' (printed as it streams, for terminals), or 'auto' (rich in a "
        "Jupyter kernel, text elsewhere).",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        # State first: loading config in super().__init__ fires the observers below.
        self._store: Store | None = None
        self._tools: Any = None
        self._current_agent: str | None = None
        self._current_session: uuid.UUID | None = None
        self._default_checked = False
        from .interpolate import ErrorHistory

        #: ``{Err}`` / ``{Err[n]}`` in ``%%chat``: the exception each cell raised.
        self.error_history = ErrorHistory()
        #: The Reply of the last ``%%chat`` turn (also when it was interrupted).
        self.last_reply: Any = None
        super().__init__(shell=shell, **kwargs)

    # -- configuration ---------------------------------------------------------
    @validate("default_model")
    def _check_model(self, proposal: Any) -> str:
        value = proposal["value"].strip()
        if value and not _MODEL_SPEC.match(value):
            raise TraitError(
                f"AgentMagics.default_model: {value!r} is not a model spec; use 'offline' "
                "or 'provider:model' such as 'openai:gpt-4o-mini' (see %agent models)"
            )
        if value:
            from ..errors import UserError

            try:
                check_model_spec(value)
            except UserError as exc:
                raise TraitError(f"AgentMagics.default_model: {exc}") from None
        return value

    @validate("database_url")
    def _check_url(self, proposal: Any) -> str:
        value = proposal["value"].strip()
        if value and not _URL.match(value):
            raise TraitError(
                f"AgentMagics.database_url: {value!r} is not a database URL; use e.g. "
                "'duckdb:///path/agentnb.duckdb' or 'sqlite:///path/agentnb.db', or '' "
                "for the default store"
            )
        return value

    @validate("default_agent")
    def _check_agent(self, proposal: Any) -> str:
        value = proposal["value"].strip()
        if value and not re.match(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$", value):
            raise TraitError(f"AgentMagics.default_agent: {value!r} is not an agent name")
        return value

    @validate("stream_rate")
    def _check_rate(self, proposal: Any) -> float:
        value = proposal["value"]
        if not value > 0:
            raise TraitError(f"AgentMagics.stream_rate must be above 0 (got {value})")
        return value

    @validate("history_limit")
    def _check_limit(self, proposal: Any) -> int:
        value = proposal["value"]
        if value < 0:
            raise TraitError(f"AgentMagics.history_limit must be 0 (all) or more (got {value})")
        return value

    @observe("database_url")
    def _store_changed(self, change: Any) -> None:
        # Another store: the current agent and session belonged to the old one.
        self.close()
        self._current_agent = None
        self._current_session = None
        self._default_checked = False

    @observe("default_agent")
    def _default_changed(self, change: Any) -> None:
        self._default_checked = False

    # -- state the front ends share ---------------------------------------------
    @property
    def store(self) -> "Store":
        """The store this notebook uses, opened on first use."""
        if self._store is None:
            from ..api import connect

            with user_errors():
                self._store = connect(self.database_url or None)
            # built-in tools (list_variables, describe_variable, run_python) and
            # tools named in an agent's config resolve from the notebook
            self._store.namespace = getattr(self.shell, "user_ns", None)
            if self._tools is not None:  # functions registered before the store opened
                for spec in self._tools.specs():
                    self._store.tools.register(spec)
            self._tools = None
        return self._store

    def close(self) -> None:
        """Release the store (it reopens on next use)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def tools(self) -> Any:
        """The notebook's :class:`agentnb.tools.ToolRegistry` (``%agent tool`` fills it)."""
        # One registry per process: the store's, which the engine resolves tools from.
        return self.store.tools

    @property
    def current_agent(self) -> str | None:
        """The current agent's name, or None (``default_agent`` applies on first use)."""
        self._apply_default_agent()
        return self._current_agent

    @property
    def current_session(self) -> uuid.UUID | None:
        """The id of the current session, or None until a chat or ``%agent new`` starts one."""
        self._apply_default_agent()
        return self._current_session

    def set_current(self, agent: str | None, session: uuid.UUID | str | None = None) -> None:
        """Make ``agent`` (a name) and ``session`` (an id) current; no store access."""
        self._current_agent = agent
        self._current_session = uuid.UUID(str(session)) if session is not None else None
        self._default_checked = True

    def _apply_default_agent(self) -> None:
        if self._default_checked or self._current_agent is not None:
            return
        self._default_checked = True
        if not self.default_agent:
            return
        record = self.store.repo.find_agent(self.default_agent)
        if record is not None:
            latest = self.store.repo.latest_session(record.id)
            self.set_current(record.name, latest.id if latest else None)

    def current_record(self) -> "AgentRecord | None":
        """The current agent's record; None (and current cleared) if it is gone."""
        name = self.current_agent
        if name is None:
            return None
        record = self.store.repo.find_agent(name)
        if record is None:  # deleted or renamed from another kernel or the CLI
            self.set_current(None)
        return record

    def require_agent(self, name: str | None = None) -> "Agent":
        """The handle of agent ``name``, or of the current agent; UsageError if none."""
        if name is None:
            name = self.current_agent
            if name is None:
                raise UsageError(NO_AGENT_HINT)
        with user_errors():
            return self.store.agent(name)

    def use_agent(self, name: str, *, resume: bool = True) -> "tuple[Agent, SessionRecord | None]":
        """Make ``name`` current; its latest session becomes current when ``resume``."""
        agent = self.require_agent(name)
        session = self.store.repo.latest_session(agent.id) if resume else None
        self.set_current(agent.name, session.id if session else None)
        return agent, session

    def session_attrs(self) -> dict[str, Any]:
        """What a new session records about where it started (notebook path, kernel id)."""
        attrs: dict[str, Any] = {"source": "notebook"}
        ns = getattr(self.shell, "user_ns", {}) or {}
        path = (
            ns.get("__vsc_ipynb_file__")
            or ns.get("__session__")
            or os.environ.get("JPY_SESSION_NAME")
        )
        if path:
            attrs["notebook"] = str(path)
        kernel = _kernel_id()
        if kernel:
            attrs["kernel"] = kernel
        return attrs

    def _handle(self, agent: "str | Agent | None") -> "Agent":
        if agent is not None and not isinstance(agent, str):
            return agent  # a handle the caller already has: no second lookup
        return self.require_agent(agent)

    def new_session(self, agent: "str | Agent | None" = None, *,
                    title: str | None = None) -> "SessionRecord":
        """Start a new session of ``agent`` (a name or handle; default: the current one)."""
        handle = self._handle(agent)
        with user_errors():
            session = self.store.repo.create_session(
                handle.id, title=title, attrs=self.session_attrs()
            )
        self.set_current(handle.name, session.id)
        return session

    def ensure_session(self, agent: "str | Agent | None" = None) -> "SessionRecord":
        """The session a chat with ``agent`` (default: the current agent) continues.

        ``%%chat`` calls this before a turn. The current session if it belongs
        to that agent; else that agent's latest session; else a new one (so a
        notebook's first chat creates its session lazily). The agent and the
        session become current.
        """
        handle = self._handle(agent)
        if handle.name == self._current_agent and self._current_session is not None:
            from ..errors import NotFoundError

            try:
                session = self.store.repo.get_session(self._current_session)
            except NotFoundError:  # deleted from another kernel or the CLI: start over
                session = None
            if session is not None and session.agent_id == handle.id:
                return session
        else:
            latest = self.store.repo.latest_session(handle.id)
            if latest is not None:
                self.set_current(handle.name, latest.id)
                return latest
        return self.new_session(handle)

    def rich_display(self) -> bool:
        """True when ``%%chat`` draws HTML outputs (a notebook), False to print text."""
        if self.chat_display != "auto":
            return self.chat_display == "rich"
        return getattr(self.shell, "kernel", None) is not None

    def record_error(self, result: Any) -> None:
        """``post_run_cell`` hook: remember the exception a cell raised, for ``{Err}``."""
        error = getattr(result, "error_in_exec", None) or getattr(
            result, "error_before_exec", None)
        if error is None:
            return
        from .interpolate import exception_text

        count = getattr(result, "execution_count", None)
        if count is None:
            count = max(self.error_history, default=0) + 1
        self.error_history[count] = exception_text(error)
        while len(self.error_history) > 100:  # the recent ones are what a chat refers to
            self.error_history.pop(min(self.error_history))

    # -- the magics ----------------------------------------------------------------
    @no_var_expand
    @cell_magic
    def chat(self, line: str = "", cell: str | None = None) -> Any:
        """Send the cell to an agent and stream its answer into the output.

        ::

          %%chat [NAME] [-s SESSION] [--new] [--model SPEC]
                 [--format markdown|text|code|json] [--schema NAME] [--no-stream] [--no-tools]
          <message; {var} puts in a notebook variable, {{ }} are literal braces>

        The result is the Reply (``_.text``, ``_.tool_calls``); with ``--schema``
        the validated instance. ``%%chat --help`` explains every option.
        """
        from .chat import run_chat

        return run_chat(self, line, cell)

    @no_var_expand
    @line_magic
    def agent(self, line: str = "") -> Any:
        """Manage agents, sessions, tools and the agentnb store.

        ::

          %agent                          status: store, current agent and session
          %agent list | templates | models
          %agent create NAME [--template T] [--model SPEC] [--system TEXT] [--tools f,g]
          %agent use NAME | show [NAME] | set [NAME] key=value ... | delete NAME --yes
          %agent sessions [NAME] | new | resume ID | history [-n N]
          %agent tool FUNC [...] [--approve]
          %agent usage [--by agent|session|model|day]
          %agent sql SELECT ...           the result is a DataFrame
          %agent export [SESSION] --format md|json [--output FILE]
          %agent keys create|list|revoke

        ``%%chat [NAME]`` (a cell magic) sends a cell to an agent. ``%agent help`` lists every subcommand; ``%agent SUBCOMMAND --help``
        shows its arguments. Settings: ``%config AgentMagics``.
        """
        from .commands import dispatch

        return dispatch(self, line)


def check_model_spec(spec: str) -> None:
    """Raise a UserError if ``spec`` names no known provider (see :mod:`agentnb.models`)."""
    try:
        from ..models import parse_model_spec
    except ImportError:  # pragma: no cover - the models package is part of agentnb
        return
    parse_model_spec(spec)


def _kernel_id() -> str | None:
    """The Jupyter kernel id from the connection file name, when running in a kernel."""
    if "ipykernel" not in sys.modules:
        return None
    try:
        from ipykernel.connect import get_connection_file

        name = os.path.basename(get_connection_file())
    except Exception:
        return None
    match = re.match(r"kernel-(.+)\.json$", name)
    return match.group(1) if match else None


__all__ = ["AgentMagics", "NO_AGENT_HINT", "check_model_spec"]
