"""User mistakes as one-line ``UsageError``s in the notebook's words.

:func:`user_errors` turns a :class:`agentnb.errors.UserError` raised inside its
block into IPython's ``UsageError`` (one red line, no traceback), with the
command it points at spelled as the notebook spells it (``%agent sessions``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from IPython.core.error import UsageError


def magic_message(exc: BaseException) -> str:
    """A UserError as one line for a notebook user."""
    from ..commands.base import message_for

    return message_for("notebook", exc)  # type: ignore[arg-type]


@contextmanager
def user_errors() -> Iterator[None]:
    """Run a block; a :class:`~agentnb.errors.UserError` leaves it as a UsageError."""
    from ..errors import UserError

    try:
        yield
    except UserError as exc:
        raise UsageError(magic_message(exc)) from None


__all__ = ["UsageError", "magic_message", "user_errors"]
