"""Read-only SQL over the store, for ``store.sql``, ``%agent sql`` and the SQL tool.

This is the one guard every user query goes through (the model's
``query_store`` tool adds its own stricter checks on top, then calls it).
Read-only is enforced by the database where it can be, with a statement
check as a second line:

* **DuckDB**: the store's database instance runs with external access off,
  extension auto-install/auto-load off and its configuration locked
  (:func:`lock_down_duckdb`, applied when the store opens a connection), so a
  query cannot reach files, the network or settings, even through
  ``EXPLAIN ANALYZE``, which executes its inner statement. The query runs on
  a separate DuckDB connection (a cursor of the instance, closed afterwards)
  inside a transaction that is always rolled back. DuckDB's own parser
  classifies the statement: one SELECT-kind statement, or EXPLAIN of one.
* **PostgreSQL**: the query runs in a ``READ ONLY`` transaction, rolled back
  (which also undoes any ``set_config`` it made).
* **SQLite**: the query runs with ``PRAGMA query_only`` on.

The keyword check (first keyword, and what an EXPLAIN explains) runs on
every dialect.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from ..errors import InvalidValueError
from .connection import DUCKDB_LOCKDOWN, lock_down_duckdb  # noqa: F401  (re-exported)
from .database import Database

_READ_KEYWORDS = {
    "select", "with", "describe", "show", "summarize", "explain", "values", "from", "table",
    "unpivot",
}
_COMMENT = re.compile(r"(--[^\n]*\n?)|(/\*.*?\*/)", re.S)
_WORD = re.compile(r"[A-Za-z_]+")
#: Words that may follow EXPLAIN before the statement it explains.
_EXPLAIN_OPTIONS = {"analyze", "analyse", "verbose"}

def _error_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _words_after_prefix(query: str) -> list[str]:
    """The leading keywords of ``query`` (comments and opening brackets skipped)."""
    body = _COMMENT.sub(" ", query).lstrip().lstrip("(").lstrip()
    return body.split(None, 8)


def _explained(query: str) -> str | None:
    """The statement an ``EXPLAIN [ANALYZE] [(options)]`` explains, or None."""
    body = _COMMENT.sub(" ", query).strip()
    match = re.match(r"explain\b", body, re.I)
    if not match:
        return None
    rest = body[match.end():].lstrip()
    while True:
        if rest.startswith("("):
            close = rest.find(")")
            if close < 0:
                return ""
            rest = rest[close + 1:].lstrip()
            continue
        word = _WORD.match(rest)
        if word and word.group(0).lower() in _EXPLAIN_OPTIONS:
            rest = rest[word.end():].lstrip()
            continue
        return rest


_LITERAL = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$\$.*?\$\$", re.S)
#: A data-modifying statement nested in a reading one (``WITH x AS (DELETE ... RETURNING *)
#: SELECT ...`` parses as a SELECT on PostgreSQL and on DuckDB 2).
_NESTED_WRITE = re.compile(
    r"\b(delete\s+from|insert\s+(or\s+\w+\s+)?into|update\s+[\w.\"]+(\s+\w+)?\s+set|"
    r"merge\s+into|truncate\s+(table\s+)?[\w\"])", re.I)


def _refuse(kind: str) -> InvalidValueError:
    return InvalidValueError(f"the store is read-only here: {kind.upper() or 'empty'} statements are not allowed")


def check_keywords(query: str, *, count_statements: bool = True) -> None:
    """The second line on every dialect: one statement of a reading kind.

    ``count_statements=False`` when a real parser counted them already (a
    ``;`` inside a string literal is not a second statement).
    """
    body = _COMMENT.sub(" ", query).strip().rstrip(";").strip()
    if count_statements and ";" in body:
        raise InvalidValueError("one SQL statement at a time, please")
    words = _words_after_prefix(body)
    first = words[0].lower() if words else ""
    first = _WORD.match(first).group(0) if _WORD.match(first) else first
    if first not in _READ_KEYWORDS:
        raise _refuse(first)
    found = _NESTED_WRITE.search(_LITERAL.sub("''", body))
    if found:
        raise InvalidValueError(
            f"the store is read-only here: {' '.join(found.group(0).split()[:2]).upper()} "
            "is not allowed, in a WITH clause either"
        )
    if first == "explain":
        inner = _explained(body)
        inner_words = _words_after_prefix(inner or "")
        inner_first = inner_words[0].lower() if inner_words else ""
        match = _WORD.match(inner_first)
        inner_first = match.group(0) if match else inner_first
        if inner_first not in _READ_KEYWORDS - {"explain"}:
            raise InvalidValueError(
                f"the store is read-only here: EXPLAIN of {inner_first.upper() or 'nothing'} "
                "is not allowed (EXPLAIN ANALYZE runs the statement)"
            )


def _check_duckdb(query: str) -> None:
    import duckdb

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise InvalidValueError(f"SQL error: {_error_line(exc)}") from None
    if len(statements) != 1:
        raise InvalidValueError("one SQL statement at a time, please")
    kind = statements[0].type
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _explained(query)
        try:
            inner_statements = duckdb.extract_statements(inner) if inner else []
        except duckdb.Error:
            inner_statements = []
        if len(inner_statements) != 1 or inner_statements[0].type != duckdb.StatementType.SELECT:
            name = str(inner_statements[0].type).rsplit(".", 1)[-1] if len(inner_statements) == 1 else "this"
            raise InvalidValueError(
                f"the store is read-only here: EXPLAIN of {name} statements is not allowed "
                "(EXPLAIN ANALYZE runs the statement)"
            )
    elif kind != duckdb.StatementType.SELECT:
        raise _refuse(str(kind).rsplit(".", 1)[-1])


def _fetch(cursor: Any, limit: int | None) -> tuple[list[str], list[tuple[Any, ...]]]:
    if cursor.description is None:
        return [], []
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchmany(limit) if limit else cursor.fetchall()
    return columns, [tuple(r) for r in rows]


def _duckdb_connection(conn: sa.Connection) -> Any:
    """The DuckDB connection under a SQLAlchemy connection (duckdb-engine wraps it)."""
    wrapper = conn.connection.driver_connection
    # duckdb-engine's ConnectionWrapper keeps it in a private attribute.
    return getattr(wrapper, "_ConnectionWrapper__c", wrapper)


def _run_duckdb(db: Database, query: str, limit: int | None) -> tuple[list[str], list[tuple[Any, ...]]]:
    import duckdb

    with db.read() as conn:
        # A connection of its own: its transaction and session state end with it.
        cursor = _duckdb_connection(conn).cursor()
        try:
            cursor.begin()
            try:
                cursor.execute(query)
                return _fetch(cursor, limit)
            except duckdb.Error as exc:
                raise InvalidValueError(f"SQL error: {_error_line(exc)}") from None
            finally:
                try:
                    cursor.rollback()
                except duckdb.Error:  # the failed statement ended the transaction
                    pass
        finally:
            cursor.close()


def _run_sqlalchemy(db: Database, query: str, limit: int | None) -> tuple[list[str], list[tuple[Any, ...]]]:
    with db.read() as conn:
        if conn.in_transaction():
            conn.rollback()
        trans = conn.begin()
        sqlite = db.dialect == "sqlite"
        try:
            if db.dialect == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            elif sqlite:
                conn.exec_driver_sql("PRAGMA query_only = ON")
            try:
                result = conn.exec_driver_sql(query)
                columns = list(result.keys()) if result.returns_rows else []
                rows = [tuple(r) for r in (result.fetchmany(limit) if limit else result.fetchall())] \
                    if result.returns_rows else []
            except sa.exc.DBAPIError as exc:
                raise InvalidValueError(f"SQL error: {_error_line(exc)}") from None
        finally:
            trans.rollback()
            if sqlite:
                conn.exec_driver_sql("PRAGMA query_only = OFF")
                if conn.in_transaction():
                    conn.rollback()
    return columns, rows


def run_readonly(db: Database, query: str, limit: int | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one read-only statement; returns (column names, rows).

    Raises :class:`~agentnb.errors.InvalidValueError` (one line) for a
    statement that is not read-only or that the database rejects.
    """
    if not query or not query.strip():
        raise InvalidValueError("no SQL given")
    query = query.strip().rstrip(";").strip()
    if db.dialect == "duckdb":
        _check_duckdb(query)
    check_keywords(query, count_statements=db.dialect != "duckdb")
    if db.dialect == "duckdb":
        return _run_duckdb(db, query, limit)
    return _run_sqlalchemy(db, query, limit)
