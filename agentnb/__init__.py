"""agentnb: AI agents in Jupyter, with a durable, queryable history.

``%load_ext agentnb`` in a notebook gives the ``%agent`` and ``%%chat``
magics; ``agentnb.connect()`` is the Python API. This module imports
nothing heavy: the store, langchain and pandas load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from .api import Store


def connect(url: str | None = None, *, namespace: dict[str, Any] | None = None,
            **settings: Any) -> "Store":
    """Open the default store, or the one at ``url``; see :func:`agentnb.api.connect`."""
    from .api import connect as _connect

    return _connect(url, namespace=namespace, **settings)


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext agentnb``: registers ``%agent`` and ``%%chat``."""
    from .notebook.extension import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext agentnb``."""
    from .notebook.extension import unload_ipython_extension as _unload

    _unload(ipython)


__all__ = ["connect", "__version__", "load_ipython_extension", "unload_ipython_extension"]
