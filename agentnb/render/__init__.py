"""What the front ends show: result objects, HTML pieces, a running turn's state, text printing.

* ``results``: the objects commands return (tables, key-values, notices,
  transcripts): HTML in a notebook, text in a terminal, JSON for ``--json``/HTTP;
* ``markup``: the HTML of messages, tool-call cards and status lines;
* ``live``: a running turn folded from the engine's events;
* ``printer``: a turn's events printed as text (the CLI, terminal IPython).

Standard library only (markdown-it-py on first use): loading this package
costs nothing at ``%load_ext``.
"""
