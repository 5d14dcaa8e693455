"""``agentnb db copy``: a local store to PostgreSQL and back, identical; refusals; atomicity."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

import agentnb
from agentnb.cli import main
from agentnb.errors import UserError
from agentnb.schemas import NewMessage, NewToolCall
from agentnb.store.copy import TABLES

T0 = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=timezone.utc)


def _fill(store, sessions: int, turns: int) -> None:
    """``sessions`` x ``turns`` turns of 4 messages (one tool call each), keys, two users."""
    calc = store.create_agent("calc", model="offline", system="You add. ✓ añ",
                              description="adds")
    store.create_agent("empty")
    repo = store._repo
    for s in range(sessions):
        session = store.new_session("calc", title=f"s{s}", user=("alice", "bob")[s % 2],
                                    notebook="x.ipynb", nested={"k": [1, None, "é"]})
        messages = []  # one append for the whole session: quick to build a big store
        for t in range(turns):
            at = T0 + timedelta(seconds=s * turns + t)
            messages += [
                NewMessage(role="user", content=f"question {s}/{t}", created_at=at),
                NewMessage(role="assistant", content="", model="offline", input_tokens=7,
                           output_tokens=2, created_at=at, tool_calls=[NewToolCall(
                               tool_name="add", input_args={"a": t, "b": [s, 1.5]},
                               output=str(t + s), status="success",
                               execution_time_ms=0.25 + t, created_at=at,
                               attrs={"server": None})]),
                NewMessage(role="tool", content=str(t + s), attrs={"tool_call_id": f"c{t}"},
                           created_at=at),
                NewMessage(role="assistant", content=f"answer\n{s}/{t}", model="offline",
                           input_tokens=12, output_tokens=4, status="interrupted" if t == 0
                           else "complete", created_at=at),
            ]
        repo.append_turn(session.id, messages)
    store.create_key("calc", "ci")
    repo.create_key(None, "ops", admin=True)
    repo.revoke_key(store.create_key(calc.name, "old").record.id)


def _contents(url: str) -> dict[str, list[dict]]:
    """Every row of every table through the column types, ids as text, sorted by id."""
    store = agentnb.connect(url)
    out = {}
    with store._db.read() as conn:
        for table in TABLES:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(table))]
            for row in rows:
                for key, value in row.items():
                    if isinstance(value, uuid.UUID):
                        row[key] = str(value)
            out[table.name] = sorted(rows, key=lambda r: r["id"])
    store.close()
    return out


def _file_digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_10000_messages_duckdb_to_postgresql_and_back_are_identical(tmp_path, postgres_url):
    source = f"duckdb:///{tmp_path}/local.duckdb"
    with agentnb.connect(source) as store:
        _fill(store, sessions=50, turns=50)
        assert store.counts()["messages"] == 10_000
    original = _contents(source)
    digest = _file_digest(tmp_path / "local.duckdb")

    with agentnb.connect(source) as store:
        report = store.copy_to(postgres_url)
    assert {t.table: t.copied for t in report.tables} == {
        "agents": 2, "sessions": 50, "messages": 10_000, "tool_calls": 2_500, "api_keys": 3}
    assert _file_digest(tmp_path / "local.duckdb") == digest  # the source is only read
    assert _contents(postgres_url) == original

    back = f"duckdb:///{tmp_path}/back.duckdb"
    with agentnb.connect(back) as store:
        again = store.copy_from(postgres_url)
    assert [t.checksum for t in again.tables] == [t.checksum for t in report.tables]
    assert _contents(back) == original
    # what users see is the same too
    with agentnb.connect(back) as store:
        assert {r.key: r.turns for r in store.usage("user")} == {"alice": 1250, "bob": 1250}
        assert store.verify_key("anb_not-a-key") is None


def test_copy_between_every_pair_of_dialects(store_url, tmp_path):
    """duckdb, sqlite, postgresql as the source, into a SQLite and a DuckDB target."""
    with agentnb.connect(store_url) as store:
        _fill(store, sessions=3, turns=4)
    original = _contents(store_url)
    for target in (f"sqlite:///{tmp_path}/t.sqlite", f"duckdb:///{tmp_path}/t.duckdb"):
        with agentnb.connect(target) as store:
            store.copy_from(store_url)
        assert _contents(target) == original, target


def test_a_non_empty_target_is_refused_unless_merge(tmp_path, store_url):
    source = f"duckdb:///{tmp_path}/src.duckdb"
    with agentnb.connect(source) as store:
        _fill(store, sessions=2, turns=2)
    with agentnb.connect(store_url) as target:
        target.create_agent("theirs", model="offline").chat("hi")
        before = target.counts()
        with pytest.raises(UserError, match=r"not empty \(1 agents, 1 sessions, 2 messages\).*"
                                            r"--merge"):
            target.copy_from(source)
        assert target.counts() == before
        report = target.copy_from(source, merge=True)
        assert report.copied == sum(_contents(source)[t.name].__len__() for t in TABLES)
        # merging again adds nothing: every row is already there
        again = target.copy_from(source, merge=True)
        assert again.copied == 0 and sum(t.skipped for t in again.tables) == report.copied
        assert {a.name for a in target.agents()} == {"theirs", "calc", "empty"}


def test_merge_stops_at_an_agent_name_taken_by_another_agent(tmp_path, duckdb_url):
    source = f"duckdb:///{tmp_path}/src.duckdb"
    with agentnb.connect(source) as store:
        store.create_agent("calc")
    with agentnb.connect(duckdb_url) as target:
        target.create_agent("calc")
        with pytest.raises(UserError, match="already has other agents named 'calc'"):
            target.copy_from(source, merge=True)
        assert target.counts()["agents"] == 1


def test_an_interrupted_copy_leaves_the_target_as_it_was(tmp_path, store_url):
    """One transaction: Ctrl-C while the tool calls go in, no agent, session or message
    stays in the target."""
    source = f"duckdb:///{tmp_path}/src.duckdb"
    with agentnb.connect(source) as store:
        _fill(store, sessions=2, turns=3)
    target = agentnb.connect(store_url)
    target.init()
    seen = []

    def interrupt(table, done, total):
        seen.append((table, done))
        if table == "tool_calls":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        target.copy_from(source, progress=interrupt)
    assert ("messages", 24) in seen  # the messages were written (then rolled back)
    assert set(target.counts().values()) == {0}
    target.copy_from(source)  # and it works afterwards
    assert target.counts()["tool_calls"] == 6
    target.close()


def test_the_source_is_never_created_upgraded_or_written(tmp_path, duckdb_url):
    missing = tmp_path / "nope.duckdb"
    with agentnb.connect(duckdb_url) as store:
        with pytest.raises(UserError, match="no store at .*nope.duckdb"):
            store.copy_from(f"duckdb:///{missing}")
    assert not missing.exists()
    # a store at an older schema revision is not upgraded by being copied
    old = f"duckdb:///{tmp_path}/old.duckdb"
    from agentnb.store import migrate
    from agentnb.store.connection import ConnectionHolder

    holder = ConnectionHolder(old)
    with holder.connect() as conn:
        migrate.upgrade(conn, "0001")
    holder.dispose()
    digest = _file_digest(tmp_path / "old.duckdb")
    with agentnb.connect(duckdb_url) as store:
        with pytest.raises(UserError, match="schema revision 0001.*db upgrade"):
            store.copy_from(old)
        with pytest.raises(UserError, match="same store"):
            store.copy_to(duckdb_url)
    assert _file_digest(tmp_path / "old.duckdb") == digest


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_db_copy_shows_progress_and_one_line_errors(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("AGENTNB_HOME", str(home))
    with agentnb.connect() as store:
        _fill(store, sessions=2, turns=2)
    target = f"sqlite:///{tmp_path}/team.sqlite"
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    out = io.StringIO()
    assert main(["db", "copy", "--to", target], out=out, err=terminal) == 0
    assert "copied 27 rows" in out.getvalue() and "row counts and id checksums match" in \
        out.getvalue()
    bars = terminal.getvalue()
    assert "messages" in bars and "16/16" in bars  # tqdm's bar, on stderr
    for argv, fragment in [
        (["db", "copy", "--to", target], "is not empty"),
        (["db", "copy"], "give one of --to URL or --from URL"),
        (["db", "copy", "--to", target, "--from", target], "give one of"),
        (["db", "copy", "--from", f"sqlite:///{tmp_path}/none.sqlite"], "no store at"),
        (["db", "copy", "--to", "nonsense://x"], "nonsense"),
        (["db", "copy", "--to", "postgresql+psycopg://u:s3cret@127.0.0.1:1/x"],
         "cannot connect"),
    ]:
        err = io.StringIO()
        assert main(argv, out=io.StringIO(), err=err) == 2, argv
        lines = err.getvalue().strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], (argv, lines)
        assert "s3cret" not in lines[0]
    assert main(["db", "copy", "--to", target, "--merge", "--json"], out=out, err=terminal) == 0


def test_magic_db_copy(tmp_path, monkeypatch):
    from IPython.core.error import UsageError
    from IPython.core.history import HistoryManager
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setattr(HistoryManager, "enabled", False)
    with agentnb.connect() as store:
        _fill(store, sessions=1, turns=1)
    shell = InteractiveShell()
    shell.extension_manager.load_extension("agentnb")
    try:
        target = f"duckdb:///{tmp_path}/t.duckdb"
        result = shell.run_line_magic("agent", f"db copy --to {target}")
        assert "copied" in result.to_text() and "row counts and id checksums match" in \
            result.to_text()
        with pytest.raises(UsageError, match="is not empty"):
            shell.run_line_magic("agent", f"db copy --to {target}")
    finally:
        shell.extension_manager.unload_extension("agentnb")
    assert _contents(target)["messages"] == _contents(
        f"duckdb:///{agentnb.connect().settings.home}/agentnb.duckdb")["messages"]
