"""``%agent serve``: the HTTP front end in a background thread of this kernel.

The server uses the notebook's own store, so the tools this notebook defined
(``%agent tool``, ``agent.tool``, functions in its namespace) run for HTTP
callers too, and their turns are in ``%agent history`` like any other. One
server per notebook; ``%agent serve --stop`` stops it (so does
``%unload_ext agentnb``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from ..commands.serve import ServeRequest
    from .magics import AgentMagics


class Serving:
    """What ``%agent serve`` shows: the base URL and copy-paste examples."""

    def __init__(self, url: str, agents: list[str], example_agent: str | None,
                 warning: str | None = None) -> None:
        from ..serve.server import examples

        self.url = url
        self.agents = agents
        self.warning = warning
        self.examples = examples(url, example_agent)

    def _head(self) -> str:
        which = ", ".join(self.agents) if self.agents else "every agent of the store"
        return (f"serving {which} at {self.url} (OpenAPI: {self.url}/docs; stop it with "
                "%agent serve --stop)")

    def __repr__(self) -> str:
        warning = f"warning: {self.warning}\n" if self.warning else ""
        return (f"{warning}{self._head()}\nCall it with an API key (%agent keys create), "
                f"e.g.:\n\n{self.examples}")

    def _repr_markdown_(self) -> str:
        warning = f"**warning:** {self.warning}\n\n" if self.warning else ""
        return (f"{warning}{self._head()}\n\nCall it with an API key (`%agent keys create`), "
                f"e.g.:\n\n```\n{self.examples}\n```\n")


def serve(nb: "AgentMagics", request: "ServeRequest") -> Any:
    """Start (or, with ``--stop``, stop) this notebook's HTTP server."""
    from ..render.results import Notice

    running = getattr(nb, "http_server", None)
    if running is not None and not running.running:
        nb.http_server = running = None
    if request.stop:
        if running is None:
            raise UserError("no server is running in this notebook (start one with "
                            "%agent serve)")
        running.stop()
        nb.http_server = None
        return Notice(f"stopped the server at {running.url}", "success")
    if running is not None:
        raise UserError(f"a server is already running at {running.url}; stop it first with "
                        "%agent serve --stop")
    from ..serve import app
    from ..serve.server import BackgroundServer

    store = nb.store
    current = nb.state.current()
    example = (request.agents[0] if request.agents
               else current.name if current is not None else None)
    server = BackgroundServer(app(store, agents=request.agents or None), request.host,
                              request.port, agents=request.agents)
    nb.http_server = server.start()
    return Serving(server.url, request.agents, example, request.warning)


__all__ = ["Serving", "serve"]
