"""duckdb-engine's dialect without DuckDB's default in-memory database.

duckdb-engine's identifier preparer reads DuckDB's reserved words through
``duckdb.cursor()``: a cursor of the module's *default* connection, which
creates an in-memory database and keeps it for the life of the process
(~6 MB of a store process's resident memory, for a list of ~75 words). This
dialect reads the same words once from a short-lived in-memory connection
(closed at once) and is otherwise duckdb-engine's. The store's engines use
it under the name ``duckdb+agentnb`` (see ``create_store_engine``); its
``name`` stays ``duckdb`` for everything that asks (alembic, the repository).
"""

from __future__ import annotations

import functools
from typing import Any

import duckdb
import duckdb_engine
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.base import PGIdentifierPreparer


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[frozenset[str], frozenset[str]]:
    """DuckDB's reserved keywords and its setting names, from one short-lived database.

    Each new in-memory DuckDB database costs ~20-100 ms to create; duckdb-engine
    makes one for each of these questions (and keeps the first).
    """
    con = duckdb.connect(":memory:")
    try:
        words = frozenset(r[0] for r in con.execute(
            "select keyword_name from duckdb_keywords() where keyword_category == 'reserved'"
        ).fetchall())
        settings = frozenset(r[0] for r in con.execute(
            "select name from duckdb_settings()").fetchall())
    finally:
        con.close()
    return words, settings


def reserved_words() -> frozenset[str]:
    """DuckDB's reserved keywords (what duckdb-engine's preparer adds to PostgreSQL's)."""
    return _probe()[0]


def _core_config() -> set[str]:
    """duckdb-engine's ``get_core_config()``: the same set, from :func:`_probe`."""
    return set(_probe()[1]) | _MOTHERDUCK_KEYS


_MOTHERDUCK_KEYS = {"motherduck_token", "attach_mode", "saas_mode"}
# duckdb-engine's connect() asks get_core_config(), which opens another in-memory
# database: answer from the probe (the same names; its own answer is cached per process
# too). Only while it has not answered yet, so nobody's cached answer changes.
_original = getattr(duckdb_engine, "get_core_config", None)
if getattr(_original, "cache_info", None) is not None and _original.cache_info().currsize == 0:
    duckdb_engine.get_core_config = _core_config


class IdentifierPreparer(duckdb_engine.DuckDBIdentifierPreparer):
    def __init__(self, dialect: Any, **kwargs: Any) -> None:
        PGIdentifierPreparer.__init__(self, dialect, **kwargs)
        self.reserved_words.update(reserved_words())


class Dialect(duckdb_engine.Dialect):
    preparer = IdentifierPreparer
    #: As duckdb-engine's (SQLAlchemy asks every subclass to say it again).
    supports_statement_cache = False


#: The driver name the store's DuckDB URLs get (``duckdb+agentnb:///path``).
DRIVER = "agentnb"
registry.register(f"duckdb.{DRIVER}", __name__, "Dialect")

__all__ = ["DRIVER", "Dialect", "reserved_words"]
