"""Running the app on uvicorn: in the foreground (``agentnb serve``) or in a thread (a kernel).

:func:`run_foreground` blocks until Ctrl-C (uvicorn's own signal handling stops
it cleanly; several ``--workers`` are uvicorn's worker processes, each building
the app with :func:`agentnb.serve.application.create_app`). :class:`BackgroundServer`
runs uvicorn on its own event loop in a daemon thread, without signal
handlers, so a notebook keeps working while HTTP callers use its agents (and
the tools it defined). Both bind the socket first, so port 0 means "any free
port" and the URL is known before the first request.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Store
    from ..commands.serve import ServeRequest

#: uvicorn's log level for served apps (its access log never shows headers, so never keys)
LOG_LEVEL = "info"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free port)."""
    from ..errors import UserError

    from ..text import excerpt

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said explicitly: asyncio sets TCP_NODELAY only on sockets that say it, and
    # without it Nagle + delayed ACKs add ~40 ms to every response
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except (OSError, ValueError, UnicodeError) as exc:  # taken, no such address, a NUL byte
        sock.close()
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"cannot listen on {excerpt(host, 60)} port {port}: {reason}"
                        + (" (another server uses it? pick another --port, or 0 for any)"
                           if getattr(exc, "errno", None) in (98, 48) else "")) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _config(app: Any, *, log_level: str, access_log: bool, **kwargs: Any):
    import uvicorn

    return uvicorn.Config(app, log_level=log_level, access_log=access_log, lifespan="off",
                          timeout_graceful_shutdown=5, **kwargs)


def run_foreground(store: "Store", request: "ServeRequest", out: TextIO, err: TextIO) -> int:
    """``agentnb serve``: serve until Ctrl-C; the exit status."""
    import uvicorn

    sock = bind(request.host, request.port)
    url = base_url(sock)
    if request.warning:
        err.write(f"agentnb: warning: {request.warning}\n")
    which = ", ".join(request.agents) if request.agents else "every agent"
    out.write(f"agentnb serve: {url} ({which} of {store.display_url}; OpenAPI at {url}/docs; "
              "Ctrl-C stops)\n")
    out.flush()
    if request.workers > 1:
        from .application import AGENTS_ENV

        # the workers build their own app and store from the environment
        os.environ["AGENTNB_DATABASE_URL"] = store.url
        os.environ[AGENTS_ENV] = ",".join(request.agents)
        store.close()
        try:
            uvicorn.run("agentnb.serve.application:create_app", factory=True,
                        fd=sock.fileno(), workers=request.workers, log_level=LOG_LEVEL,
                        lifespan="off", timeout_graceful_shutdown=5)
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled
            pass
        sock.close()
        out.write("agentnb serve: stopped\n")
        return 0
    from . import app

    server = uvicorn.Server(_config(app(store, agents=request.agents or None),
                                    log_level=LOG_LEVEL, access_log=True))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stopped cleanly, then re-raised the Ctrl-C
        pass
    sock.close()
    out.write("agentnb serve: stopped\n")
    return 0


class BackgroundServer:
    """uvicorn in a daemon thread, on its own loop, without signal handlers (a kernel's server)."""

    def __init__(self, asgi_app: Any, host: str, port: int, *, agents: list[str] | None = None,
                 log_level: str = "warning") -> None:
        self.sock = bind(host, port)
        self.url = base_url(self.sock)
        self.agents = list(agents or [])
        self._server = _make_server(asgi_app, log_level)
        self._thread = threading.Thread(target=self._run, name="agentnb-serve", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._server.serve(sockets=[self.sock]))
        except BaseException as exc:  # shown by start(), never lost in a thread
            self._error = exc
        finally:
            # what the app left on this loop (sse-starlette's shutdown watcher) ends with it
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def start(self, timeout: float = 30) -> "BackgroundServer":
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            self._thread.join(0.01)
            timeout -= 0.01
            if timeout <= 0:
                break
        if not self._server.started:
            self.stop()
            raise RuntimeError(f"the HTTP server did not start: {self._error!r}")
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._server.should_exit

    def stop(self, timeout: float = 10) -> None:
        """Stop serving (open streams end, their turns stored) and release the port."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.sock.close()


def _make_server(asgi_app: Any, log_level: str):
    import uvicorn

    server = uvicorn.Server(_config(asgi_app, log_level=log_level, access_log=False))
    # a thread has no signal handlers to install (uvicorn skips them off the main thread too)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    return server


def examples(url: str, agent: str | None) -> str:
    """Copy-paste examples for calling a served agent (curl and the ``openai`` SDK)."""
    model = agent or "AGENT"
    return (
        f"curl {url}/v1/chat/completions \\\n"
        '  -H "Authorization: Bearer $AGENT_KEY" -H "Content-Type: application/json" \\\n'
        f"  -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", "
        "\"content\": \"Hello\"}]}'\n\n"
        "from openai import OpenAI\n"
        f'client = OpenAI(base_url="{url}/v1", api_key=AGENT_KEY)\n'
        f'client.chat.completions.create(model="{model}", '
        'messages=[{"role": "user", "content": "Hello"}])'
    )


__all__ = ["BackgroundServer", "base_url", "bind", "examples", "run_foreground"]
