"""The store as users see it: rows written, read back, deleted, on DuckDB and SQLite."""

from __future__ import annotations

import uuid
from datetime import timezone

import pytest
import sqlalchemy as sa

from agentnb.errors import AlreadyExistsError, InvalidNameError, InvalidValueError, NotFoundError
from agentnb.schemas import NewMessage, NewToolCall


def _turn(text: str = "add(a=2, b=3)") -> list[NewMessage]:
    return [
        NewMessage(role="user", content=text),
        NewMessage(
            role="assistant",
            content="",
            model="offline",
            input_tokens=7,
            output_tokens=2,
            tool_calls=[
                NewToolCall(
                    tool_name="add",
                    input_args={"a": 2, "b": 3},
                    output="5",
                    status="success",
                    execution_time_ms=0.4,
                )
            ],
        ),
        NewMessage(role="tool", content="5", attrs={"tool_call_id": "call_1"}),
        NewMessage(role="assistant", content="add returned 5.", model="offline",
                   input_tokens=12, output_tokens=4),
    ]


def test_agent_roundtrip(store):
    agent = store.create_agent("calc", system="You add.", description="adds numbers")
    rec = store.agent("calc").record
    assert rec.id == agent.id
    assert rec.config.system == "You add."
    assert rec.description == "adds numbers"
    assert rec.created_at.tzinfo == timezone.utc
    assert [a.name for a in store.agents()] == ["calc"]


@pytest.mark.parametrize("name", ["1abc", "a b", "a" * 65, "a/b", "", "-x", "é"])
def test_invalid_names_are_refused(store, name):
    with pytest.raises(InvalidNameError, match="letter"):
        store.create_agent(name)
    assert store.agents() == []


def test_name_limits_accepted(store):
    store.create_agent("a" * 64)
    store.create_agent("A-b_9")
    assert len(store.agents()) == 2


def test_duplicate_name(store):
    store.create_agent("calc")
    with pytest.raises(AlreadyExistsError):
        store.create_agent("calc")


def test_unknown_agent_suggests_close_name(store):
    store.create_agent("calc")
    with pytest.raises(NotFoundError, match="did you mean 'calc'"):
        store.agent("calx")


def test_turn_persists_every_field(store):
    agent = store.create_agent("calc")
    session = store._repo.create_session(agent.id, title="t")
    store._repo.append_turn(session.id, _turn())
    history = store.history(session.id)
    assert [(m.position, m.role) for m in history] == [
        (0, "user"), (1, "assistant"), (2, "tool"), (3, "assistant")
    ]
    call_msg = history[1]
    assert call_msg.input_tokens == 7 and call_msg.output_tokens == 2
    assert call_msg.tokens_used == 9
    assert call_msg.model == "offline"
    (call,) = call_msg.tool_calls
    assert call.tool_name == "add"
    assert call.input_args == {"a": 2, "b": 3}
    assert call.output == "5" and call.status == "success"
    assert call.execution_time_ms == pytest.approx(0.4)
    assert history[2].attrs == {"tool_call_id": "call_1"}
    assert history[0].tokens_used is None
    # a second turn continues the positions
    store._repo.append_turn(session.id, _turn("again"))
    assert [m.position for m in store.history(session.id)] == list(range(8))
    assert [m.position for m in store.history(session.id, last=3)] == [5, 6, 7]


def test_session_listing_counts(store):
    agent = store.create_agent("calc")
    s1 = store._repo.create_session(agent.id)
    store._repo.append_turn(s1.id, _turn("first question"))
    store._repo.append_turn(s1.id, _turn("second question"))
    store._repo.create_session(agent.id)
    listing = {s.session.id: s for s in store.sessions("calc")}
    assert len(listing) == 2
    summary = listing[s1.id]
    assert summary.turns == 2 and summary.messages == 8
    assert summary.input_tokens == 38 and summary.output_tokens == 12
    assert summary.first_message == "first question"
    assert summary.agent_name == "calc"


def test_session_id_prefix(store):
    agent = store.create_agent("calc")
    session = store._repo.create_session(agent.id)
    assert store.session(str(session.id)[:8]).id == session.id
    assert store.session(str(session.id)).id == session.id
    with pytest.raises(NotFoundError):
        store.session("00000000")
    with pytest.raises(InvalidValueError):
        store.session("xyz!")


def test_delete_agent_removes_only_its_rows(store):
    keep = store.create_agent("keep")
    gone = store.create_agent("gone")
    for agent in (keep, gone):
        for _ in range(2):
            s = store._repo.create_session(agent.id)
            store._repo.append_turn(s.id, _turn())
        store.create_key(agent.name)
    before = store._repo.counts()
    removed = store.delete_agent("gone")
    assert removed == {"tool_calls": 2, "messages": 8, "sessions": 2, "api_keys": 1, "agents": 1}
    after = store._repo.counts()
    assert after == {k: before[k] - removed[k] for k in before}
    # nothing left that points at the deleted agent
    with store._db.read() as conn:
        orphans = conn.execute(sa.text(
            "select count(*) from messages m left join sessions s on s.id = m.session_id "
            "where s.id is null"
        )).scalar_one()
    assert orphans == 0
    assert [s.agent_name for s in store.sessions()] == ["keep", "keep"]
    with pytest.raises(NotFoundError):
        store.agent("gone")


def test_delete_agent_is_all_or_nothing(store):
    """A failure at the last step (the agent row) leaves every child row in place."""
    agent = store.create_agent("gone")
    s = store._repo.create_session(agent.id)
    store._repo.append_turn(s.id, _turn())
    store.create_key("gone")
    before = store._repo.counts()
    engine = store._db.holder.engine

    def fail_on_agent_delete(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("DELETE FROM AGENTS"):
            raise RuntimeError("disk full")

    sa.event.listen(engine, "before_cursor_execute", fail_on_agent_delete)
    try:
        with pytest.raises(Exception, match="disk full"):
            store.delete_agent("gone")
    finally:
        sa.event.remove(engine, "before_cursor_execute", fail_on_agent_delete)
    assert store._repo.counts() == before
    assert [m.role for m in store.history(s.id)] == ["user", "assistant", "tool", "assistant"]
    assert store.history(s.id)[1].tool_calls[0].output == "5"
    assert len(store.keys("gone")) == 1
    # and it can still be deleted afterwards
    assert store.delete_agent("gone")["agents"] == 1
    assert store._repo.counts() == {k: 0 for k in before}


def test_rename_agent_keeps_sessions(store):
    agent = store.create_agent("old")
    s = store._repo.create_session(agent.id)
    store._repo.append_turn(s.id, _turn())
    store.update_agent("old", rename="new")
    assert store.sessions("new")[0].session.id == s.id
    with pytest.raises(NotFoundError):
        store.agent("old")


def test_rename_to_taken_name_refused(store):
    store.create_agent("a")
    store.create_agent("b")
    with pytest.raises(AlreadyExistsError):
        store.update_agent("a", rename="b")


def test_config_update(store):
    store.create_agent("calc")
    rec = store.update_agent("calc", model="openai:gpt-4o-mini", temperature=0.1,
                             **{"memory.window_turns": 3, "memory": "window"})
    assert rec.config.model == "openai:gpt-4o-mini"
    assert rec.config.model_kwargs == {"temperature": 0.1}
    assert rec.config.memory.strategy == "window" and rec.config.memory.window_turns == 3
    with pytest.raises(InvalidValueError, match="unknown setting"):
        store.update_agent("calc", colour="blue")
    with pytest.raises(InvalidValueError, match="secret"):
        store.update_agent("calc", **{"model_kwargs.api_key": "sk-123"})
    assert store.agent("calc").config.model_kwargs == {"temperature": 0.1}


def test_failed_transaction_leaves_nothing(duck_store):
    agent = duck_store.create_agent("calc")
    s = duck_store._repo.create_session(agent.id)
    bad = _turn()
    bad[1] = NewMessage(role="assistant", content="x", input_tokens=2**40)  # overflows INTEGER
    with pytest.raises(Exception):
        duck_store._repo.append_turn(s.id, bad)
    assert duck_store.history(s.id) == []
    duck_store._repo.append_turn(s.id, _turn())
    assert len(duck_store.history(s.id)) == 4


def test_usage_groups(store):
    agent = store.create_agent("calc")
    s = store._repo.create_session(agent.id)
    store._repo.append_turn(s.id, _turn())
    (row,) = store.usage("agent")
    assert (row.key, row.turns, row.input_tokens, row.output_tokens, row.tool_calls) == (
        "calc", 1, 19, 6, 1)
    (day,) = store.usage("day")
    assert len(day.key) == 10 and day.input_tokens == 19
    (model,) = store.usage("model")
    assert model.key == "offline" and model.tool_calls == 1
    (sess,) = store.usage("session")
    assert uuid.UUID(sess.key) == s.id


def test_search_and_export(store):
    agent = store.create_agent("calc")
    s = store._repo.create_session(agent.id, title="Adding")
    store._repo.append_turn(s.id, _turn())
    hits = store.search("RETURNED")
    assert [(name, m.content) for name, m in hits] == [("calc", "add returned 5.")]
    md = store.export(s.id, "md")
    assert md.startswith("# Adding") and "add returned 5." in md and "`add(a=2, b=3)`" in md
    import json

    data = json.loads(store.export(str(s.id)[:8], "json"))
    assert data["agent"] == "calc" and len(data["messages"]) == 4
    assert data["messages"][1]["tool_calls"][0]["output"] == "5"
    with pytest.raises(InvalidValueError):
        store.export(s.id, "pdf")


def test_sql_is_read_only(store):
    store.create_agent("calc")
    df = store.sql("select name from agents")
    assert list(df["name"]) == ["calc"]
    for statement in ["delete from agents", "drop table agents",
                      "insert into agents (name) values ('x')", "select 1; delete from agents",
                      "update agents set name = 'x'"]:
        with pytest.raises(InvalidValueError):
            store.sql(statement)
    assert [a.name for a in store.agents()] == ["calc"]
    with pytest.raises(InvalidValueError, match="SQL error"):
        store.sql("select nope from agents")


def test_duckdb_fast_reads_give_the_same_records_as_sqlalchemy(duck_store):
    """get_agent / get_session / newest_message_id read DuckDB with plain queries on the
    driver connection; the records must equal what the SQLAlchemy path builds."""
    from agentnb.schemas import AgentConfig, AgentRecord, SessionRecord
    from agentnb.store.tables import ChatSession

    repo = duck_store._repo
    agent = repo.create_agent("calc", AgentConfig(model="offline", system="añ ✓",
                                                  model_kwargs={"temperature": 0.5}),
                              description="d")
    session = repo.create_session(agent.id, title="t", attrs={"notebook": "x.ipynb",
                                                              "nested": {"k": [1, None]}})
    with repo.db.read() as conn:
        slow_agent = AgentRecord.model_validate(repo._agent_row(conn, agent.id)._mapping)
        slow_session = SessionRecord.model_validate(
            conn.execute(sa.select(ChatSession.__table__).where(
                ChatSession.__table__.c.id == session.id)).first()._mapping)
    for fast in (repo.get_agent(agent.id), repo.get_agent("calc")):
        assert fast == slow_agent
        assert fast.created_at.tzinfo is timezone.utc and fast.config.system == "añ ✓"
    fast_session = repo.get_session(session.id)
    assert fast_session == slow_session and fast_session.attrs["nested"] == {"k": [1, None]}
    assert repo.get_session(str(session.id)[:8]) == slow_session  # prefixes: the slow path
    with pytest.raises(NotFoundError, match="did you mean 'calc'"):
        repo.get_agent("calx")
    with pytest.raises(NotFoundError):
        repo.get_session(uuid.uuid4())


def test_newest_message_id(store):
    repo = store._repo
    agent = repo.create_agent("calc")
    session = repo.create_session(agent.id)
    assert repo.newest_message_id(session.id) is None
    repo.append_turn(session.id, _turn())
    repo.append_turn(session.id, _turn("again"))
    newest = repo.newest_message_id(session.id)
    assert newest == repo.history(session.id)[-1].id and isinstance(newest, uuid.UUID)


def test_sessions_and_usage_by_user(store):
    """Who did what: sessions record their user; listings and usage filter and group by it."""
    agent = store.create_agent("calc")
    for user, n in (("alice", 2), ("bob", 1)):
        for _ in range(n):
            s = store.new_session("calc", user=user)
            store._repo.append_turn(s.id, _turn())
    store._repo.create_session(agent.id)  # written without a user (an older agentnb)
    assert {s.session.user_id for s in store.sessions(user="alice")} == {"alice"}
    assert len(store.sessions("calc", user="alice")) == 2
    assert store.sessions(user="carol") == []
    assert store.session_counts(user="bob") == {"calc": 1}
    assert store.session_counts() == {"calc": 4}
    rows = {r.key: (r.turns, r.input_tokens, r.output_tokens, r.tool_calls)
            for r in store.usage("user")}
    assert rows == {"alice": (2, 38, 12, 2), "bob": (1, 19, 6, 1)}


def test_new_sessions_record_the_user_setting(store_url, monkeypatch):
    """AGENTNB_USER, else the OS user, is the user of every new session."""
    import getpass

    import agentnb

    with agentnb.connect(store_url) as s:
        s.create_agent("calc", model="offline")
        assert s.new_session("calc").user_id == getpass.getuser()
    monkeypatch.setenv("AGENTNB_USER", "alice")
    with agentnb.connect(store_url) as s:
        agent = s.agent("calc")
        reply = agent.chat("hi", new_session=True)
        assert s.session(reply.session_id).user_id == "alice"
        agent.map(["a", "b"], progress=False)
        assert {x.session.user_id for x in s.sessions("calc")} == {"alice", getpass.getuser()}
