"""``{var}`` in a ``%%chat`` cell: notebook values put into the message.

* ``{name}``, ``{name.attr}``, ``{name[key]}``, with ``!r``/``!s`` and a format
  spec (``{total:,.2f}``), take their value from the notebook namespace;
* ``{In[3]}`` and ``{Out[3]}`` are IPython's input and output history, as in
  jupyter-ai's magics; ``{Err}`` is the last exception with its traceback and
  ``{Err[3]}`` the one that cell 3 raised;
* ``{{`` and ``}}`` are literal braces;
* anything else in braces (an unknown name, JSON, a set literal, a lone brace)
  stays exactly as written, so pasting code or JSON into a message is safe.
"""

from __future__ import annotations

import traceback

from ..text import interpolate  # the one rule (also agent.map's prompts)

_IPYTHON_CORE = "IPython/core/"


def exception_text(exc: BaseException) -> str:
    """An exception as Python prints it: traceback and the final ``Type: message`` line.

    The frames of IPython's own machinery (``run_code``) are left out: the
    traceback starts at the user's cell, as the notebook showed it.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and (
            _IPYTHON_CORE in tb.tb_frame.f_code.co_filename.replace("\\", "/")):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


class ErrorHistory(dict):
    """``Err``: the exception each cell raised, by execution count.

    ``{Err}`` (the object itself) formats as the most recent one.
    """

    def latest(self) -> str:
        if not self:
            return ""
        return self[max(self)]

    def __format__(self, spec: str) -> str:
        return format(self.latest(), spec)

    def __str__(self) -> str:
        return self.latest()


__all__ = ["ErrorHistory", "exception_text", "interpolate"]
