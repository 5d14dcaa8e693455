"""``AgentMagics``: the ``%agent`` magic and the notebook's agentnb state.

One instance per IPython shell holds what a notebook is working with: the
store (opened on first use), the current agent and session, and the tool
registry that ``%agent tool`` fills. Everything a front end inside the
kernel needs (``%%chat``, the panel) reaches that state through this
object; get it with :func:`agentnb.notebook.extension.get_magics`.

The subcommands themselves are the command layer's (:mod:`agentnb.commands`);
:mod:`.dispatch` splits the line, runs one and shows its result. Importing it costs nothing
heavy: the store, pandas, langchain and ipywidgets load on first use.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from traitlets import CaselessStrEnum, Float, Int, TraitError, Unicode, observe, validate
from traitlets.config import Configurable

from .parsing import magic_message, user_errors
from .state import NotebookState

if TYPE_CHECKING:  # pragma: no cover
    from ..agent import Agent
    from ..api import Store
    from ..commands.base import Context

#: ``offline``, or ``provider:model`` (``openai:gpt-4o-mini``, ``ollama:llama3``).
_MODEL_SPEC = re.compile(r"^(offline|[A-Za-z][A-Za-z0-9_.-]*:\S+)$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+._-]*://")


#: What the first %%chat imports that the %agent command opening the store did not.
_TURN_MODULES = ("agentnb.engine", "agentnb.tools", "agentnb.models", "agentnb.notebook.chat")


def _warm_up_turns() -> None:
    """Import the turn's modules in a daemon thread, once the store is open.

    The first ``%%chat`` of a notebook otherwise imports them before its
    first token (~0.1-0.3 s); the store being open means a turn is coming,
    and the user is reading or typing meanwhile. Nothing of ipywidgets; a
    failure is left for the turn to report.
    """
    import sys
    import threading

    if all(name in sys.modules for name in _TURN_MODULES):
        return

    def run() -> None:
        import importlib

        for name in _TURN_MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # the turn imports it again and says what is wrong
                return

    threading.Thread(target=run, name="agentnb-warm-up", daemon=True).start()


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
        from .interpolate import ErrorHistory

        self.state = NotebookState(self._connect, default_agent=lambda: self.default_agent,
                                   shell=shell)
        #: ``{Err}`` / ``{Err[n]}`` in ``%%chat``: the exception each cell raised.
        self.error_history = ErrorHistory()
        #: The Reply of the last ``%%chat`` turn (also when it was interrupted).
        self.last_reply: Any = None
        #: The HTTP server ``%agent serve`` started in this kernel, or None.
        self.http_server: Any = None
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
            from ..models import parse_model_spec

            try:
                parse_model_spec(value)
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
        self.state.close()

    @observe("default_agent")
    def _default_changed(self, change: Any) -> None:
        self.state.reset_default()

    # -- state the front ends share ---------------------------------------------
    def _connect(self, create: bool = True) -> "Store":
        from ..api import connect
        from ..errors import StoreNotFoundError, UserError

        try:
            # built-in tools (list_variables, describe_variable, run_python) and tools
            # named in an agent's config resolve from the notebook's namespace
            store = connect(self.database_url or None,
                            namespace=getattr(self.shell, "user_ns", None), create=create)
        except StoreNotFoundError:
            raise  # the caller's: a reading command says so, the current-agent lookup finds none
        except UserError as exc:
            raise UsageError(magic_message(exc)) from None
        _warm_up_turns()
        return store

    @property
    def store(self) -> "Store":
        """The store this notebook uses, opened on first use."""
        return self.state.store

    def close(self) -> None:
        """Stop this notebook's HTTP server, if any, and release the store (it reopens on use)."""
        if self.http_server is not None:
            self.http_server.stop()
            self.http_server = None
        self.state.close()

    @property
    def tools(self) -> Any:
        """The notebook's :class:`agentnb.tools.ToolRegistry` (``%agent tool`` fills it)."""
        return self.store.tools

    @property
    def current_agent(self) -> str | None:
        """The current agent's name, or None (``default_agent`` applies on first use)."""
        with user_errors():
            current = self.state.current()
        return current.name if current is not None else None

    @property
    def current_session(self) -> uuid.UUID | None:
        """The id of the current session, or None until a chat or ``%agent new`` starts one."""
        with user_errors():
            current = self.state.current()
        return current.session_id if current is not None else None

    def current_handle(self) -> "Agent | None":
        """The current agent's handle (its current session with it), or None."""
        with user_errors():
            return self.state.current()

    def require_agent(self, name: str | None = None) -> "Agent":
        """The handle of agent ``name``, or of the current agent; UsageError if none."""
        with user_errors():
            return self.context().agent(name)

    def set_current(self, agent: "str | Agent | None",
                    session: uuid.UUID | str | None = None) -> None:
        """Make ``agent`` (a name or handle) current, with ``session`` as its current session."""
        if agent is None:
            self.state.set_current(None)
            return
        with user_errors():
            handle = (self.state.handle(self.store, agent) if isinstance(agent, str)
                      else agent)
            if session is not None:
                handle.resume(session)
        self.state.set_current(handle)

    def context(self) -> "Context":
        """The command context of this notebook (see :mod:`agentnb.commands`)."""
        from ..commands.base import Context

        def loaded_settings() -> Any:
            from ..config import load_settings

            return load_settings(database_url=self.database_url or None)

        return Context(
            "notebook", self.state.open, state=self.state,
            namespace=getattr(self.shell, "user_ns", None),
            default_model=self.default_model or None, history_limit=self.history_limit,
            loaded_settings=loaded_settings,
        )

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
        from .dispatch import dispatch

        return dispatch(self, line)


