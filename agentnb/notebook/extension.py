"""``%load_ext agentnb`` / ``%unload_ext agentnb``.

Loading registers the magics and nothing else: no store is opened and
neither langchain, pandas, duckdb, SQLAlchemy nor ipywidgets is imported
(they load when a command first needs them), so ``%load_ext`` is instant.
"""

from __future__ import annotations

from typing import Any

from .magics import AgentMagics


def get_magics(shell: Any = None) -> AgentMagics:
    """The shell's :class:`AgentMagics` (its store, current agent and session, tools).

    ``shell`` defaults to the running IPython. Raises UsageError when the
    extension is not loaded.
    """
    from IPython.core.error import UsageError

    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    magics = _registered(shell) if shell is not None else None
    if magics is None:
        raise UsageError("agentnb is not loaded; run %load_ext agentnb first")
    return magics


def _registered(shell: Any) -> AgentMagics | None:
    found = shell.magics_manager.registry.get(AgentMagics.__name__)
    return found if isinstance(found, AgentMagics) else None


def load_ipython_extension(shell: Any) -> None:
    """Register ``%agent`` and ``%%chat`` (the magics of :class:`AgentMagics`). Idempotent."""
    if _registered(shell) is not None:
        return  # loaded already: keep the notebook's state
    magics = AgentMagics(shell=shell)
    shell.register_magics(magics)
    shell.events.register("post_run_cell", magics.record_error)


def unload_ipython_extension(shell: Any) -> None:
    """Remove the magics, release the store and forget the notebook state."""
    magics = _registered(shell)
    if magics is None:
        return
    manager = shell.magics_manager
    # IPython has no API to unregister magics: remove our entries by hand.
    for kind, table in AgentMagics.magics.items():
        for name in table:
            if manager.magics.get(kind, {}).get(name) is not None:
                bound = manager.magics[kind][name]
                if getattr(bound, "__self__", None) is magics:
                    manager.magics[kind].pop(name)
    manager.registry.pop(AgentMagics.__name__, None)
    try:
        shell.events.unregister("post_run_cell", magics.record_error)
    except ValueError:  # not registered (loaded by an older agentnb, say)
        pass
    if magics in getattr(shell, "configurables", []):
        shell.configurables.remove(magics)
    magics.close()


__all__ = ["get_magics", "load_ipython_extension", "unload_ipython_extension"]
