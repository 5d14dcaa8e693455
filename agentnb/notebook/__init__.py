"""The IPython front end: ``%load_ext agentnb`` and the ``%agent`` magic.

Modules, each about one thing:

* ``extension``: load/unload, and :func:`~agentnb.notebook.extension.get_magics`
  to reach the shell's :class:`~agentnb.notebook.magics.AgentMagics`.
* ``magics``: ``AgentMagics``, the configurable magic class that owns the
  notebook state (store, current agent and session, tool registry).
* ``commands``: the ``%agent`` subcommands and their dispatcher.
* ``parsing``: argparse that raises ``UsageError``, ``shlex`` splitting,
  ``user_errors()`` (UserError -> UsageError).
* ``render``: result objects that show as HTML/Markdown in a notebook and as
  aligned text in a terminal.

Nothing is imported here, so ``%load_ext agentnb`` stays cheap.
"""
