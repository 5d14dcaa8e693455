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
def reserved_words() -> frozenset[str]:
    """DuckDB's reserved keywords (what duckdb-engine's preparer adds to PostgreSQL's)."""
    con = duckdb.connect(":memory:")
    try:
        return frozenset(r[0] for r in con.execute(
            "select keyword_name from duckdb_keywords() where keyword_category == 'reserved'"
        ).fetchall())
    finally:
        con.close()


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
