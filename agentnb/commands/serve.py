"""``agentnb serve`` / ``%agent serve``: the store's agents over HTTP (see :mod:`agentnb.serve`).

One declaration for both front ends. The command checks what it can without
starting anything (the agents named exist, the port is a port, several worker
processes only on a store that several processes may share) and returns a
:class:`ServeRequest`; the front end then starts the server its own way: the
CLI runs it in the foreground until Ctrl-C, the notebook in a background thread
of the kernel, so tools defined in the notebook run for HTTP callers.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import Field

from ..errors import UserError
from .base import Args, Context, Flag, Opt, Pos, command

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


class ServeArgs(Args):
    agents: Annotated[list[str], Pos("NAME", "serve only these agents (default: every agent "
                                     "of the store)")] = []
    host: Annotated[str, Field(min_length=1, max_length=253),
                    Opt("--host", metavar="HOST", help="address to listen on; anything but a "
                        "loopback address needs TLS in front (keys travel in clear)")
                    ] = DEFAULT_HOST
    port: Annotated[int, Field(ge=0, le=65535),
                    Opt("--port", "-p", metavar="PORT", help="TCP port (0: any free port)")
                    ] = DEFAULT_PORT
    workers: Annotated[int, Field(ge=1, le=64),
                       Opt("--workers", "-w", metavar="N", fronts=("cli",),
                           help="worker processes (more than 1 only on a PostgreSQL store)")
                       ] = 1
    stop: Annotated[bool, Flag("--stop", fronts=("notebook",),
                               help="stop the server this kernel runs")] = False


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServeRequest:
    """What to serve, checked: the front end starts (or stops) the server."""

    def __init__(self, *, agents: list[str], host: str, port: int, workers: int = 1,
                 stop: bool = False, warning: str | None = None) -> None:
        self.agents = agents
        self.host = host
        self.port = port
        self.workers = workers
        self.stop = stop
        #: said before the server starts (a non-loopback address)
        self.warning = warning

    def to_text(self) -> str:
        return f"(serve {self.host}:{self.port}: started by the front end)"

    def __repr__(self) -> str:
        return f"<ServeRequest {self.host}:{self.port} agents={self.agents or 'all'}>"


def shareable_store(url: str) -> bool:
    """True for a store several processes may write at once (PostgreSQL)."""
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


@command("serve", "serve agents over HTTP: an OpenAI-compatible /v1 and a REST /api",
         writes=True,
         epilog="Callers authenticate with an API key (Authorization: Bearer anb_...): an "
                "agent's key\nreaches that agent only, an admin key (keys create --admin) "
                "everything.\nThe OpenAPI document is at /openapi.json, its pages at /docs.",
         examples=("{prog}", "{prog} calc --port 9000", "{prog} --host 0.0.0.0 --workers 4"))
def serve(ctx: Context, args: ServeArgs) -> ServeRequest:
    if args.stop:
        if args.agents:
            raise UserError("--stop takes no agent names")
        return ServeRequest(agents=[], host=args.host, port=args.port, stop=True)
    store = ctx.store
    names = []
    for name in args.agents:
        names.append(store.get_agent(name).name)  # NotFoundError suggests close names
    if args.workers > 1 and not shareable_store(store.url):
        raise UserError(
            f"--workers {args.workers}: this store is a single file that one process writes "
            "at a time; several workers need a PostgreSQL store (or use --workers 1)")
    warning = None
    if not is_loopback(args.host):
        warning = (f"listening on {args.host}, not a loopback address: API keys and "
                   "conversations travel in clear unless a TLS proxy is in front")
    return ServeRequest(agents=names, host=args.host, port=args.port, workers=args.workers,
                        warning=warning)


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServeArgs", "ServeRequest", "is_loopback",
           "shareable_store"]
