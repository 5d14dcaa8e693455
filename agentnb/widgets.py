"""agentnb's notebook widgets (ipywidgets), imported on first use.

::

    from agentnb.widgets import ChatPanel, SessionBrowser
    ChatPanel(agent="calc")
    SessionBrowser(agent="calc")

``import agentnb`` does not import this module, and this module imports
ipywidgets only when one of its names is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .notebook.browser import SessionBrowser
    from .notebook.panel import ChatPanel

_HOMES = {
    "ChatPanel": "agentnb.notebook.panel",
    "SessionBrowser": "agentnb.notebook.browser",
}


def __getattr__(name: str) -> Any:
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module 'agentnb.widgets' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


__all__ = ["ChatPanel", "SessionBrowser"]
