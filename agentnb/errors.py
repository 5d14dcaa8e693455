"""Exceptions agentnb raises.

Every mistake a user can make (a bad name, an unknown agent, a malformed
setting, a store held too long by another process) is a :class:`UserError`.
Front ends turn a ``UserError`` into one line: a ``UsageError`` in a magic, a
line on stderr and exit status 2 in the CLI. Anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class AgentnbError(Exception):
    """Base class of every exception raised by agentnb."""


class UserError(AgentnbError):
    """A mistake the user can fix; its message is one line that says how.

    ``see`` names the command that shows what the user needs (``"sessions list"``,
    the words of the ``agentnb`` command). ``str(error)`` spells it as the CLI
    does; each front end spells it its own way (``%agent sessions`` in a
    notebook), so the store never formats front-end text.
    """

    def __init__(self, message: str = "", *, see: str | None = None) -> None:
        from .text import clip, mask_urls

        # one line, no secret of a URL in it, and a long value the user typed is
        # quoted as a short excerpt only
        message = clip(mask_urls(message))
        super().__init__(message)
        self.message = message
        self.see = see

    def __str__(self) -> str:
        return self.message + (f" (see: agentnb {self.see})" if self.see else "")


class ConfigError(UserError):
    """A setting has a bad value or an unknown name."""


class NotFoundError(UserError, LookupError):
    """An agent, session, message or key does not exist."""


class AlreadyExistsError(UserError):
    """A name that must be unique is already taken."""


class InvalidNameError(UserError, ValueError):
    """A name breaks the naming rule."""


class InvalidValueError(UserError, ValueError):
    """A value (JSON, a config key, a spec) cannot be used."""


class StoreLockedError(UserError):
    """Another process kept the DuckDB store locked for longer than the timeout."""


class StoreNotFoundError(UserError):
    """There is no store at the address, and the command does not create one."""


class StoreUnavailableError(UserError):
    """The store cannot be opened (a damaged or unreadable file, a folder that cannot be
    made, a server that does not answer); the message names it and what to do."""


class StoreVersionError(UserError):
    """The store was written by a newer agentnb and is left untouched."""


class ModelNotAvailableError(UserError):
    """A model spec names a provider whose integration package is missing."""


class McpServerError(UserError):
    """An MCP server of an agent did not start, or cannot be reached."""


class ToolDefinitionError(UserError, TypeError):
    """A Python function cannot become a tool (lambda, no docstring, ...)."""


def error_text(exc: BaseException) -> str:
    """One line for an exception: a UserError's own message, else ``Type: message``."""
    from .text import mask_urls, one_line

    if isinstance(exc, UserError):
        return one_line(exc)
    message = one_line(mask_urls(exc), limit=300)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
