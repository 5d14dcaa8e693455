"""The ``agentnb`` command, as a user sees it: output, JSON, exit codes, stored rows.

Most tests call :func:`agentnb.cli.main` in-process; the ones about exit
codes and tracebacks also run the real command in a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import agentnb
from agentnb.cli import main
from agentnb.schemas import NewMessage, NewToolCall, short_id


# -- helpers ---------------------------------------------------------------------------
@pytest.fixture
def home(tmp_path, monkeypatch):
    """AGENTNB_HOME in this test's tmp_path; no other AGENTNB_* setting."""
    for name in list(os.environ):
        if name.startswith("AGENTNB_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGENTNB_HOME", str(tmp_path))
    # keep the CLI quick to give up if a test ever leaves the file locked
    monkeypatch.setenv("AGENTNB_LOCK_TIMEOUT", "10")
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run the command in-process: (exit status, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(code: int, out: str, err: str, *fragments: str) -> str:
    """Exit 2, nothing on stdout, one ``agentnb: error:`` line on stderr."""
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("agentnb: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def assert_usage_error(code: int, err: str, *fragments: str) -> None:
    """argparse mistakes: exit 2, ``agentnb: error: ...`` and a ``--help`` hint, no usage dump."""
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("agentnb: error: ")
    assert "--help" in lines[-1]
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def cli(*argv: str, input: str | None = None) -> subprocess.CompletedProcess:
    """The real command in a subprocess (inherits the test's AGENTNB_HOME)."""
    return subprocess.run(
        [sys.executable, "-m", "agentnb.cli", *argv],
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
    )


def table(out: str) -> list[list[str]]:
    """A text table's header and rows, split on runs of 2+ spaces (title and rule dropped)."""
    import re

    lines = [line for line in out.splitlines() if line.strip()]
    rule = next(i for i, line in enumerate(lines) if set(line.replace(" ", "")) == {"-"})
    header = lines[rule - 1]
    return [re.split(r"\s{2,}", line.strip()) for line in [header] + lines[rule + 1:]]


def fields(out: str) -> dict[str, str]:
    """``label  value`` lines of a key-value result, by label."""
    import re

    found = {}
    for line in out.splitlines():
        parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        if len(parts) == 2:
            found.setdefault(parts[0], parts[1])
    return found


def open_store():
    return agentnb.connect()


@pytest.fixture
def seeded(home):
    """Agent ``calc`` with a two-turn session (one tool call) and ``helper`` with an empty one."""
    store = open_store()
    try:
        calc = store.create_agent("calc", model="offline", system="You add numbers.")
        helper = store.create_agent("helper", model="offline")
        session = store._repo.create_session(calc.id, title="adding things")
        store._repo.append_turn(
            session.id,
            [
                NewMessage(role="user", content="what is 2 + 3?"),
                NewMessage(
                    role="assistant",
                    content="",
                    model="offline",
                    input_tokens=10,
                    output_tokens=4,
                    tool_calls=[
                        NewToolCall(
                            tool_name="add",
                            input_args={"a": 2, "b": 3},
                            output="5",
                            status="success",
                            execution_time_ms=1.5,
                        )
                    ],
                ),
                NewMessage(role="tool", content="5"),
                NewMessage(
                    role="assistant", content="2 + 3 = 5", model="offline",
                    input_tokens=20, output_tokens=6,
                ),
            ],
        )
        store._repo.append_turn(
            session.id,
            [
                NewMessage(role="user", content="and 1 + 1?"),
                NewMessage(role="assistant", content="2", model="other:model",
                           input_tokens=30, output_tokens=1),
            ],
        )
        empty = store._repo.create_session(helper.id)
    finally:
        store.close()
    return {"session": session.id, "empty": empty.id, "calc": calc.id, "helper": helper.id}


# -- help, version, dispatch -------------------------------------------------------------
def test_help_lists_the_commands(home, capsys):
    with pytest.raises(SystemExit) as exc:  # argparse's own exit, through main's return
        sys.exit(main(["--help"]))
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("init", "db", "config", "agents", "templates", "sessions", "keys", "usage"):
        assert command in out


def test_every_subcommand_has_help(home, capsys):
    for argv in (["agents", "update"], ["sessions", "export"], ["keys", "create"], ["usage"],
                 ["db", "downgrade"], ["config", "show"], ["templates", "show"]):
        assert main([*argv, "--help"]) == 0
        assert "usage: agentnb " + " ".join(argv) in capsys.readouterr().out


def _command_paths(parser, prefix=()):
    """Every command path of the parser (``("agents", "list")``, ...), groups included."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _command_paths(sub, (*prefix, name))


def test_help_works_on_every_command(home, capsys):
    """``--help`` everywhere: every group and subcommand, found by walking the parser."""
    from agentnb.cli import build_parser

    paths = list(_command_paths(build_parser()))
    # the commands the issue names are all there
    for expected in [("init",), ("db", "current"), ("db", "upgrade"), ("db", "downgrade"),
                     ("db", "path"), ("agents", "list"), ("agents", "show"), ("agents", "create"),
                     ("agents", "update"), ("agents", "delete"), ("sessions", "list"),
                     ("sessions", "show"), ("sessions", "export"), ("keys", "create"),
                     ("keys", "list"), ("keys", "revoke"), ("templates", "list"),
                     ("templates", "show"), ("config", "show"), ("usage",), ("chat",)]:
        assert expected in paths, expected
    for path in paths:
        assert main([*path, "--help"]) == 0, path
        captured = capsys.readouterr()
        assert captured.out.startswith("usage: agentnb " + " ".join(path)), path
        assert captured.err == "", path


def test_every_listing_takes_json(home):
    from agentnb.cli import build_parser

    parser = build_parser()
    listings = [p for p in _command_paths(parser) if p[-1] == "list"] + [("usage",)]
    assert len(listings) >= 4
    for path in listings:
        sub = parser
        for name in path:
            sub = next(a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"
                       ).choices[name]
        assert any("--json" in a.option_strings for a in sub._actions), path


def test_version(home, capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"agentnb {agentnb.__version__}"


def test_a_group_alone_prints_its_help(home, capsys):
    code, out, _ = run(capsys, "agents")
    assert code == 0
    assert "create" in out and "delete" in out


def test_unknown_command_is_a_one_line_usage_error(home, capsys):
    code, _, err = run(capsys, "frobnicate")
    assert_usage_error(code, err, "unknown command 'frobnicate'", "(see agentnb --help)")


def test_missing_argument_points_at_the_subcommand_help(home, capsys):
    code, _, err = run(capsys, "agents", "create")
    assert_usage_error(code, err, "NAME", "(see agentnb agents create --help)")


# -- init and db -------------------------------------------------------------------------
def test_init_creates_then_reports_up_to_date(home, capsys):
    code, out, _ = run(capsys, "init")
    assert code == 0
    assert f"duckdb:///{home / 'agentnb.duckdb'}" in out
    assert "0003 (created)" in out
    assert (home / "agentnb.duckdb").is_file()

    code, out, _ = run(capsys, "init")
    assert code == 0
    assert "0003 (up to date)" in out


def test_db_current_upgrade_downgrade_cycle(home, capsys):
    # no store yet: a reading command says so and creates none (issue 9, item 6)
    code, out, err = run(capsys, "db", "current")
    assert_user_error(code, out, err, "no agentnb store at")
    assert not (home / "agentnb.duckdb").exists()

    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0
    assert out.strip() == "upgraded: base (empty) -> 0003"

    code, out, _ = run(capsys, "db", "current", "--json")
    assert json.loads(out) == {
        "url": f"duckdb:///{home / 'agentnb.duckdb'}", "revision": "0003", "head": "0003",
        "is_head": True,
    }

    code, out, _ = run(capsys, "db", "downgrade", "base")
    assert code == 0
    assert out.strip() == "downgraded: 0003 -> base (empty)"
    code, out, _ = run(capsys, "db", "current")
    assert out.startswith("none")

    code, out, _ = run(capsys, "db", "upgrade", "head")
    assert code == 0 and "-> 0003" in out
    code, out, _ = run(capsys, "db", "upgrade", "head")
    assert out.strip() == "already at 0003"
    code, out, _ = run(capsys, "db", "current")
    assert out.strip() == "0003 (head)"
    # the upgraded store works
    assert run(capsys, "agents", "create", "after-upgrade")[0] == 0


def test_db_downgrade_removes_the_tables(home, capsys, seeded):
    assert run(capsys, "db", "downgrade", "base")[0] == 0
    import duckdb

    con = duckdb.connect(str(home / "agentnb.duckdb"))
    try:
        tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    finally:
        con.close()
    assert not tables & {"agents", "sessions", "messages", "tool_calls", "api_keys"}


@pytest.mark.parametrize("argv", [["db", "upgrade", "nope"], ["db", "downgrade", "zzz9"]])
def test_unknown_revision_is_a_user_error(home, capsys, argv):
    assert run(capsys, "init")[0] == 0
    code, out, err = run(capsys, *argv)
    assert_user_error(code, out, err, repr(argv[-1]))


def test_db_downgrade_needs_a_revision(home, capsys):
    code, _, err = run(capsys, "db", "downgrade")
    assert_usage_error(code, err, "REV")


def test_db_path(home, capsys, tmp_path):
    code, out, _ = run(capsys, "db", "path")
    assert code == 0 and out.strip() == str(home / "agentnb.duckdb")
    code, out, _ = run(capsys, "--db", "postgresql://me:s3cret@db.example/agentnb", "db", "path")
    assert code == 0
    assert out.strip() == "postgresql://me:***@db.example/agentnb"


# -- config ------------------------------------------------------------------------------
def _config(capsys, *extra: str) -> dict[str, dict]:
    code, out, err = run(capsys, *extra, "config", "show", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert all(set(row) == {"name", "value", "source"} for row in rows)
    return {row["name"]: row for row in rows}


def test_config_show_defaults_and_env(home, capsys, monkeypatch):
    monkeypatch.setenv("AGENTNB_DEFAULT_MODEL", "openai:gpt-4o-mini")
    rows = _config(capsys)
    assert rows["default_model"] == {
        "name": "default_model", "value": "openai:gpt-4o-mini",
        "source": "env AGENTNB_DEFAULT_MODEL",
    }
    assert rows["home"]["value"] == str(home) and rows["home"]["source"] == "env AGENTNB_HOME"
    assert rows["max_iterations"] == {"name": "max_iterations", "value": 8, "source": "default"}
    assert rows["database_url"]["value"] is None

    code, out, _ = run(capsys, "config", "show")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("default_model"))
    assert line.split() == ["default_model", "openai:gpt-4o-mini", "env", "AGENTNB_DEFAULT_MODEL"]
    assert f"duckdb:///{home / 'agentnb.duckdb'}" in out


def test_config_show_reads_config_toml(home, capsys):
    (home / "config.toml").write_text("lock_timeout = 5\nmax_iterations = 3\n")
    rows = _config(capsys)
    assert rows["max_iterations"]["value"] == 3
    assert rows["max_iterations"]["source"] == str(home / "config.toml")
    # the environment wins over the file
    assert rows["lock_timeout"]["source"] == "env AGENTNB_LOCK_TIMEOUT"


def test_config_show_masks_a_password(home, capsys, monkeypatch):
    monkeypatch.setenv("AGENTNB_DATABASE_URL", "postgresql://alice:hunter2@db.example:5432/agentnb")
    code, out, err = run(capsys, "config", "show")
    assert code == 0
    assert "hunter2" not in out + err
    assert "postgresql://alice:***@db.example:5432/agentnb" in out
    rows = _config(capsys)
    assert rows["database_url"]["value"] == "postgresql://alice:***@db.example:5432/agentnb"
    assert rows["database_url"]["source"] == "env AGENTNB_DATABASE_URL"


def test_db_option_is_a_source(home, capsys, tmp_path):
    url = f"sqlite:///{tmp_path}/other._db"
    assert _config(capsys, "--db", url)["database_url"] == {
        "name": "database_url", "value": url, "source": "--db",
    }


def test_unknown_key_in_config_toml(home, capsys):
    (home / "config.toml").write_text("colour = 'blue'\n")
    code, out, err = run(capsys, "config", "show")
    assert_user_error(code, out, err, "unknown setting 'colour'", "config.toml")


def test_bad_value_in_config_toml(home, capsys):
    (home / "config.toml").write_text("max_iterations = 0\n")
    code, out, err = run(capsys, "agents", "list")
    assert_user_error(code, out, err, "max_iterations")


@pytest.mark.parametrize("where", ["env", "--db"])
def test_malformed_database_url(home, capsys, monkeypatch, where):
    if where == "env":
        monkeypatch.setenv("AGENTNB_DATABASE_URL", "not a url")
        argv = ["agents", "list"]
    else:
        argv = ["--db", "not a url", "agents", "list"]
    code, out, err = run(capsys, *argv)
    assert_user_error(code, out, err, "not a database URL")


def test_missing_driver_is_a_user_error_with_the_password_masked(home, capsys):
    try:
        import pg8000  # noqa: F401

        pytest.skip("pg8000 is installed; the missing-driver message cannot be shown")
    except ImportError:
        pass
    url = "postgresql+pg8000://bob:pa55word@localhost:1/x"
    code, out, err = run(capsys, "--db", url, "agents", "list")
    line = assert_user_error(code, out, err, "pg8000")
    assert "postgresql+psycopg://" in line
    assert "pa55word" not in line


# -- agents ------------------------------------------------------------------------------
def test_agents_create_list_show(home, capsys):
    code, out, _ = run(capsys, "agents", "create", "calc", "--model", "offline",
                       "--system", "You add numbers.", "--description", "adds")
    assert code == 0
    assert "created agent 'calc'" in out

    code, out, _ = run(capsys, "agents", "create", "analyst", "--template", "data-analyst")
    assert code == 0 and "template data-analyst" in out

    code, out, _ = run(capsys, "agents", "list")
    assert code == 0
    rows = table(out)
    assert rows[0][:3] == ["name", "model", "template"]
    assert [row[0] for row in rows[1:]] == ["analyst", "calc"]

    code, out, _ = run(capsys, "agents", "list", "--json")
    agents = json.loads(out)
    assert [a["name"] for a in agents] == ["analyst", "calc"]
    calc = agents[1]
    assert set(calc) == {"id", "name", "description", "template", "model", "config",
                         "created_at", "updated_at"}
    assert uuid.UUID(calc["id"])
    assert calc["config"]["system"] == "You add numbers."
    assert calc["description"] == "adds"
    assert agents[0]["template"] == "data-analyst"
    assert "list_variables" in agents[0]["config"]["tools"]
    from datetime import datetime

    assert datetime.fromisoformat(calc["created_at"]).tzinfo is not None

    code, out, _ = run(capsys, "agents", "show", "calc")
    assert code == 0
    assert fields(out)["system"] == "You add numbers."
    assert fields(out)["sessions"] == "0"


def test_agents_show_counts(seeded, capsys):
    store = open_store()
    store.create_key("calc", "ci")
    store.close()
    code, out, _ = run(capsys, "agents", "show", "calc", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["name"] == "calc" and data["id"] == str(seeded["calc"])
    assert data["sessions"] == 1
    assert data["usage"] == {"turns": 2, "messages": 6, "input_tokens": 60, "output_tokens": 11,
                             "tool_calls": 1}
    assert data["keys"] == {"total": 1, "active": 1}

    code, out, _ = run(capsys, "agents", "show", "calc")
    shown = fields(out)
    assert shown["sessions"] == "1"
    assert shown["turns"] == "2"
    assert shown["tokens"] == "60 in / 11 out"
    assert shown["api keys"] == "1 (1 active)"


def test_empty_agent_list(home, capsys):
    assert run(capsys, "init")[0] == 0
    code, out, err = run(capsys, "agents", "list")
    assert code == 0 and out == "" and "no agents yet" in err
    code, out, _ = run(capsys, "agents", "list", "--json")
    assert json.loads(out) == []


def test_duplicate_agent_name(home, capsys):
    assert run(capsys, "agents", "create", "calc")[0] == 0
    code, out, err = run(capsys, "agents", "create", "calc")
    assert_user_error(code, out, err, "already exists")


@pytest.mark.parametrize("name", ["1abc", "a b", "a" * 65, "a/b", "-x", "é"])
def test_invalid_agent_names(home, capsys, name):
    code, out, err = run(capsys, "agents", "create", "--", name)  # "--": "-x" is not an option
    assert_user_error(code, out, err, "invalid agent name")
    store = open_store()
    try:
        assert store.agents() == []
    finally:
        store.close()


def test_longest_valid_name(home, capsys):
    name = "a" + "b-_9" * 15 + "xyz"
    assert len(name) == 64
    assert run(capsys, "agents", "create", name)[0] == 0


def test_unknown_agent_suggests_a_close_name(seeded, capsys):
    for argv in (["agents", "show", "calk"], ["agents", "update", "calk", "model=offline"],
                 ["agents", "delete", "calk", "--yes"], ["sessions", "list", "--agent", "calk"],
                 ["keys", "create", "calk"], ["usage", "--agent", "calk"]):
        code, out, err = run(capsys, *argv)
        assert_user_error(code, out, err, "no agent named 'calk'", "did you mean 'calc'?")


def test_update_rename_and_config(seeded, capsys):
    code, out, err = run(capsys, "agents", "update", "calc", "name=adder", "temperature=0.2",
                         "memory=window", "memory.window_turns=3", "tools=add,mul",
                         "description=Adds numbers", "max_iterations=4")
    assert code == 0, err
    assert "renamed agent 'calc' to 'adder'" in out
    assert "updated agent 'adder': temperature = 0.2, memory = 'window'" in out
    store = open_store()
    try:
        record = store._repo.get_agent("adder")
        assert record.id == seeded["calc"]
        assert record.description == "Adds numbers"
        assert record.config.model_kwargs == {"temperature": 0.2}
        assert record.config.memory.strategy == "window"
        assert record.config.memory.window_turns == 3
        assert record.config.tools == ["add", "mul"]
        assert record.config.max_iterations == 4
        # the renamed agent keeps its sessions
        assert [s.session.id for s in store.sessions("adder")] == [seeded["session"]]
        assert store._repo.find_agent("calc") is None
    finally:
        store.close()


def test_update_name_is_text(home, capsys):
    run(capsys, "agents", "create", "calc")
    code, out, err = run(capsys, "agents", "update", "calc", "name=x007", "--json")
    assert code == 0, err
    assert json.loads(out)["name"] == "x007"


@pytest.mark.parametrize(
    "assignment, fragment",
    [
        ("colour=blue", "unknown setting 'colour'"),
        ("max_iterations=many", "max_iterations"),
        ("memory.depth=3", "unknown memory setting 'depth'"),
        ("model_kwargs.api_key=sk-123", "secret"),
        ("noequals", "expected key=value"),
        ("name=1bad", "invalid agent name"),
        ("name=helper", "already exists"),
        # bad JSON: refused, not stored as text (and a secret in it is not echoed)
        ('tools=["add",', "not a valid JSON list"),
        ('model_kwargs={"api_key": "sk-123"', "not valid JSON"),
        ("memory={strategy: window}", "not valid JSON"),
    ],
)
def test_update_rejects_bad_changes(seeded, capsys, assignment, fragment):
    code, out, err = run(capsys, "agents", "update", "calc", assignment)
    line = assert_user_error(code, out, err, fragment)
    assert "sk-123" not in line
    store = open_store()
    try:
        record = store._repo.get_agent("calc")
        assert record.config.max_iterations == 8 and record.config.model_kwargs == {}
    finally:
        store.close()


def test_update_text_settings_may_start_with_a_bracket(seeded, capsys):
    code, out, err = run(capsys, "agents", "update", "calc", "system=[INST] be brief",
                         "tools=add,mul", "--json")
    assert code == 0, err
    config = json.loads(out)["config"]
    assert config["system"] == "[INST] be brief" and config["tools"] == ["add", "mul"]


def test_delete_with_yes_removes_everything(seeded, capsys):
    store = open_store()
    store.create_key("calc")
    store.close()
    code, out, err = run(capsys, "agents", "delete", "calc", "--yes")
    assert code == 0, err
    assert "deleted agent 'calc' (1 session, 6 messages, 1 key)" in out
    store = open_store()
    try:
        assert [a.name for a in store.agents()] == ["helper"]
        counts = store._repo.counts()
        assert counts["sessions"] == 1 and counts["messages"] == 0
        assert counts["tool_calls"] == 0 and counts["api_keys"] == 0
    finally:
        store.close()


def test_delete_refuses_without_a_terminal(seeded, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a TTY, even though it says yes
    code, out, err = run(capsys, "agents", "delete", "calc")
    assert_user_error(code, out, err, "stdin is not a terminal",
                      "agentnb agents delete calc --yes")
    store = open_store()
    try:
        assert store._repo.find_agent("calc") is not None
    finally:
        store.close()


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer, deleted", [("y\n", True), ("yes\n", True), ("n\n", False),
                                             ("\n", False), ("", False)])
def test_delete_asks_on_a_terminal(seeded, capsys, monkeypatch, answer, deleted):
    monkeypatch.setattr(sys, "stdin", FakeTerminal(answer))
    code, out, err = run(capsys, "agents", "delete", "calc")
    assert "delete agent 'calc' with 1 session and 0 API keys? [y/N]" in err
    assert code == (0 if deleted else 1)
    store = open_store()
    try:
        assert (store._repo.find_agent("calc") is None) == deleted
    finally:
        store.close()


# -- templates ---------------------------------------------------------------------------
def test_templates_list_and_show(home, capsys):
    code, out, _ = run(capsys, "templates", "list")
    assert code == 0
    names = [row[0] for row in table(out)[1:]]
    assert {"assistant", "data-analyst", "python-coder", "researcher", "sql-analyst"} <= set(names)

    code, out, _ = run(capsys, "templates", "list", "--json")
    data = json.loads(out)
    assert all(set(t) == {"name", "description", "source", "model", "config"} for t in data)

    code, out, _ = run(capsys, "templates", "show", "researcher")
    assert code == 0
    assert fields(out)["memory"] == "summary" and fields(out)["source"] == "built-in"

    code, out, _ = run(capsys, "templates", "show", "researcher", "--json")
    assert json.loads(out)["config"]["memory"]["strategy"] == "summary"


def test_user_template_shows_up(home, capsys):
    (home / "templates").mkdir()
    (home / "templates" / "mine.toml").write_text(
        'description = "my own"\n[config]\nsystem = "Be brief."\n'
    )
    code, out, _ = run(capsys, "templates", "list", "--json")
    mine = next(t for t in json.loads(out) if t["name"] == "mine")
    assert mine["source"] == str(home / "templates" / "mine.toml")
    assert run(capsys, "agents", "create", "brief", "--template", "mine")[0] == 0
    code, out, _ = run(capsys, "agents", "show", "brief", "--json")
    assert json.loads(out)["config"]["system"] == "Be brief."


def test_unknown_template(home, capsys):
    code, out, err = run(capsys, "templates", "show", "resercher")
    assert_user_error(code, out, err, "no template named 'resercher'", "did you mean 'researcher'?")
    code, out, err = run(capsys, "agents", "create", "x", "--template", "nope")
    assert_user_error(code, out, err, "no template named 'nope'")


# -- sessions ----------------------------------------------------------------------------
def test_sessions_list(seeded, capsys):
    code, out, _ = run(capsys, "sessions", "list")
    assert code == 0
    rows = table(out)
    assert rows[0][:2] == ["id", "agent"]
    short = short_id(seeded["session"])
    row = next(r for r in rows if r[0] == short)
    assert row[1] == "calc" and row[2] == "adding things"
    assert str(seeded["session"]) not in out  # text mode shows the short id

    code, out, _ = run(capsys, "sessions", "list", "--json")
    data = json.loads(out)
    assert {s["id"] for s in data} == {str(seeded["session"]), str(seeded["empty"])}
    first = next(s for s in data if s["id"] == str(seeded["session"]))
    assert set(first) == {"id", "agent", "title", "user", "messages", "turns", "input_tokens",
                          "output_tokens", "first_message", "attrs", "created_at", "updated_at",
                          "last_activity"}
    assert first["agent"] == "calc" and first["turns"] == 2 and first["messages"] == 6
    assert first["input_tokens"] == 60 and first["first_message"] == "what is 2 + 3?"

    code, out, _ = run(capsys, "sessions", "list", "--agent", "helper", "--json")
    assert [s["id"] for s in json.loads(out)] == [str(seeded["empty"])]
    code, out, _ = run(capsys, "sessions", "list", "--limit", "1", "--json")
    assert len(json.loads(out)) == 1


@pytest.mark.parametrize("limit", ["0", "-3", "many"])
def test_sessions_list_bad_limit(home, capsys, limit):
    code, _, err = run(capsys, "sessions", "list", "--limit", limit)
    assert_usage_error(code, err, "--limit")


def test_sessions_show_by_prefix(seeded, capsys):
    code, out, _ = run(capsys, "sessions", "show", short_id(seeded["session"]))
    assert code == 0
    assert out.startswith(f"calc · session {short_id(seeded['session'])}")
    assert "user: what is 2 + 3?" in out and "assistant: 2 + 3 = 5" in out
    assert "tool add(a=2, b=3) -> success, 2 ms: 5" in out


def test_sessions_export_md_and_json(seeded, capsys, tmp_path):
    sid = str(seeded["session"])
    code, out, _ = run(capsys, "sessions", "export", sid, "--format", "md")
    assert code == 0 and f"- session: `{sid}`" in out

    code, out, _ = run(capsys, "sessions", "export", sid[:8], "--format", "json")
    data = json.loads(out)
    assert data["agent"] == "calc" and data["session"]["id"] == sid
    assert [m["role"] for m in data["messages"]] == ["user", "assistant", "tool", "assistant",
                                                    "user", "assistant"]
    assert data["messages"][1]["tool_calls"][0]["tool_name"] == "add"

    target = tmp_path / "s.json"
    code, out, err = run(capsys, "sessions", "export", sid, "--format", "json", "-o", str(target))
    assert code == 0, err
    assert out.startswith(f"wrote {target}") and err == ""
    assert json.loads(target.read_text())["session"]["id"] == sid


def test_sessions_export_to_a_file(seeded, capsys, tmp_path):
    target = tmp_path / "s.md"
    code, out, err = run(capsys, "sessions", "export", str(seeded["session"]), "--output",
                         str(target))
    assert code == 0 and out.startswith("wrote")
    assert target.read_text().startswith("# adding things")


def test_sessions_export_to_a_missing_folder(seeded, capsys, tmp_path):
    code, out, err = run(capsys, "sessions", "export", str(seeded["session"]), "--output",
                         str(tmp_path / "missing" / "s.md"))
    assert_user_error(code, out, err, "cannot write")


def test_sessions_export_bad_format(seeded, capsys):
    code, _, err = run(capsys, "sessions", "export", str(seeded["session"]), "--format", "pdf")
    assert_usage_error(code, err, "--format: must be one of md or json")


@pytest.mark.parametrize("ident, fragment", [("00000000", "no session"), ("zz", "not an id"),
                                             ("ab", "too short")])
def test_sessions_show_bad_id(seeded, capsys, ident, fragment):
    code, out, err = run(capsys, "sessions", "show", ident)
    assert_user_error(code, out, err, fragment)


# -- keys --------------------------------------------------------------------------------
def test_keys_create_list_revoke(seeded, capsys):
    code, out, err = run(capsys, "keys", "create", "calc", "--name", "ci")
    assert code == 0
    keys = [line for line in out.split() if line.startswith("anb_")]
    assert len(keys) == 1
    key = keys[0]
    assert out.count(key) == 1  # printed once
    assert "shown only once" in err

    store = open_store()
    try:
        record = store.verify_key(key)
        assert record is not None and record.name == "ci"
        key_id = record.id
        key_hash = store.sql_rows("select key_hash from api_keys")[1][0][0]
    finally:
        store.close()

    code, out, _ = run(capsys, "keys", "list")
    assert code == 0
    assert key not in out and key_hash not in out
    row = table(out)[1]
    assert row[0] == short_id(key_id)
    assert row[1:6] == ["calc", "ci", "agent", key[:12] + "…", "active"]
    assert row[-1] != "-"  # last used: the verify above

    code, out, _ = run(capsys, "keys", "list", "--json", "--agent", "calc")
    data = json.loads(out)
    assert key not in out and key_hash not in out
    assert set(data[0]) == {"id", "prefix", "name", "scope", "agent", "agent_id", "active",
                            "created_at", "last_used_at"}
    assert data[0]["id"] == str(key_id) and data[0]["active"] is True
    assert data[0]["last_used_at"] is not None

    code, out, _ = run(capsys, "keys", "revoke", short_id(key_id))
    assert code == 0 and "revoked" in out and key not in out
    store = open_store()
    try:
        assert store.verify_key(key) is None
    finally:
        store.close()
    code, out, _ = run(capsys, "keys", "list", "--json")
    assert json.loads(out)[0]["active"] is False
    code, out, _ = run(capsys, "keys", "list", "--agent", "helper", "--json")
    assert json.loads(out) == []


def test_keys_create_json(seeded, capsys):
    code, out, _ = run(capsys, "keys", "create", "calc", "--json")
    data = json.loads(out)
    assert set(data) == {"id", "name", "scope", "agent", "agent_id", "prefix", "key", "active",
                         "created_at", "last_used_at"}
    assert data["name"] == "default" and data["key"].startswith(data["prefix"])
    store = open_store()
    try:
        assert str(store.verify_key(data["key"]).id) == data["id"]
    finally:
        store.close()


def test_revoke_unknown_key(seeded, capsys):
    code, out, err = run(capsys, "keys", "revoke", "deadbeef")
    assert_user_error(code, out, err, "no API key deadbeef")


# -- usage -------------------------------------------------------------------------------
def test_usage_by_agent(seeded, capsys):
    code, out, _ = run(capsys, "usage")
    assert code == 0
    rows = table(out)
    assert rows[0][0] == "agent"
    assert rows[1] == ["calc", "2", "6", "60", "11", "1"]

    code, out, _ = run(capsys, "usage", "--by", "agent", "--json")
    data = json.loads(out)
    assert data == [{"by": "agent", "key": "calc", "turns": 2, "messages": 6, "input_tokens": 60,
                     "output_tokens": 11, "tool_calls": 1}]


@pytest.mark.parametrize("by", ["agent", "session", "model", "day"])
def test_usage_by_each_grouping(seeded, capsys, by):
    code, out, _ = run(capsys, "usage", "--by", by, "--json")
    assert code == 0
    data = json.loads(out)
    assert all(set(r) == {"by", "key", "turns", "messages", "input_tokens", "output_tokens",
                          "tool_calls"} for r in data)
    assert all(r["by"] == by for r in data)
    assert sum(r["input_tokens"] for r in data) == 60
    assert sum(r["output_tokens"] for r in data) == 11
    if by == "session":
        assert [r["key"] for r in data] == [str(seeded["session"])]
    if by == "model":
        assert {r["key"]: r["output_tokens"] for r in data} == {"offline": 10, "other:model": 1}
    if by == "day":
        from datetime import date

        assert date.fromisoformat(data[0]["key"])

    code, out, _ = run(capsys, "usage", "--by", by)
    assert code == 0
    assert table(out)[0][0] == by
    if by == "session":
        assert short_id(seeded["session"]) in out and str(seeded["session"]) not in out


def test_usage_for_one_agent(seeded, capsys):
    code, out, _ = run(capsys, "usage", "--agent", "helper", "--json")
    assert code == 0 and json.loads(out) == []
    code, _, err = run(capsys, "usage", "--by", "week")
    assert_usage_error(code, err, "--by: must be one of agent, session, model, day or user")


# -- other databases ---------------------------------------------------------------------
def test_sqlite_store_via_db_option(home, capsys, tmp_path):
    db_file = tmp_path / "sub" / "team.db"
    url = f"sqlite:///{db_file}"
    code, out, _ = run(capsys, "--db", url, "init")
    assert code == 0 and url in out and "0003" in out
    assert db_file.is_file()
    # --db is accepted after the subcommand too
    assert run(capsys, "agents", "create", "lite", "--db", url)[0] == 0
    store = agentnb.connect(url)
    try:
        session = store._repo.create_session(store._repo.get_agent("lite").id, title="on sqlite")
        store._repo.append_turn(session.id, [NewMessage(role="user", content="hi"),
                                            NewMessage(role="assistant", content="hello",
                                                       model="offline", output_tokens=2)])
    finally:
        store.close()
    code, out, _ = run(capsys, "--db", url, "agents", "list", "--json")
    assert [a["name"] for a in json.loads(out)] == ["lite"]
    code, out, _ = run(capsys, "--db", url, "usage", "--by", "session", "--json")
    assert json.loads(out)[0]["key"] == str(session.id)
    code, out, _ = run(capsys, "--db", url, "sessions", "show", short_id(session.id))
    assert "assistant: hello" in out
    code, out, _ = run(capsys, "--db", url, "sessions", "export", short_id(session.id))
    assert "# on sqlite" in out and "hello" in out
    code, out, _ = run(capsys, "--db", url, "db", "downgrade", "base")
    assert code == 0 and "-> base" in out
    code, out, _ = run(capsys, "--db", url, "db", "path")
    assert out.strip() == url
    # the default DuckDB store was never touched
    assert not (home / "agentnb.duckdb").exists()


# -- the real command ----------------------------------------------------------------------
def test_subprocess_user_error_is_one_line(seeded):
    result = cli("agents", "show", "calk")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "agentnb: error: no agent named 'calk'; did you mean 'calc'? (see agentnb agents list)"
    ]


@pytest.mark.parametrize("argv", [["agents", "create", "1abc"], ["db", "upgrade", "nope"],
                                  ["--db", "nonsense", "agents", "list"]])
def test_subprocess_user_errors_have_no_traceback(home, argv):
    result = cli(*argv)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentnb: error: ")
    assert "Traceback" not in result.stderr


def test_subprocess_usage_error(home):
    result = cli("agents", "create")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["agentnb: error: agents create: the following arguments are required: NAME "
                     "(see agentnb agents create --help)"]
    result = cli("agents", "list", "--colour")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["agentnb: error: unrecognized arguments: --colour (see agentnb --help)"]


def test_subprocess_store_locked_too_long(seeded, home):
    import duckdb

    holder = duckdb.connect(str(home / "agentnb.duckdb"))  # this process keeps the file
    try:
        env = {**os.environ, "AGENTNB_LOCK_TIMEOUT": "0.3"}
        result = subprocess.run([sys.executable, "-m", "agentnb.cli", "agents", "list"],
                                capture_output=True, text=True, timeout=120, env=env)
    finally:
        holder.close()
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("agentnb: error: ") and "locked" in lines[0]
    assert "AGENTNB_LOCK_TIMEOUT" in lines[0]


def test_store_from_a_newer_agentnb(seeded, home, capsys):
    import duckdb

    con = duckdb.connect(str(home / "agentnb.duckdb"))
    try:
        con.execute("update alembic_version set version_num = '9999'")
    finally:
        con.close()
    code, out, err = run(capsys, "agents", "list")
    assert_user_error(code, out, err, "newer agentnb", "9999")
    code, out, err = run(capsys, "init")
    assert_user_error(code, out, err, "newer agentnb")
    code, out, err = run(capsys, "db", "upgrade")
    assert_user_error(code, out, err, "newer agentnb")
    code, out, _ = run(capsys, "db", "current")
    assert code == 0 and out.startswith("9999 (newer than this agentnb")
    # untouched
    con = duckdb.connect(str(home / "agentnb.duckdb"))
    try:
        assert con.execute("select count(*) from agents").fetchone() == (2,)
    finally:
        con.close()


def test_output_into_a_closed_pipe_is_quiet(seeded):
    script = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-m', 'agentnb.cli', 'templates', 'list'],"
        " stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
        "p.stdout.close()\n"
        "err = p.stderr.read().decode()\n"
        "p.wait()\n"
        "print('Traceback' in err)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_subprocess_delete_refuses_on_a_pipe(seeded):
    result = cli("agents", "delete", "calc", input="y\n")
    assert result.returncode == 2
    assert "agents delete calc --yes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = cli("agents", "list", "--json")
    assert result.returncode == 0
    assert [a["name"] for a in json.loads(result.stdout)] == ["calc", "helper"]


def test_console_script_works_and_releases_the_store(home):
    script = Path(sys.executable).with_name("agentnb")
    if not script.exists():
        pytest.skip("console script not installed next to this interpreter")
    result = subprocess.run([str(script), "agents", "create", "calc"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # the file is free again: this process can open it at once
    import duckdb

    con = duckdb.connect(str(home / "agentnb.duckdb"))
    try:
        assert con.execute("select name from agents").fetchall() == [("calc",)]
    finally:
        con.close()


HEAVY = ("langchain_core", "langchain", "pandas", "ipywidgets", "IPython", "fastapi", "uvicorn")


@pytest.mark.parametrize("argv", [["--help"], ["agents", "list"], ["sessions", "list", "--json"],
                                  ["usage"], ["templates", "list"], ["config", "show"]])
def test_cli_does_not_import_heavy_modules(home, argv):
    assert main(["init"]) == 0  # reading commands need a store (they create none)
    code = (
        "import sys, contextlib, io\n"
        "from agentnb.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    status = main({argv!r})\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(status, heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0 []"


@pytest.mark.parametrize("argv, fragment", [
    (["db", "upgrade", ""], "give a revision: head, base or a revision id"),
    (["sessions", "list", "--limit", "99999999999999999999"], "must be at most 1,000,000"),
    (["sessions", "export", "SID", "-o", "bad\x00name.md"], "not a file path"),
    (["agents", "crate"], "did you mean agentnb agents create?"),
])
def test_crashes_found_by_fuzzing_are_one_line(seeded, capsys, argv, fragment):
    """The examples issue 9 names: each is one clear line and exit 2 now."""
    argv = [str(seeded["session"]) if a == "SID" else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert_user_error(code, out, err, fragment)
