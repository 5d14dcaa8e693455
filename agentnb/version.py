"""The version of agentnb (one place: the package, the CLI and the HTTP API read it)."""

__version__ = "0.1.0"
