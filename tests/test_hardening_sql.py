"""Issue 9, item 1: user SQL is read-only because the database says so.

``store.sql`` / ``%agent sql`` / the ``query_store`` tool share one guard
(``agentnb/store/readonly.py``). These tests try what got through before: an
``EXPLAIN ANALYZE`` that runs a write or a ``SET``, a ``COPY ... TO`` that
writes a file, a table function that makes DuckDB install an extension (and
create ``~/.duckdb``). Each is refused, and the database refuses it too when
the statement check is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import agentnb
from agentnb.errors import InvalidValueError
from agentnb.store import readonly
from agentnb.store.database import Database


def _chat_twice(store):
    agent = store.create_agent("talk")
    agent.chat("first question")
    agent.chat("second question")
    return agent


@pytest.mark.parametrize("statement", [
    "EXPLAIN ANALYZE SET default_order = 'DESC'",
    "explain analyze set default_order='DESC'",
    "/* c */ EXPLAIN (ANALYZE) SET default_order = 'DESC'",
    "SET default_order = 'DESC'",
])
def test_a_user_query_cannot_change_the_stores_settings(duck_store, statement):
    agent = _chat_twice(duck_store)
    before = [m.content for m in agent.history()]
    with pytest.raises(InvalidValueError, match="read-only"):
        duck_store.sql_rows(statement)
    assert [m.content for m in agent.history()] == before
    assert [m.role for m in agent.history()] == ["user", "assistant"] * 2


def test_history_order_holds_even_if_the_statement_check_is_skipped(duckdb_url):
    """The database itself refuses the SET (configuration locked)."""
    store = agentnb.connect(duckdb_url)
    try:
        agent = _chat_twice(store)
        before = [m.content for m in agent.history()]
        db = store._db  # the guard's own layer: skip the statement check on purpose
        with pytest.raises(InvalidValueError, match="locked"):
            readonly._run_duckdb(db, "EXPLAIN ANALYZE SET default_order = 'DESC'", None)
        with pytest.raises(InvalidValueError, match="locked"):
            readonly._run_duckdb(db, "SET default_order = 'DESC'", None)
        assert [m.content for m in agent.history()] == before
    finally:
        store.close()


@pytest.mark.parametrize("template", [
    "EXPLAIN ANALYZE COPY (SELECT 'echo hi') TO '{path}'",
    "EXPLAIN ANALYZE COPY messages TO '{path}'",
    "COPY (SELECT 1) TO '{path}'",
])
def test_copy_to_writes_no_file(duck_store, tmp_path, template):
    target = tmp_path / "x.sh"
    with pytest.raises(InvalidValueError, match="read-only"):
        duck_store.sql_rows(template.format(path=target))
    assert not target.exists()
    # and the database refuses it when the check is skipped
    with pytest.raises(InvalidValueError, match="disabled by configuration"):
        readonly._run_duckdb(duck_store._db, template.format(path=target), None)
    assert not target.exists()


@pytest.mark.parametrize("statement, refusal", [
    ("EXPLAIN ANALYZE INSERT INTO agents (id, name) VALUES ('x', 'x')", "EXPLAIN"),
    ("EXPLAIN ANALYZE DELETE FROM messages", "EXPLAIN"),
    ("EXPLAIN ANALYZE UPDATE agents SET name = 'y'", "EXPLAIN"),
    ("EXPLAIN ANALYZE CREATE TABLE t (x INT)", "EXPLAIN"),
    ("EXPLAIN ANALYZE INSERT INTO agents SELECT * FROM agents", "EXPLAIN"),
    # DuckDB 2 (like PostgreSQL) parses a write inside a WITH clause as a SELECT statement
    ("WITH x AS (DELETE FROM agents RETURNING *) SELECT count(*) FROM x", "not allowed"),
    ("with x as (insert into agents (id, name) values ('a', 'b') returning *) select * from x",
     "not allowed"),
    ("WITH x AS (UPDATE agents SET name = 'y' RETURNING *) SELECT * FROM x", "not allowed"),
])
def test_a_write_hidden_in_a_read_is_refused(duck_store, statement, refusal):
    duck_store.create_agent("keep")
    with pytest.raises(InvalidValueError, match=refusal):
        duck_store.sql_rows(statement)
    assert [a.name for a in duck_store.agents()] == ["keep"]


def test_reading_statements_still_work(duck_store):
    duck_store.create_agent("calc")
    assert duck_store.sql_rows("select name from agents")[1] == [("calc",)]
    assert duck_store.sql_rows("(select 1 as x)") == (["x"], [(1,)])
    assert duck_store.sql_rows("from agents select count(*)")[1] == [(1,)]
    assert duck_store.sql_rows("select ';' as semi") == (["semi"], [(";",)])
    # write keywords inside a string or a quoted name are not writes
    assert duck_store.sql_rows("select 'delete from agents' as t")[1] == [("delete from agents",)]
    assert duck_store.sql_rows('select 1 as "update x set"')[1] == [(1,)]
    columns, rows = duck_store.sql_rows("EXPLAIN ANALYZE SELECT count(*) FROM messages")
    assert rows and columns
    assert duck_store.sql_rows("EXPLAIN SELECT 1")[1]
    assert duck_store.sql_rows("describe agents")[1]
    # a TIMESTAMPTZ result (needed pytz, which was not a dependency)
    (now,), = duck_store.sql_rows("select now()")[1]
    assert now.tzinfo is not None


def test_files_and_other_databases_are_out_of_reach(duck_store, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a,b\n1,2\n")
    for statement in (
        f"select * from read_csv('{secret}')",
        f"select * from '{secret}'",
        "select * from read_text('/etc/hostname')",
    ):
        with pytest.raises(InvalidValueError, match="SQL error"):
            duck_store.sql_rows(statement)


def test_an_extension_table_function_installs_nothing(tmp_path):
    """``sqlite_scan`` used to make DuckDB download sqlite_scanner into ~/.duckdb."""
    home = tmp_path / "home"
    home.mkdir()
    script = textwrap.dedent(
        f"""
        import agentnb
        from agentnb.errors import InvalidValueError
        store = agentnb.connect("duckdb:///{tmp_path}/s.duckdb")
        for q in ("select * from sqlite_scan('{tmp_path}/x.db', 't')",
                  "select * from read_json_auto('https://example.invalid/x.json')",
                  "INSTALL sqlite", "LOAD sqlite"):
            try:
                store.sql_rows(q)
            except InvalidValueError as exc:
                print("refused:", exc)
            else:
                print("ran:", q)
        store.close()
        """
    )
    env = {**os.environ, "HOME": str(home), "AGENTNB_HOME": str(tmp_path / "agentnb")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("refused:") == 4, proc.stdout
    assert list(home.iterdir()) == []  # no ~/.duckdb


def test_sqlite_user_queries_run_query_only(sqlite_url):
    store = agentnb.connect(sqlite_url)
    try:
        store.create_agent("keep")
        with pytest.raises(InvalidValueError, match="not allowed"):
            store.sql_rows("WITH x AS (SELECT 1) DELETE FROM agents")
        # without the keyword check, the database refuses the write (query_only)
        with pytest.raises(InvalidValueError, match="SQL error"):
            readonly._run_sqlalchemy(store._db, "WITH x AS (SELECT 1) DELETE FROM agents", None)
        assert [a.name for a in store.agents()] == ["keep"]
        store.create_agent("more")  # the store's own connection still writes
        assert len(store.agents()) == 2
    finally:
        store.close()


def test_keyword_check_on_its_own():
    for ok in ("select 1", "WITH a AS (SELECT 1) SELECT * FROM a", "(select 1)",
               "-- note\nselect 1", "EXPLAIN ANALYZE SELECT 1", "explain (analyze, format json) select 1"):
        readonly.check_keywords(ok)
    for bad in ("delete from agents", "EXPLAIN ANALYZE DELETE FROM agents", "explain analyze",
                "EXPLAIN (ANALYZE) COPY t TO 'x'", "select 1; delete from agents", ""):
        with pytest.raises(InvalidValueError):
            readonly.check_keywords(bad)


def test_the_store_keeps_its_own_settings_after_user_queries(duck_store):
    duck_store.sql_rows("select 1")
    db = Database(duck_store._db.url)
    try:
        with db.read() as conn:
            assert conn.exec_driver_sql(
                "select current_setting('default_order')").scalar().lower().startswith("asc")
    finally:
        db.close()
