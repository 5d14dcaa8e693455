"""Migrations: they build the schema the models describe, and round-trip with data."""

from __future__ import annotations

import uuid

import duckdb
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import agentnb
from agentnb.errors import StoreVersionError
from agentnb.schemas import NewMessage, NewToolCall
from agentnb.store import migrate
from agentnb.store.connection import ConnectionHolder
from agentnb.store.tables import metadata


def test_models_match_migrations_sqlite(tmp_path):
    """alembic's autogenerate finds nothing to do after upgrade head (SQLite reflects fully)."""
    holder = ConnectionHolder(f"sqlite:///{tmp_path}/m.sqlite")
    with holder.connect() as conn:
        migrate.upgrade(conn, "head")
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    holder.dispose()
    assert diff == []


def _duck_schema(path):
    con = duckdb.connect(str(path))
    try:
        columns = con.execute(
            "select table_name, column_name, data_type, is_nullable, column_default "
            "from duckdb_columns() where schema_name = 'main' and table_name != 'alembic_version' "
            "order by table_name, column_name"
        ).fetchall()
        constraints = con.execute(
            "select table_name, constraint_type, constraint_column_names "
            "from duckdb_constraints() where schema_name = 'main' "
            "and table_name != 'alembic_version' "
            "order by table_name, constraint_type, constraint_column_names::varchar"
        ).fetchall()
        indexes = con.execute(
            "select table_name, index_name, is_unique, expressions from duckdb_indexes() "
            "where schema_name = 'main' order by table_name, index_name"
        ).fetchall()
    finally:
        con.close()
    return columns, constraints, indexes


def test_models_match_migrations_duckdb(tmp_path):
    """DuckDB cannot be reflected by duckdb-engine: compare its catalog instead."""
    migrated = tmp_path / "migrated.duckdb"
    created = tmp_path / "created.duckdb"
    holder = ConnectionHolder(f"duckdb:///{migrated}")
    with holder.connect() as conn:
        migrate.upgrade(conn, "head")
    holder.dispose()
    engine = sa.create_engine(f"duckdb:///{created}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        metadata.create_all(conn)
    engine.dispose()
    m_cols, m_cons, m_idx = _duck_schema(migrated)
    c_cols, c_cons, c_idx = _duck_schema(created)
    assert m_cols == c_cols
    assert m_cons == c_cons
    assert [(t, i, u) for t, i, u, _ in m_idx] == [(t, i, u) for t, i, u, _ in c_idx]
    # and no foreign keys on DuckDB (see tables.py)
    assert not [c for c in m_cons if c[1] == "FOREIGN KEY"]


def test_sqlite_has_foreign_keys(tmp_path):
    holder = ConnectionHolder(f"sqlite:///{tmp_path}/fk.sqlite")
    with holder.connect() as conn:
        migrate.upgrade(conn, "head")
        fks = sa.inspect(conn).get_foreign_keys("messages")
    holder.dispose()
    assert fks and fks[0]["referred_table"] == "sessions"


def _fill(store):
    agent = store.create_agent("calc")
    s = store._repo.create_session(agent.id)
    store._repo.append_turn(s.id, [
        NewMessage(role="user", content="hi"),
        NewMessage(role="assistant", content="", tool_calls=[
            NewToolCall(tool_name="add", input_args={"a": 1}, status="success", output="1")]),
    ])
    store.create_key("calc")


def test_upgrade_downgrade_upgrade_with_data(store_url):
    store = agentnb.connect(store_url)
    _fill(store)
    assert store._repo.counts()["messages"] == 2
    with store._db.raw() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
        migrate.downgrade(conn, "base")
        assert migrate.current_revision(conn) is None
        names = sa.inspect(conn).get_table_names() if conn.dialect.name != "duckdb" else [
            r[0] for r in conn.exec_driver_sql(
                "select table_name from duckdb_tables() where schema_name='main'")]
        assert set(names) <= {"alembic_version"}
        migrate.upgrade(conn, "head")
        assert migrate.current_revision(conn) == migrate.head_revision()
    store.close()
    # a fresh Store on the rebuilt schema works, and takes data again
    store = agentnb.connect(store_url)
    assert store._repo.counts() == {k: 0 for k in store._repo.counts()}
    _fill(store)
    assert store._repo.counts()["tool_calls"] == 1
    store.close()


def test_opening_an_empty_file_creates_the_schema(duckdb_url):
    store = agentnb.connect(duckdb_url)
    assert store.agents() == []
    with store._db.raw() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
    store.close()


def test_older_store_is_upgraded_on_open(tmp_path):
    """A store at an earlier revision (here: empty, base) is brought to head when opened."""
    url = f"duckdb:///{tmp_path}/old.duckdb"
    holder = ConnectionHolder(url)
    with holder.connect() as conn:
        conn.exec_driver_sql("create table alembic_version (version_num varchar(32) primary key)")
        conn.commit()
    holder.dispose()
    store = agentnb.connect(url)
    store.create_agent("x")
    with store._db.raw() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
    store.close()


def test_newer_store_is_refused_and_untouched(tmp_path):
    url = f"duckdb:///{tmp_path}/new.duckdb"
    store = agentnb.connect(url)
    store.create_agent("keep")
    with store._db.raw() as conn:
        conn.exec_driver_sql("update alembic_version set version_num = 'ffff9999'")
        conn.commit()
    store.close()
    store = agentnb.connect(url)
    with pytest.raises(StoreVersionError, match="newer agentnb"):
        store.agents()
    with pytest.raises(StoreVersionError):
        with store._db.raw() as conn:
            migrate.upgrade(conn)
    store.close()
    con = duckdb.connect(str(tmp_path / "new.duckdb"))
    assert con.execute("select version_num from alembic_version").fetchall() == [("ffff9999",)]
    assert con.execute("select name from agents").fetchall() == [("keep",)]
    con.close()


def test_unknown_revision_is_a_user_error(duckdb_url):
    from agentnb.errors import UserError

    store = agentnb.connect(duckdb_url)
    store.init()
    with pytest.raises(UserError):
        with store._db.raw() as conn:
            migrate.upgrade(conn, "nope123")
    store.close()


def test_migrations_ship_with_the_package():
    loc = migrate.script_location()
    assert (loc / "env.py").is_file() and (loc / "script.py.mako").is_file()
    assert any(p.name.endswith(".py") for p in (loc / "versions").iterdir())


def test_schema_head_constant_is_alembic_head():
    from agentnb.store.database import SCHEMA_HEAD

    assert SCHEMA_HEAD == migrate.head_revision()


def test_0002_upgrade_keeps_keys_as_agent_keys(store_url):
    """A store written at revision 0001 (keys of agents, no scopes) opened by this agentnb:
    upgraded to head, every key still verifies, as an agent key of its agent; tool calls
    get empty attrs; downgrading drops admin keys and goes back to 0001."""
    holder = ConnectionHolder(store_url)
    with holder.connect() as conn:
        migrate.upgrade(conn, "0001")
        assert migrate.current_revision(conn) == "0001"
    holder.dispose()
    # a 0001 store with data: written by plain SQL, as that version wrote it
    from agentnb.store import keys as keymat

    plain = keymat.generate_key()
    agent_id, session_id, message_id = (uuid.uuid4() for _ in range(3))
    holder = ConnectionHolder(store_url)
    now = "2026-11-30 10:00:00"
    with holder.begin() as conn:
        ids = [str(agent_id), str(session_id), str(message_id)]
        if conn.dialect.name == "sqlite":
            ids = [i.replace("-", "") for i in ids]
        conn.exec_driver_sql(
            "insert into agents (id, name, description, config, created_at, updated_at) "
            f"values ('{ids[0]}', 'old', '', '{{}}', '{now}', '{now}')")
        conn.exec_driver_sql(
            "insert into sessions (id, agent_id, attrs, created_at, updated_at) "
            f"values ('{ids[1]}', '{ids[0]}', '{{}}', '{now}', '{now}')")
        conn.exec_driver_sql(
            "insert into messages (id, session_id, position, role, content, attrs, status, "
            f"created_at) values ('{ids[2]}', '{ids[1]}', 0, 'assistant', '', '{{}}', "
            f"'complete', '{now}')")
        conn.exec_driver_sql(
            "insert into tool_calls (id, message_id, tool_name, input_args, status, "
            f"created_at, updated_at) values ('{uuid.uuid4().hex}', '{ids[2]}', 'add', "
            f"'{{}}', 'success', '{now}', '{now}')")
        conn.exec_driver_sql(
            "insert into api_keys (id, agent_id, name, key_prefix, key_hash, is_active, "
            f"created_at) values ('{uuid.uuid4().hex}', '{ids[0]}', 'old-key', "
            f"'{keymat.key_prefix(plain)}', '{keymat.hash_key(plain)}', true, '{now}')")
    holder.dispose()

    store = agentnb.connect(store_url)
    record = store.verify_key(plain)
    assert record is not None and record.scope == "agent" and record.agent_id == agent_id
    with store._db.raw() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
    calls = [c for m in store.history(session_id) for c in m.tool_calls]
    assert [c.attrs for c in calls] == [{}]
    admin = store._repo.create_key(None, "ops", admin=True)
    assert store.verify_key(admin.key).scope == "admin"
    with store._db.raw() as conn:
        migrate.downgrade(conn, "0001")
        assert migrate.current_revision(conn) == "0001"
        names = [r[0] for r in conn.exec_driver_sql("select name from api_keys")]
        assert names == ["old-key"]
        migrate.upgrade(conn, "head")
    assert store.verify_key(plain) is not None
    store.close()


# -- PostgreSQL (issue 12) ------------------------------------------------------------------
def test_models_match_migrations_postgresql(postgres_url):
    """On PostgreSQL, too, autogenerate finds nothing to do after upgrade head."""
    holder = ConnectionHolder(postgres_url)
    with holder.connect() as conn:
        migrate.upgrade(conn, "head")
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    holder.dispose()
    assert diff == []


@pytest.mark.parametrize("table, column, referred", [
    ("sessions", "agent_id", "agents"), ("messages", "session_id", "sessions"),
    ("tool_calls", "message_id", "messages"), ("api_keys", "agent_id", "agents"),
])
def test_postgresql_enforces_foreign_keys(postgres_url, table, column, referred):
    """Every child table has its foreign key on PostgreSQL, and the server enforces it."""
    store = agentnb.connect(postgres_url)
    store.init()
    with store._db.raw() as conn:
        fks = sa.inspect(conn).get_foreign_keys(table)
    assert [(fk["constrained_columns"], fk["referred_table"]) for fk in fks] == [
        ([column], referred)]
    agent = store.create_agent("calc")
    session = store._repo.create_session(agent.id)
    rows = {
        "sessions": "insert into sessions (id, agent_id, attrs, created_at, updated_at) "
                    "values (:id, :ref, '{}', now(), now())",
        "messages": "insert into messages (id, session_id, position, role, content, attrs, "
                    "status, created_at) values (:id, :ref, 0, 'user', '', '{}', 'complete', "
                    "now())",
        "tool_calls": "insert into tool_calls (id, message_id, tool_name, input_args, status, "
                      "created_at, updated_at) values (:id, :ref, 'add', '{}', 'success', now(), "
                      "now())",
        "api_keys": "insert into api_keys (id, agent_id, name, key_prefix, key_hash, is_active, "
                    "created_at, scope) values (:id, :ref, 'k', 'p', 'h', true, now(), 'agent')",
    }
    with pytest.raises(sa.exc.IntegrityError, match="foreign key"):
        with store._db.write() as conn:
            conn.execute(sa.text(rows[table]), {"id": uuid.uuid4(), "ref": uuid.uuid4()})
    # and deleting a parent that has children is refused by the server (the store deletes
    # children first, in one transaction: see test_store's delete tests)
    with pytest.raises(sa.exc.IntegrityError, match="foreign key"):
        with store._db.write() as conn:
            conn.execute(sa.text("delete from agents where id = :id"), {"id": agent.id})
    assert store.session(session.id).agent_id == agent.id
    store.close()


def test_newer_postgresql_store_is_refused_and_untouched(postgres_url):
    store = agentnb.connect(postgres_url)
    store.create_agent("keep")
    with store._db.raw() as conn:
        conn.exec_driver_sql("update alembic_version set version_num = 'ffff9999'")
        conn.commit()
    store.close()
    store = agentnb.connect(postgres_url)
    with pytest.raises(StoreVersionError, match="newer agentnb"):
        store.agents()
    with store._db.raw() as conn:
        assert conn.exec_driver_sql("select version_num from alembic_version").all() == [
            ("ffff9999",)]
        assert conn.exec_driver_sql("select name from agents").all() == [("keep",)]
    store.close()


def test_0003_indexes_session_positions_on_sqlite_and_postgresql(store_url):
    """The (session_id, position) index exists where indexes are cheap to keep (SQLite,
    PostgreSQL) and not on DuckDB; 0003 goes down and up again with data."""
    store = agentnb.connect(store_url)
    _fill(store)
    with store._db.raw() as conn:
        def has_index() -> bool:
            if conn.dialect.name == "duckdb":
                return bool(conn.exec_driver_sql(
                    "select count(*) from duckdb_indexes() "
                    "where index_name = 'ix_messages_session_id_position'").scalar())
            return "ix_messages_session_id_position" in {
                i["name"] for i in sa.inspect(conn).get_indexes("messages")}

        assert has_index() == (conn.dialect.name != "duckdb")
        migrate.downgrade(conn, "0002")
        assert not has_index()
        migrate.upgrade(conn, "head")
        assert has_index() == (conn.dialect.name != "duckdb")
    assert store._repo.counts()["messages"] == 2
    store.close()
