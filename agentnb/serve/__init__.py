"""The HTTP front end: an OpenAI-compatible ``/v1`` and a REST ``/api`` over a store.

::

    import agentnb, agentnb.serve
    store = agentnb.connect()
    asgi = agentnb.serve.app(store)          # embed it in any ASGI server

``agentnb serve`` (the CLI) and ``%agent serve`` (a notebook) start it on
uvicorn. Callers authenticate with the store's API keys. Importing this package
is cheap; FastAPI loads when an app is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Store


def app(store: "Store", *, agents: Iterable[str] | None = None, **options: Any):
    """The ASGI app (FastAPI) serving ``store``'s agents (``agents``: only these).

    ``options``: ``max_body`` (bytes; bigger request bodies get 413).
    """
    from .application import build_app

    return build_app(store, agents=agents, **options)


__all__ = ["app"]
