"""What a notebook remembers between cells: its store, its current agent, its handles.

The bottom of the notebook package: it imports no other notebook module, so
the magics, ``%%chat``, the panel and the browser can all use it without
import cycles. Which session a turn goes to is the :class:`~agentnb.agent.Agent`
handle's rule; the notebook keeps one handle per agent so each agent's current
session survives between cells (and ``%agent use`` switches between them).
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from ..agent import Agent
    from ..api import Store


class NotebookState:
    """A notebook's store, current agent and agent handles.

    It is the notebook's :class:`~agentnb.commands.base.FrontState` (same
    methods; not a subclass, so that ``%load_ext`` imports no command module).

    ``connect(create)`` opens the store (the extension passes the
    notebook's ``user_ns``, where built-in tools look and tools named in an
    agent's config are found; ``create=False`` raises
    :class:`~agentnb.errors.StoreNotFoundError` where there is no store yet);
    ``default_agent()`` names the agent made current on first use when none
    was picked.
    """

    def __init__(self, connect: Callable[[bool], "Store"], *,
                 default_agent: Callable[[], str] = lambda: "",
                 shell: Any = None) -> None:
        self._connect = connect
        self._default_agent = default_agent
        self.shell = shell
        self._store: Store | None = None
        self._handles: dict[str, Agent] = {}
        self._current: Agent | None = None
        self._default_checked = False
        #: (session id, missing tool names) already reported in this notebook
        self.noted_missing: set[tuple[Any, tuple[str, ...]]] = set()

    # -- the store ----------------------------------------------------------------------
    @property
    def store(self) -> "Store":
        """The notebook's store, opened (and created where there is none) on first use."""
        return self.open(create=True)

    def open(self, create: bool) -> "Store":
        """The notebook's store; ``create=False`` (a command that only reads) never makes one.

        A missing store raises :class:`~agentnb.errors.StoreNotFoundError` then, and
        nothing is kept: the next command that writes creates it (a typo in
        ``AgentMagics.database_url`` must not leave an empty store behind).
        """
        if self._store is None:
            self._store = self._connect(create)
        return self._store

    @property
    def store_is_open(self) -> bool:
        return self._store is not None

    def close(self) -> None:
        """Release the store and forget the agents (it reopens on next use)."""
        if self._store is not None:
            self._store.close()
        self._store = None
        self._handles.clear()
        self._current = None
        self._default_checked = False

    def reset_default(self) -> None:
        """Look at ``default_agent`` again on next use."""
        self._default_checked = False

    # -- agents -------------------------------------------------------------------------
    def handle(self, store: "Store", name: str) -> "Agent":
        """The notebook's handle for agent ``name`` (its current session kept), refreshed."""
        record = store.get_agent(name)
        handle = self._handles.get(record.name)
        if handle is None or handle.id != record.id:
            handle = store.agent(record.name)
            handle.session_attrs = self.session_attrs()
            self._handles[record.name] = handle
        else:
            handle.record = record
            handle.session_attrs = self.session_attrs()  # the notebook's path may be known now
        return handle

    def current(self) -> "Agent | None":
        """The current agent's handle; None when none is picked (or it was deleted)."""
        if self._current is None and not self._default_checked:
            store = self._existing_store()
            if store is None:
                return None  # no store yet, so no agent: nothing to pick (and nothing made)
            self._default_checked = True
            name = self._default_agent()
            if name and store.find_agent(name) is not None:
                self._current = self.handle(store, name)
        if self._current is not None:
            record = self.store.find_agent(self._current.name)
            if record is None or record.id != self._current.id:
                # deleted or renamed from another kernel or the CLI
                self._handles.pop(self._current.name, None)
                self._current = None
            else:
                self._current.record = record
                self._current.session_attrs = self.session_attrs()
        return self._current

    def _existing_store(self) -> "Store | None":
        """The store when it is open or exists at its address, else None (nothing created)."""
        from ..errors import StoreNotFoundError

        try:
            return self.open(create=False)
        except StoreNotFoundError:
            return None

    def set_current(self, agent: "Agent | None") -> None:
        """Make ``agent`` current (its handle becomes the notebook's handle for that name)."""
        self._default_checked = True
        if agent is not None:
            for name, handle in list(self._handles.items()):
                if handle.id == agent.id and name != agent.name:
                    del self._handles[name]  # renamed
            self._handles[agent.name] = agent
            if not agent.session_attrs:
                agent.session_attrs = self.session_attrs()
        self._current = agent

    def missing_note(self, session_id: Any, names: list[str], note: str) -> str | None:
        """``note`` the first time these tools are missing in this session, else None."""
        key = (session_id, tuple(names))
        if key in self.noted_missing:
            return None
        self.noted_missing.add(key)
        return note

    # -- where sessions start -----------------------------------------------------------
    def session_attrs(self) -> dict[str, Any]:
        """What a new session records about where it started (notebook path, kernel id)."""
        attrs: dict[str, Any] = {"source": "notebook"}
        ns = getattr(self.shell, "user_ns", {}) or {}
        path = (ns.get("__vsc_ipynb_file__") or ns.get("__session__")
                or os.environ.get("JPY_SESSION_NAME"))
        if path:
            attrs["notebook"] = str(path)
        kernel = kernel_id()
        if kernel:
            attrs["kernel"] = kernel
        return attrs


class quiet:
    """Context manager: a widget's own changes to its controls do not fire its observers.

    Sets ``owner._quiet`` for the block (observers return early while it is set).
    """

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.before = False

    def __enter__(self) -> None:
        self.before = self.owner._quiet
        self.owner._quiet = True

    def __exit__(self, *exc: Any) -> None:
        self.owner._quiet = self.before


def notebook_state(shell: Any = None) -> "NotebookState | None":
    """The running notebook's state (``%load_ext agentnb`` done), or None.

    Looked up by name in IPython's magics registry, so nothing here imports
    the magics module (the widgets use it without an import cycle).
    """
    if shell is None:
        if "IPython" not in sys.modules:
            return None
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None:
        return None
    magics = shell.magics_manager.registry.get("AgentMagics")
    return getattr(magics, "state", None)


def default_store() -> "Store":
    """The notebook's store when agentnb is loaded, else the default store."""
    state = notebook_state()
    if state is not None:
        return state.store
    from ..api import connect

    return connect()


def kernel_id() -> str | None:
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


__all__ = ["NotebookState", "default_store", "kernel_id", "notebook_state"]
