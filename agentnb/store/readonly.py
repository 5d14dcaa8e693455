"""Read-only SQL over the store, for ``store.sql``, ``%agent sql`` and the SQL tool.

A query must be one statement of a reading kind (SELECT, WITH, DESCRIBE,
SHOW, SUMMARIZE, EXPLAIN). On DuckDB the statement
type comes from DuckDB's own parser; elsewhere from the first keyword. The
statement also runs inside a transaction that is always rolled back, so a
write that slipped through leaves nothing behind.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from ..errors import InvalidValueError
from .database import Database

_READ_KEYWORDS = {"select", "with", "describe", "show", "summarize", "explain", "values", "from", "table"}
_COMMENT = re.compile(r"(--[^\n]*\n?)|(/\*.*?\*/)", re.S)


def _check_duckdb(query: str) -> None:
    import duckdb

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise InvalidValueError(f"SQL error: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise InvalidValueError("one SQL statement at a time, please")
    kind = statements[0].type
    allowed = {
        duckdb.StatementType.SELECT,
        duckdb.StatementType.EXPLAIN,
    }
    if kind not in allowed:
        name = str(kind).rsplit(".", 1)[-1]
        raise InvalidValueError(f"the store is read-only here: {name} statements are not allowed")


def _check_generic(query: str) -> None:
    body = _COMMENT.sub(" ", query).strip().rstrip(";").strip()
    if ";" in body:
        raise InvalidValueError("one SQL statement at a time, please")
    first = body.split(None, 1)[0].lower() if body else ""
    if first not in _READ_KEYWORDS:
        raise InvalidValueError(f"the store is read-only here: {first.upper() or 'empty'} statements are not allowed")


def run_readonly(db: Database, query: str, limit: int | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one read-only statement; returns (column names, rows)."""
    if not query or not query.strip():
        raise InvalidValueError("no SQL given")
    query = query.strip().rstrip(";")
    if db.dialect == "duckdb":
        _check_duckdb(query)
    else:
        _check_generic(query)
    with db.read() as conn:
        trans = conn.begin() if not conn.in_transaction() else None
        try:
            try:
                result = conn.exec_driver_sql(query)
            except sa.exc.DBAPIError as exc:
                message = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                raise InvalidValueError(f"SQL error: {message}") from None
            columns = list(result.keys()) if result.returns_rows else []
            rows = [tuple(r) for r in (result.fetchmany(limit) if limit else result.fetchall())] \
                if result.returns_rows else []
        finally:
            if trans is not None:
                trans.rollback()
            elif conn.in_transaction():
                conn.rollback()
    return columns, rows
