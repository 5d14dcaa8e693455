"""The IPython front end: ``%load_ext agentnb``, ``%agent``, ``%%chat`` and the widgets.

Modules, each about one thing:

* ``extension``: load/unload, and :func:`~agentnb.notebook.extension.get_magics`
  to reach the shell's :class:`~agentnb.notebook.magics.AgentMagics`.
* ``magics``: ``AgentMagics``, the configurable magic class (settings, the
  magics themselves) holding the notebook's :class:`~.state.NotebookState`.
* ``state``: the notebook's store, current agent and agent handles (the bottom of
  the package: it imports no other notebook module).
* ``dispatch``: ``%agent`` as a front end of the command layer
  (:mod:`agentnb.commands`): find the command, parse, run, show.
* ``chat``: the ``%%chat`` cell magic: arguments, the streaming views (one
  output updated in place in a notebook, printed text in a terminal), approval
  at a prompt, the Reply as the cell's result.
* ``interpolate``: ``{var}`` / ``{In[n]}`` / ``{Out[n]}`` / ``{Err}`` in a message.
* ``panel``, ``browser``: the ipywidgets chat panel and session browser.
* ``parsing``: ``user_errors()`` (UserError -> one-line UsageError).

What is drawn (result objects, HTML pieces, a running turn's state) lives in
:mod:`agentnb.render`, shared with the other front ends.

Nothing is imported here, so ``%load_ext agentnb`` stays cheap.
"""
