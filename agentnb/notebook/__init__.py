"""The IPython front end: ``%load_ext agentnb``, ``%agent``, ``%%chat`` and the widgets.

Modules, each about one thing:

* ``extension``: load/unload, and :func:`~agentnb.notebook.extension.get_magics`
  to reach the shell's :class:`~agentnb.notebook.magics.AgentMagics`.
* ``magics``: ``AgentMagics``, the configurable magic class that owns the
  notebook state (store, current agent and session, tool registry).
* ``commands``: the ``%agent`` subcommands and their dispatcher.
* ``chat``: the ``%%chat`` cell magic: arguments, the streaming views (one
  output updated in place in a notebook, printed text in a terminal), approval
  at a prompt, the Reply as the cell's result.
* ``interpolate``: ``{var}`` / ``{In[n]}`` / ``{Out[n]}`` / ``{Err}`` in a message.
* ``live``: a running turn's state folded from the engine's events (shared by
  ``%%chat`` and the panel).
* ``markup``: the HTML of messages, tool cards and status lines.
* ``panel``, ``browser``: the ipywidgets chat panel and session browser.
* ``parsing``: argparse that raises ``UsageError``, ``shlex`` splitting,
  ``user_errors()`` (UserError -> UsageError).
* ``render``: result objects that show as HTML/Markdown in a notebook and as
  aligned text in a terminal.

Nothing is imported here, so ``%load_ext agentnb`` stays cheap.
"""
