"""The command layer: every operation of the front ends, defined once.

One module per family (``agents``, ``sessions``, ``tools``, ``keys``,
``analysis``, ``catalog``, ``store``, ``chat``, ``serve``, ``mcp``); :mod:`.base` has the
machinery (typed arguments, the registry, parsing, the context). The CLI
(:mod:`agentnb.cli`), the ``%agent`` magic (:mod:`agentnb.notebook.magics`)
and the HTTP and MCP front ends parse, call :func:`run`, and display the result
object. Importing this package imports no heavy module: each handler imports
what it needs.
"""

from __future__ import annotations

# The order of these imports is the order of the commands in --help and %agent help.
from . import store, agents, catalog, sessions, chat, tools, keys, analysis, serve, mcp  # noqa: F401,I001
from . import tutorials  # noqa: F401,E402  (CLI only: a working copy of the notebooks)
from .base import *  # noqa: F401,F403  (the command layer's public names)
from .base import __all__  # noqa: F401
