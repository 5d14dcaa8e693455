"""Turning a magic line into arguments, and user mistakes into one-line UsageErrors.

Front-end code (``%agent``, ``%%chat``, the panel) uses three things here:

* :class:`MagicArgumentParser`: argparse whose errors are ``UsageError`` lines
  ("%agent create: the following arguments are required: NAME ...") instead
  of a ``SystemExit`` and text on stderr; ``--help`` is left to the caller
  (see :func:`wants_help`).
* :func:`split_line`: ``shlex`` splitting with a readable error for an
  unbalanced quote.
* :func:`user_errors`: a context manager turning :class:`agentnb.errors.UserError`
  into ``UsageError`` with the message adapted to the magics (the store's
  messages name CLI commands).
"""

from __future__ import annotations

import argparse
import difflib
import re
import shlex
from contextlib import contextmanager
from typing import Iterator, Sequence

from IPython.core.error import UsageError


class MagicArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser for one ``%agent`` subcommand that raises UsageError."""

    def __init__(self, prog: str, **kwargs) -> None:
        kwargs.setdefault("add_help", False)  # --help is handled by the dispatcher
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(prog=prog, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise UsageError(f"{self.prog}: {message.strip()}")
        raise UsageError(f"{self.prog}: stopped")

    def parse_line(self, args: Sequence[str]) -> argparse.Namespace:
        """Parse tokens; a token such as ``-5`` is taken as a value, not a flag."""
        return self.parse_args(list(args))


def split_line(line: str, prog: str = "%agent") -> list[str]:
    """Split a magic line like a shell does; an unclosed quote is a UsageError."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(
            f"{prog}: {exc} in {line.strip()!r}; close the quote, or quote text that has spaces"
        ) from None


def wants_help(tokens: Sequence[str]) -> bool:
    """True when the user asked for help (``-h``/``--help``) anywhere in ``tokens``."""
    return any(t in ("-h", "--help") for t in tokens)


def close_match(word: str, choices: Sequence[str]) -> str | None:
    """The choice nearest to ``word``, if one is close enough to suggest."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


# The store's messages point at CLI commands; in a notebook point at the magics.
_CLI_HINTS = [
    (re.compile(r"\(see: agentnb sessions list\)"), "(see %agent sessions)"),
    (re.compile(r"\(see: agentnb keys list\)"), "(see %agent keys list)"),
    (re.compile(r"\(see: agentnb agents list\)"), "(see %agent list)"),
    (re.compile(r"\(see: agentnb templates list\)"), "(see %agent templates)"),
]


def magic_message(message: str) -> str:
    """A UserError message worded for a notebook user (one line, magic hints)."""
    text = " ".join(str(message).split()) or "invalid input"
    for pattern, replacement in _CLI_HINTS:
        text = pattern.sub(replacement, text)
    if text.startswith("no agent named") and "%agent" not in text:
        text += " (see %agent list)"
    elif text.startswith("no template named") and "%agent" not in text:
        text += " (see %agent templates)"
    return text


@contextmanager
def user_errors() -> Iterator[None]:
    """Run a block; a :class:`~agentnb.errors.UserError` leaves it as a UsageError."""
    from ..errors import UserError

    try:
        yield
    except UserError as exc:
        raise UsageError(magic_message(str(exc))) from None


__all__ = [
    "MagicArgumentParser",
    "UsageError",
    "close_match",
    "magic_message",
    "split_line",
    "user_errors",
    "wants_help",
]
