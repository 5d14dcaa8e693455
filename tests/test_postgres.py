"""PostgreSQL as the team store: many processes on one server, the pool, who did what.

The rest of the store's suite runs on PostgreSQL through the ``store_url`` fixture
(tests/conftest.py); this module has what only a server can do. Skipped with the reason
when no server is reachable (CI, with AGENTNB_POSTGRES_TESTS=1, fails instead).
"""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa

import agentnb
from agentnb.schemas import NewMessage

from .test_concurrency import WRITER, _check_session, _finish, _make_sessions, _spawn


@pytest.mark.slow
def test_eight_processes_write_turns_at_once(postgres_url, tmp_path):
    """8 processes, each writing turns to its own session and to one shared session:
    no error, no row lost, the positions of every session contiguous, each turn whole."""
    turns = 12
    own = _make_sessions(postgres_url, tmp_path, 9)
    shared, own = own[0], own[1:]
    procs = [
        _spawn(WRITER, {"url": postgres_url, "home": str(tmp_path), "sessions": [sid, shared],
                        "turns": turns, "tag": f"p{k}"}, tmp_path)
        for k, sid in enumerate(own)
    ]
    _finish(procs, timeout=240)
    with agentnb.connect(postgres_url, home=tmp_path) as store:
        for k, sid in enumerate(own):
            _check_session(store, sid, turns, {f"p{k}"})
        _check_session(store, shared, 8 * turns, {f"p{k}" for k in range(8)})
        history = store._repo.history(uuid.UUID(shared))
        counts = store.counts()
    for start in range(0, len(history), 3):  # no process wrote inside another's turn
        assert len({m.content.split()[0] for m in history[start:start + 3] if m.content}) == 1
    assert counts["messages"] == 2 * 8 * 3 * turns
    assert counts["tool_calls"] == 2 * 8 * turns


def test_threads_use_their_own_pooled_connections(postgres_url):
    """A server store hands each thread a connection of its own from the pool (no file
    hand-over): two threads are inside a unit of work at the same time."""
    store = agentnb.connect(postgres_url)
    store.init()
    holder = store._db.holder
    assert type(holder).__name__ == "PooledHolder"
    inside = threading.Barrier(2, timeout=30)
    pids = []

    def work():
        with store._db.read() as conn:
            pids.append(conn.exec_driver_sql("select pg_backend_pid()").scalar_one())
            inside.wait()  # both threads hold a connection now

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(set(pids)) == 2
    # nested units of work on one thread share the connection (and its transaction)
    with store._db.write() as outer:
        outer.exec_driver_sql("create temporary table t (x int)")
        with store._db.read() as inner:
            assert inner is outer
    store.close()


def test_agent_map_runs_on_postgresql(postgres_url):
    """``agent.map`` (concurrent turns into one session) on a pooled store."""
    store = agentnb.connect(postgres_url)
    agent = store.create_agent("calc", model="offline")
    items = [f"item {i}" for i in range(6)]
    results = agent.map(items, concurrency=3, progress=False)
    assert all(f'"{item}"' in r.text for item, r in zip(items, results)), results
    (summary,) = store.sessions("calc")
    assert summary.turns == 6
    positions = [m.position for m in store.history(summary.session.id)]
    assert positions == list(range(len(positions)))
    store.close()


def test_a_plain_postgresql_url_works_with_psycopg_3(postgres_url):
    """``postgresql://`` names SQLAlchemy's default driver (psycopg2); with only psycopg 3
    installed (agentnb[postgres]) the store uses that, so a URL copied as is works."""
    import importlib.util

    if importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed: postgresql:// uses it")
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    assert plain != postgres_url
    with agentnb.connect(plain) as store:
        store.create_agent("calc")
        assert [a.name for a in store.agents()] == ["calc"]


def test_an_unreachable_server_is_one_line(capsys):
    """No server at the address: one line naming it (password masked), exit 2."""
    from agentnb.cli import main

    code = main(["--db", "postgresql+psycopg://bob:pa55word@127.0.0.1:1/x", "agents", "list"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("agentnb: error: cannot connect to the store postgresql+psycopg://")
    assert "pa55word" not in err[0] and "127.0.0.1" in err[0]


def test_a_wrong_password_is_one_line(postgres_url, capsys):
    from sqlalchemy.engine import make_url

    from agentnb.cli import main

    wrong = make_url(postgres_url).set(password="not-the-password").render_as_string(
        hide_password=False)
    code = main(["--db", wrong, "agents", "list"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "password authentication failed" in err[0] and "not-the-password" not in err[0]


# -- the read-only SQL guard on PostgreSQL ------------------------------------------------
@pytest.fixture
def pg_store(postgres_url):
    store = agentnb.connect(postgres_url)
    store.create_agent("calc")
    yield store
    store.close()


@pytest.mark.parametrize("sql, fragment", [
    ("select pg_read_file('/etc/hostname')", "function pg_read_file() is not allowed"),
    ("select pg_read_binary_file('/etc/passwd')", "pg_read_binary_file() is not allowed"),
    ("select * from pg_ls_dir('.')", "pg_ls_dir"),
    ("select pg_stat_file('postgresql.conf')", "pg_stat_file() is not allowed"),
    ("select lo_import('/etc/passwd')", "lo_import() is not allowed"),
    ("select query_to_xml('select pg_read_file(''/etc/hostname'')', true, false, '')",
     "query_to_xml() is not allowed"),
    ("select set_config('search_path', 'public', false)", "set_config() is not allowed"),
    ("select current_setting('data_directory')", "current_setting() is not allowed"),
    ("select name from agents where name = (select pg_read_file('/etc/hostname'))",
     "pg_read_file() is not allowed"),
    ("copy agents to '/tmp/agents.csv'", "not COPY statements"),
    # a write inside a SELECT passes DuckDB's parser; the server's READ ONLY refuses it
    # refused by the keyword check first (the server refuses it too: see the next test)
    ("with x as (delete from agents returning *) select * from x", "is not allowed"),
])
def test_query_store_refuses_the_servers_files_on_postgresql(pg_store, sql, fragment):
    """The model's tool refuses PostgreSQL's file, settings and SQL-as-text functions
    before the server sees them (a superuser role could read files with them)."""
    from agentnb.tools import builtin_tools

    from .test_tools import run

    query = builtin_tools(sql_rows=pg_store.sql_rows)["query_store"]
    outcome = run(query, {"sql": sql})
    assert outcome.status == "error", outcome
    assert fragment in outcome.error_message
    assert [a.name for a in pg_store.agents()] == ["calc"]
    ok = run(query, {"sql": "select name from agents"})
    assert ok.status == "success" and "calc" in ok.output


def test_user_sql_on_postgresql_is_refused_file_access_and_runs_read_only(pg_store):
    """``%agent sql`` / ``store.sql`` on PostgreSQL: the test role (an ordinary one, as a
    team's should be) gets no file access from the server, and every statement runs in a
    READ ONLY transaction, so a write hidden in a query is refused by the server."""
    from agentnb.errors import InvalidValueError
    from agentnb.store import readonly

    with pytest.raises(InvalidValueError, match="permission denied for function pg_read_file"):
        pg_store.sql_rows("select pg_read_file('/etc/hostname')")
    _, rows = pg_store.sql_rows("select current_setting('transaction_read_only')")
    assert rows == [("on",)]
    for hidden_write in [
        "with x as (delete from agents returning *) select * from x",
        "select * from agents for update",
        "with x as (update agents set name = 'x' returning name) select * from x",
    ]:
        with pytest.raises(InvalidValueError, match="read-only transaction|is not allowed"):
            pg_store.sql_rows(hidden_write)
        # the keyword check refuses the nested writes first; the server refuses them too
        with pytest.raises(InvalidValueError, match="read-only transaction"):
            readonly._run_sqlalchemy(pg_store._db, hidden_write, None)
    assert [a.name for a in pg_store.agents()] == ["calc"]
    # a setting changed by a user query does not leak into the store's own connections
    pg_store.sql_rows("select set_config('search_path', 'pg_catalog', false)")
    assert [a.name for a in pg_store.agents()] == ["calc"]
    # and the store's own writes are not read-only afterwards
    pg_store.create_agent("after")
    assert {a.name for a in pg_store.agents()} == {"calc", "after"}


def test_a_team_on_one_store_keeps_its_members_conversations_apart(postgres_url, monkeypatch,
                                                                     capsys):
    """alice and bob chat with one agent of a shared store: each continues their own
    session, never the other's; listings and usage tell them apart (CLI and Python)."""
    from agentnb.cli import main

    with agentnb.connect(postgres_url, user="alice") as alice:
        alice.create_agent("calc", model="offline")
        first = alice.agent("calc").chat("alice one")
    with agentnb.connect(postgres_url, user="bob") as bob:
        reply = bob.agent("calc").chat("bob one")
        assert reply.session_id != first.session_id  # not alice's conversation
    monkeypatch.setenv("AGENTNB_DATABASE_URL", postgres_url)
    monkeypatch.setenv("AGENTNB_USER", "alice")
    assert main(["chat", "calc", "alice two"]) == 0
    with agentnb.connect(postgres_url) as store:
        assert [m.content for m in store.history(first.session_id) if m.role == "user"] == [
            "alice one", "alice two"]
    capsys.readouterr()
    assert main(["sessions", "list", "--user", "bob", "--json"]) == 0
    import json

    listed = json.loads(capsys.readouterr().out)
    assert [(s["user"], s["turns"]) for s in listed] == [("bob", 1)]
    assert main(["usage", "--by", "user", "--json"]) == 0
    usage = {r["key"]: r["turns"] for r in json.loads(capsys.readouterr().out)}
    assert usage == {"alice": 2, "bob": 1}
    assert main(["sessions", "list", "--user", "carol"]) == 0
    assert "no sessions of user carol" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_with_several_workers_on_postgresql(postgres_url):
    """``agentnb serve --workers 2`` on a PostgreSQL store: concurrent OpenAI-client turns
    are all answered and stored (each a session recorded for the key's name), by more
    than one worker process."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    import openai

    from .serve_helpers import ServeProcess, make_keys, setup_store

    store = setup_store(postgres_url)
    keys, _ = make_keys(store)
    store.close()
    proc = ServeProcess(postgres_url, "calc", "--workers", "2")
    try:
        client = openai.OpenAI(base_url=proc.url + "/v1", api_key=keys["calc"], max_retries=0,
                               http_client=httpx.Client(timeout=120))

        def turn(i: int) -> str:
            reply = client.chat.completions.create(
                model="calc", messages=[{"role": "user", "content": f"question {i}"}])
            return reply.choices[0].message.content

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(turn, range(16)))
        assert all(f'"question {i}"' in a for i, a in enumerate(answers)), answers
        import psutil

        workers = psutil.Process(proc.proc.pid).children(recursive=True)
        assert len([w for w in workers if "python" in w.name().lower()]) >= 2, workers
    finally:
        proc.stop()
    with agentnb.connect(postgres_url) as check:
        sessions = check.sessions("calc", limit=100)
        assert len(sessions) == 16 and {s.turns for s in sessions} == {1}
        assert {s.session.user_id for s in sessions} == {"calc-key"}
        assert [(r.key, r.turns) for r in check.usage("user")] == [("calc-key", 16)]


#: Opens a store (creating its schema if it has none) and writes one agent.
OPENER = """
import sys, agentnb
with agentnb.connect(sys.argv[1], home=sys.argv[2]) as store:
    store.create_agent(sys.argv[3])
print("ok", flush=True)
"""


@pytest.mark.slow
def test_processes_opening_a_new_store_at_once_create_its_schema_once(postgres_url, tmp_path):
    """Four processes open an empty PostgreSQL store at the same time: one migrates (an
    advisory lock), the others wait and find the schema at head; all of them work."""
    import subprocess
    import sys

    from .test_concurrency import _env

    procs = [subprocess.Popen([sys.executable, "-c", OPENER, postgres_url, str(tmp_path),
                               f"agent{k}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=_env(tmp_path), cwd=str(tmp_path))
             for k in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0 and out.strip() == "ok", err
    with agentnb.connect(postgres_url) as store:
        assert sorted(a.name for a in store.agents()) == [f"agent{k}" for k in range(4)]
        assert store.schema_status().is_head
