"""The IPython extension: %load_ext agentnb and the store-side %agent subcommands.

Every test drives a real (fresh) InteractiveShell through ``run_line_magic``
and checks what a user sees (the returned object, its HTML and plain text,
the UsageError line) and what landed in the store.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest
from IPython.core.error import UsageError
from traitlets import TraitError

import agentnb
from agentnb.render import results as render
from agentnb.commands import commands_for
from agentnb.notebook.extension import get_magics
from agentnb.notebook.magics import AgentMagics

# -- fixtures (kept in this module on purpose) ----------------------------------------


@pytest.fixture
def shell(monkeypatch, isolated_home):
    """A fresh InteractiveShell with history off and agentnb loaded (à la jupysql)."""
    from IPython.core.history import HistoryManager
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setattr(HistoryManager, "enabled", False)
    sh = InteractiveShell()
    sh.extension_manager.load_extension("agentnb")
    yield sh
    if "agentnb" in sh.extension_manager.loaded:
        sh.extension_manager.unload_extension("agentnb")


@pytest.fixture
def run(shell):
    """``run("create calc")`` is ``%agent create calc``; returns what the cell shows."""

    def _run(line: str = ""):
        return shell.run_line_magic("agent", line)

    return _run


@pytest.fixture
def nb(shell) -> AgentMagics:
    return get_magics(shell)


def fresh_store():
    """A second, independent connection to the same (default) store."""
    return agentnb.connect()


def ensure_session(nb: AgentMagics, name: str | None = None):
    """The session a chat with ``name`` (default: the current agent) continues; made current."""
    agent = nb.require_agent(name)
    session = agent.session_for_turn()
    nb.set_current(agent)
    return session


def add_turn(nb: AgentMagics, user: str = "what is 2+3?", answer: str = "5"):
    """Store one turn (with a tool call) in the current session, as the engine would."""
    from agentnb.schemas import NewMessage, NewToolCall

    session = ensure_session(nb)
    nb.store._repo.append_turn(
        session.id,
        [
            NewMessage(role="user", content=user),
            NewMessage(
                role="assistant",
                content="",
                model="offline",
                input_tokens=12,
                output_tokens=3,
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
            NewMessage(role="assistant", content=answer, model="offline", input_tokens=20,
                       output_tokens=2),
        ],
    )
    return session


# -- loading ----------------------------------------------------------------------------


def test_load_ext_imports_nothing_heavy():
    code = textwrap.dedent(
        """
        from IPython.core.history import HistoryManager
        HistoryManager.enabled = False
        from IPython.core.interactiveshell import InteractiveShell
        sh = InteractiveShell.instance()
        sh.extension_manager.load_extension('agentnb')
        import sys
        assert 'agent' in sh.magics_manager.magics['line']
        print([m for m in ('langchain_core', 'pandas', 'duckdb', 'sqlalchemy', 'ipywidgets',
                          'fastapi', 'uvicorn', 'starlette', 'mcp', 'langchain_mcp_adapters')
               if m in sys.modules])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_load_twice_keeps_state_and_unload_removes_magic(shell, run, nb):
    run("create calc")
    agentnb.load_ipython_extension(shell)  # a second load is harmless
    assert get_magics(shell) is nb
    assert nb.current_agent == "calc"

    shell.run_line_magic("unload_ext", "agentnb")
    assert "agent" not in shell.magics_manager.magics["line"]
    assert nb not in shell.configurables
    with pytest.raises(UsageError, match="not loaded"):
        get_magics(shell)
    with pytest.raises(UsageError, match="agent"):
        shell.run_line_magic("agent", "")

    shell.run_line_magic("load_ext", "agentnb")
    assert get_magics(shell) is not nb
    assert run("list").rows[0][1] == "calc"  # the store survived, the notebook state did not


# -- configuration ------------------------------------------------------------------------


def test_config_default_model_validates(shell, run, nb, caplog):
    shell.run_line_magic("config", 'AgentMagics.default_model = "openai:gpt-4o-mini"')
    assert nb.default_model == "openai:gpt-4o-mini"
    shell.run_line_magic("config", 'AgentMagics.default_model = "not a spec"')
    assert nb.default_model == "openai:gpt-4o-mini"
    assert "is not a model spec; use 'offline' or 'provider:model'" in caplog.text
    with pytest.raises(TraitError, match="provider:model"):
        nb.default_model = "gpt 4"
    with pytest.raises(TraitError, match="unknown model provider 'acme'"):
        nb.default_model = "acme:model-1"
    nb.default_model = "offline"

    shell.run_line_magic("config", 'AgentMagics.default_model = "ollama:llama3"')
    run("create local")
    assert fresh_store().agent("local").config.model == "ollama:llama3"
    run("create explicit --model offline")
    assert fresh_store().agent("explicit").config.model == "offline"


def test_config_other_traits_validate(nb):
    with pytest.raises(TraitError, match="above 0"):
        nb.stream_rate = 0
    with pytest.raises(TraitError, match="0 \\(all\\) or more"):
        nb.history_limit = -1
    with pytest.raises(TraitError, match="not a database URL"):
        nb.database_url = "agentnb.duckdb"
    with pytest.raises(TraitError, match="not an agent name"):
        nb.default_agent = "two words"
    nb.stream_rate = 5
    assert nb.stream_rate == 5.0


def test_config_lists_agent_magics(shell, capsys):
    shell.run_line_magic("config", "AgentMagics")
    out = capsys.readouterr().out
    assert "default_model" in out and "stream_rate" in out and "history_limit" in out


def test_database_url_switches_store(tmp_path, run, nb):
    run("create calc")
    url = f"sqlite:///{tmp_path}/other._db"
    nb.database_url = url
    assert nb.current_agent is None
    with pytest.raises(UsageError, match="no agentnb store at"):
        run("list")  # a reading command makes no store at a new (or mistyped) address
    assert not (tmp_path / "other._db").exists()
    run("create other")
    assert [a.name for a in agentnb.connect(url).agents()] == ["other"]
    assert [a.name for a in fresh_store().agents()] == ["calc"]


def test_settings_from_ipython_config(monkeypatch, tmp_path):
    """ipython_config.py style: c.AgentMagics.* set before %load_ext."""
    from IPython.core.history import HistoryManager
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.setattr(HistoryManager, "enabled", False)
    cfg = Config()
    cfg.AgentMagics.database_url = f"sqlite:///{tmp_path}/cfg.db"
    cfg.AgentMagics.default_model = "offline"
    cfg.AgentMagics.stream_rate = 4.0
    sh = InteractiveShell(config=cfg)
    sh.extension_manager.load_extension("agentnb")
    try:
        nb = get_magics(sh)
        assert nb.stream_rate == 4.0
        sh.run_line_magic("agent", "create calc")
        assert [a.name for a in agentnb.connect(f"sqlite:///{tmp_path}/cfg.db").agents()] == ["calc"]
    finally:
        sh.extension_manager.unload_extension("agentnb")


def test_default_agent_becomes_current(run, nb):
    run("create calc")
    run("new")
    session = nb.current_session
    nb.set_current(None)
    nb._default_checked = False
    nb.default_agent = "calc"
    status = run("")
    assert status["agent"] == "calc"
    assert nb.current_session == session


# -- status, listings ------------------------------------------------------------------------


def test_status_without_agent(run, isolated_home):
    status = run()
    assert isinstance(status, render.KeyValues)
    assert str(isolated_home) in status["store"]
    assert "%agent create NAME" in status["agent"]
    assert "agentnb" in repr(status)


def test_status_masks_password(run, nb):
    run("create calc")
    nb.store.url = "postgresql://me:hunter2@db.example/agentnb"
    status = run()
    assert "hunter2" not in repr(status) and "hunter2" not in status._repr_html_()
    assert "***" in status["store"]
    assert status["agent"] == "calc" and status["model"] == "offline"


def test_list_marks_current_agent_and_renders(run):
    run("init")  # a new store (reading commands create none)
    empty = run("list")
    assert empty.rows == [] and "no agents yet" in repr(empty)
    run("create calc --description 'adds <numbers>'")
    run("create writer --model offline")
    table = run("list")
    assert [r[1] for r in table.rows] == ["calc", "writer"]
    assert [r[0] for r in table.rows] == ["", "*"]  # the last created is current
    html = table._repr_html_()
    assert "calc" in html and "adds &lt;numbers&gt;" in html and "<numbers>" not in html
    lines = repr(table).splitlines()
    assert lines[1].split() == ["name", "model", "template", "tools", "sessions", "description"]
    # aligned: every column starts at the same offset on every row
    assert lines[3].index("calc") == lines[4].index("writer") == lines[1].index("name")


def test_templates_lists_builtins(run):
    table = run("templates")
    names = [r[0] for r in table.rows]
    assert "data-analyst" in names and "assistant" in names
    assert "data-analyst" in table._repr_html_()


def test_models_says_whether_key_is_set_never_its_value(run, monkeypatch):
    models = pytest.importorskip("agentnb.models")
    if not hasattr(models, "list_providers"):
        pytest.skip("agentnb.models.list_providers is not written yet")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-supersecret")
    table = run("models")
    text = repr(table) + table._repr_html_()
    assert "supersecret" not in text
    assert "offline" in text
    assert any(r[4] == "set" for r in table.rows if r[3] == "OPENAI_API_KEY")


# -- create / use / show / set / delete ----------------------------------------------------


def test_create_stores_agent_and_makes_it_current(run, nb):
    result = run(
        'create calc --model offline --system "You add numbers." --tools add,mul '
        "--description 'A calculator'"
    )
    assert isinstance(result, render.Notice) and "calc" in repr(result)
    assert nb.current_agent == "calc" and nb.current_session is None
    agent = fresh_store().agent("calc")
    assert agent.config.system == "You add numbers."
    assert agent.config.tools == ["add", "mul"]
    assert agent.record.description == "A calculator"


def test_create_from_template(run):
    run("create analyst --template data-analyst")
    agent = fresh_store().agent("analyst")
    assert agent.record.template == "data-analyst"
    assert agent.config.memory.strategy == "tokens"


def test_create_does_not_expand_variables(shell, run):
    shell.user_ns["secret"] = "EXPANDED"
    run('create calc --system "use {secret} and $secret"')
    assert fresh_store().agent("calc").config.system == "use {secret} and $secret"


@pytest.mark.parametrize(
    "line, message",
    [
        ("create", "required: NAME"),
        ("create 9lives", "invalid agent name"),
        ("create calc --temperature 1", "unrecognized arguments: --temperature"),
        ("create calc --template data-analist", "did you mean 'data-analyst'"),
        ("create calc --system 'unclosed", "No closing quotation"),
        ("create calc --model 'openai:x' --model-kwargs", "unrecognized arguments"),
        ("create calc --model gpt-4o", "did you mean 'openai:gpt-4o'"),
        ("create calc --model nope:x", "unknown model provider 'nope'"),
    ],
)
def test_create_mistakes_are_one_line_usage_errors(run, line, message):
    with pytest.raises(UsageError, match=message) as info:
        run(line)
    assert "\n" not in str(info.value)
    assert fresh_store().agents() == []


def test_create_twice_is_a_usage_error(run):
    run("create calc")
    with pytest.raises(UsageError, match="already exists"):
        run("create calc")


def test_use_switches_and_resumes_latest_session(run, nb):
    run("create calc")
    session = run("new")
    first = nb.current_session
    assert "new session" in repr(session)
    run("create other")
    assert nb.current_agent == "other" and nb.current_session is None
    notice = run("use calc")
    assert nb.current_agent == "calc" and nb.current_session == first
    assert "resumed session" in repr(notice)
    run("use calc --new")
    assert nb.current_session != first


def test_use_unknown_agent_suggests_close_name(run):
    run("create calc")
    with pytest.raises(UsageError, match=r"no agent named 'calx'; did you mean 'calc'\? \(see %agent list\)"):
        run("use calx")


def test_show_renders_config_sessions_and_usage(run, nb):
    run("create calc --system 'You add <b>numbers</b>.'")
    add_turn(nb)
    shown = run("show")
    html = shown._repr_html_()
    assert "calc" in html and "You add &lt;b&gt;numbers&lt;/b&gt;." in html
    text = repr(shown)
    assert "system          You add <b>numbers</b>." in text
    assert "32 in / 5 out" in text
    assert "what is 2+3?" in text  # the session's first message
    with pytest.raises(UsageError, match="did you mean 'calc'"):
        run("show cal")


def test_show_without_agent_says_what_to_type(run):
    with pytest.raises(UsageError, match="%agent create NAME"):
        run("show")


def test_set_changes_config_and_renames(run, nb):
    run("create calc")
    notice = run('set system="Be terse." temperature=0 memory=window memory.window_turns=4')
    assert "system = 'Be terse.'" in repr(notice) and "temperature = 0" in repr(notice)
    agent = fresh_store().agent("calc")
    assert agent.config.model_kwargs == {"temperature": 0}
    assert agent.config.memory.strategy == "window" and agent.config.memory.window_turns == 4

    run("set calc name=adder description='adds things'")
    assert nb.current_agent == "adder"
    store = fresh_store()
    assert [a.name for a in store.agents()] == ["adder"]
    assert store.agent("adder").record.description == "adds things"


@pytest.mark.parametrize(
    "line, message",
    [
        ("set", "nothing to change"),
        ("set calc", "nothing to change; type e.g. %agent set calc"),
        ("set colour=blue", "unknown setting 'colour'"),
        ("set max_iterations=0", "max_iterations"),
        ("set calc model", "expected key=value, got 'model'"),
        ("set calx model=offline", "did you mean 'calc'"),
        ("set name=9x", "invalid agent name"),
        ("set model=llama3", "has no provider"),
    ],
)
def test_set_mistakes(run, line, message):
    run("create calc")
    with pytest.raises(UsageError, match=message):
        run(line)


def test_set_without_current_agent(run):
    with pytest.raises(UsageError, match="no current agent"):
        run("set model=offline")


def test_delete_needs_yes_and_removes_everything(run, nb):
    run("create calc")
    add_turn(nb)
    run("keys create")
    with pytest.raises(UsageError, match="%agent delete calc --yes"):
        run("delete calc")
    assert [a.name for a in fresh_store().agents()] == ["calc"]
    done = run("delete calc --yes")
    assert "deleted agent 'calc' (1 session, 4 messages, 1 key)" in repr(done)
    assert nb.current_agent is None and nb.current_session is None
    counts = fresh_store()._repo.counts()
    assert counts == {"agents": 0, "sessions": 0, "messages": 0, "tool_calls": 0, "api_keys": 0}
    with pytest.raises(UsageError, match="no agent named 'calc'"):
        run("delete calc --yes")


# -- sessions -------------------------------------------------------------------------------


def test_new_records_notebook_attrs(shell, run, nb):
    run("create calc")
    shell.user_ns["__session__"] = "/work/analysis.ipynb"
    run("new --title 'first try'")
    session = fresh_store().session(nb.current_session)
    assert session.title == "first try"
    assert session.attrs["notebook"] == "/work/analysis.ipynb"
    assert session.attrs["source"] == "notebook"


def test_session_rule_for_chat_front_ends(run, nb):
    with pytest.raises(UsageError, match="no current agent"):
        ensure_session(nb)
    run("create calc")
    first = ensure_session(nb)  # the first chat creates the session
    assert nb.current_session == first.id and first.attrs["source"] == "notebook"
    assert ensure_session(nb).id == first.id  # later chats continue it
    run("create other")
    other = ensure_session(nb)
    assert other.id != first.id and nb.current_agent == "other"
    assert ensure_session(nb, "calc").id == first.id  # another agent: its current session
    assert nb.current_agent == "calc"
    fresh_store()._repo.delete_session(first.id)
    assert ensure_session(nb).id != first.id  # gone (another kernel deleted it): a new one


def test_new_without_agent(run):
    with pytest.raises(UsageError, match="no current agent"):
        run("new")


def test_sessions_resume_and_history(run, nb):
    run("create calc")
    first = add_turn(nb, user="first question")
    run("new")
    second = nb.current_session
    table = run("sessions")
    assert len(table.rows) == 2
    current_row = next(r for r in table.rows if r[0] == "*")
    assert current_row[1] == str(second).replace("-", "")[:8]
    assert any(r[2] == "first question" and r[3] == 1 and r[4] == 37 for r in table.rows)

    run("create other")
    everyone = run("sessions --all")
    assert "agent" in everyone.columns and len(everyone.rows) == 2

    prefix = str(first.id).replace("-", "")[:6]
    notice = run(f"resume {prefix}")
    assert nb.current_agent == "calc" and nb.current_session == first.id
    assert "1 turn)" in repr(notice)

    transcript = run("history")
    page = transcript._repr_html_()
    # roles are styled labels, not headings (no table-of-contents entries)
    assert not re.search(r"<h[1-6]\b", page) and "first question" in page
    assert 'class="agentnb-tool-card" data-status="success"' in page
    assert "agentnb-icon-wrench" in page
    plain = repr(transcript)
    assert "user: first question" in plain and "assistant: 5" in plain
    last = run("history -n 1")
    assert len(last.messages) == 1 and "last 1 messages" in last.title


def test_history_limit_config(run, nb):
    run("create calc")
    add_turn(nb)
    nb.history_limit = 2
    assert len(run("history").messages) == 2
    nb.history_limit = 0
    assert len(run("history").messages) == 4


@pytest.mark.parametrize(
    "setup, line, message",
    [
        ("", "history", "no current agent"),
        ("create calc", "history", "has no session yet"),
        ("create calc", "history -n x", "--limit: must be a whole number, got 'x'"),
        ("create calc", "resume ffffffff", r"no session ffffffff \(see %agent sessions\)"),
        ("create calc", "resume", "required: ID"),
        ("create calc", "sessions -n 0", "--limit: must be at least 1"),
        ("create calc", "history -n 99999999999999999999", "must be at most 1,000,000"),
        ("create calc", "sessions nobody", "no agent named 'nobody'"),
    ],
)
def test_session_mistakes(run, setup, line, message):
    if setup:
        run(setup)
    with pytest.raises(UsageError, match=message):
        run(line)


# -- usage, sql, export ---------------------------------------------------------------------


def test_usage_tables_and_day_chart(run, nb):
    run("create calc")
    add_turn(nb)
    by_agent = run("usage")
    assert by_agent.rows == [["calc", 1, 4, 32, 5, 1]]
    by_model = run("usage --by model")
    assert by_model.rows[0][0] == "offline"
    by_day = run("usage --by day")
    assert isinstance(by_day, render.Stack)
    html = by_day._repr_html_()
    assert "tokens per day" in html and "width:100.0%" in html
    assert "█" in repr(by_day)
    with pytest.raises(UsageError, match="--by: must be one of agent, session, model, day or user"):
        run("usage --by week")


def test_sql_returns_a_dataframe(shell, run):
    run("create calc")
    run("create other")
    shell.run_cell("df = %agent sql select name from agents where name <> 'x' order by name")
    df = shell.user_ns["df"]
    assert list(df["name"]) == ["calc", "other"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("sql", "give a query"),
        ("sql delete from agents", "read-only"),
        ("sql select * from nowhere", "SQL error"),
    ],
)
def test_sql_mistakes(run, line, message):
    run("create calc")
    with pytest.raises(UsageError, match=message):
        run(line)
    assert [a.name for a in fresh_store().agents()] == ["calc"]


def test_export_markdown_json_and_file(run, nb, tmp_path):
    run("create calc")
    session = add_turn(nb)
    md = run("export")
    assert isinstance(md, str) and "agent: `calc`" in md and md.markdown
    # shown as its source (a fenced block): its headings stay out of the table of contents
    assert md._repr_markdown_() == f"```md\n{md}\n```"
    data = json.loads(run(f"export {str(session.id)[:8]} --format json"))
    assert data["agent"] == "calc" and len(data["messages"]) == 4
    out = tmp_path / "s.md"
    notice = run(f"export --output {out}")
    assert "wrote" in repr(notice) and "what is 2+3?" in out.read_text()
    with pytest.raises(UsageError, match="--format: must be one of md or json, got 'pdf'"):
        run("export --format pdf")


def test_export_without_session(run):
    run("create calc")
    with pytest.raises(UsageError, match="has no session yet"):
        run("export")


# -- keys -----------------------------------------------------------------------------------


def test_keys_create_shows_once_list_revoke(run, nb, capsys):
    run("create calc")
    assert run("keys create --name ci") is None  # displayed, not kept in Out/_
    out = capsys.readouterr().out
    key = next(w for w in out.split() if w.startswith("anb_"))
    assert "shown only once" in out and "clear the output" in out
    store = fresh_store()
    assert store.verify_key(key) is not None
    _, rows = store.sql_rows("select * from api_keys")
    assert key not in repr(rows)  # only the hash and prefix are stored

    table = run("keys list calc")
    assert len(table.rows) == 1 and table.rows[0][2] == "ci" and key not in repr(table)
    key_id = table.rows[0][0]
    run(f"keys revoke {key_id}")
    assert fresh_store().keys()[0].is_active is False
    assert run("keys").rows[0][5] == "revoked"


@pytest.mark.parametrize(
    "line, message",
    [
        ("keys revoke", "keys revoke: the following arguments are required: KEY_ID"),
        ("keys revoke 0000", r"no API key 0000 \(see %agent keys list\)"),
        ("keys rotate", "unknown subcommand 'keys rotate'.*choose one of: create, list, revoke"),
        ("keys create nobody", "no agent named 'nobody'"),
    ],
)
def test_keys_mistakes(run, line, message):
    run("create calc")
    with pytest.raises(UsageError, match=message):
        run(line)


# -- tools ----------------------------------------------------------------------------------


class _RecordingRegistry:
    """Stands in for agentnb.tools.ToolRegistry: register(fn), refuses what it must."""

    def __init__(self):
        self.registered = {}

    def register(self, fn, requires_approval: bool = False):
        from agentnb.errors import ToolDefinitionError

        if fn.__name__ == "<lambda>":
            raise ToolDefinitionError("a lambda cannot be a tool: define it with def and a docstring")
        self.registered[fn.__name__] = requires_approval
        return fn

    def names(self):
        return list(self.registered)


def test_tool_flow_registers_in_the_store_registry(shell, run, nb):
    shell.run_cell("def add(a: int, b: int) -> int:\n    'Add.'\n    return a + b\nsq = lambda x: x")
    with pytest.raises(UsageError, match="a lambda cannot be a tool"):
        run("tool sq")
    notice = run("tool add")
    assert "no current agent" in repr(notice)
    assert nb.store.tools.get("add").requires_approval is False
    run("create calc --tools add")
    run("tool add --approve")
    assert nb.store.tools.get("add").requires_approval is True
    assert fresh_store().agent("calc").config.tools == ["add"]
    assert run()["notebook tools"] == ["add"]


def test_notebook_tool_is_used_by_a_turn(shell, run, nb):
    shell.run_cell("def add(a: int, b: int) -> int:\n    'Add two integers.'\n    return a + b")
    run("create calc")
    run("tool add")
    reply = nb.store.agent("calc").chat("add(a=40, b=2)")
    assert reply.tool_calls[0].output == "42"


def _tool_registry_or_skip():
    tools = pytest.importorskip("agentnb.tools")
    if not hasattr(tools, "ToolRegistry"):
        pytest.skip("agentnb.tools.ToolRegistry is not written yet")


def test_tool_registers_notebook_functions(shell, run, nb):
    _tool_registry_or_skip()
    shell.run_cell(
        textwrap.dedent(
            '''
            def add(a: int, b: int) -> int:
                """Add two integers."""
                return a + b
            '''
        )
    )
    run("create calc --tools mul")
    notice = run("tool add")
    assert "add" in repr(notice)
    assert fresh_store().agent("calc").config.tools == ["mul", "add"]
    assert nb.tools.get("add").requires_approval is False
    run("tool add --approve")
    assert fresh_store().agent("calc").config.tools == ["mul", "add"]
    assert nb.tools.get("add").requires_approval is True


def test_tool_mistakes(shell, run):
    _tool_registry_or_skip()
    shell.run_cell("undocumented = lambda x: x\nvalue = 3")
    run("create calc")
    with pytest.raises(UsageError, match="no function named 'ad'"):
        run("tool ad")
    with pytest.raises(UsageError, match="'value' is not a function"):
        run("tool value")
    with pytest.raises(UsageError, match="a lambda cannot be a tool"):
        run("tool undocumented")
    shell.run_cell("def untyped(x):\n    'Echo.'\n    return x")
    with pytest.raises(UsageError, match="annotate parameter 'x'"):
        run("tool untyped")
    assert fresh_store().agent("calc").config.tools == []


# -- the dispatcher -----------------------------------------------------------------------------


def test_tabs_and_extra_spaces_are_separators(run, nb):
    run("  create\tcalc   --model   offline ")
    assert nb.current_agent == "calc"
    assert len(run("sql   select  *  from agents  where name = 'calc'  ")) == 1


def test_unknown_subcommand_suggests(run):
    with pytest.raises(UsageError, match=r"unknown subcommand 'lsit'; did you mean %agent list\?"):
        run("lsit")
    with pytest.raises(UsageError, match=r"unknown subcommand 'zzz'; see %agent help"):
        run("zzz")


def test_help_for_everything(run, capsys):
    run("help")
    out = capsys.readouterr().out
    names = [c.aliases[0] if c.aliases else " ".join(c.path) for c in commands_for("notebook")]
    for name in names:
        assert f"  {name}" in out
    assert "%%chat --help" in out
    for name in names:
        assert run(f"{name} --help") is None
        text = capsys.readouterr().out
        assert f"%agent {name}" in text, name
    run("help create")
    assert "--template" in capsys.readouterr().out
    with pytest.raises(UsageError, match="did you mean %agent create"):
        run("help craete")


# -- rendering -----------------------------------------------------------------------------------


def test_table_escapes_and_aligns():
    table = render.Table(["name", "n"], [["<script>", 5], ["b", 1234]], title="t & u")
    html = table._repr_html_()
    assert "&lt;script&gt;" in html and "<script>" not in html and "t &amp; u" in html
    lines = repr(table).splitlines()
    assert lines == ["t & u", "name          n", "--------  -----", "<script>      5", "b         1,234"]


def test_key_values_multiline_and_transcript_empty():
    kv = render.KeyValues([("system", "line one\nline two"), ("n", 3)])
    assert repr(kv).splitlines() == ["system  line one", "        line two", "n       3"]
    assert "no messages yet" in render.Transcript([])._repr_html_()
