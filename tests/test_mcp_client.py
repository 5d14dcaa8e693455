"""Agents using tools of real MCP servers (tests/mcp_demo_server.py, built with the mcp SDK).

Stdio and streamable HTTP; called by the offline model through ``agent.chat``,
``%%chat`` and ``agentnb chat``; rows stored with the server's name; approval;
a crash and a hang during a call; a server that never starts; one server
process for many calls; ``mcp add/list/tools/remove/import`` in both front ends.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from IPython.core.error import UsageError

import agentnb
from agentnb.errors import McpServerError, UserError

pytest.importorskip("mcp")
pytest.importorskip("langchain_mcp_adapters")

TESTS = Path(__file__).parent
DEMO = [sys.executable, str(TESTS / "mcp_demo_server.py")]
BROKEN = [sys.executable, str(TESTS / "mcp_broken_server.py")]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def wait_gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One store and one agent with the demo stdio server, for the whole module."""
    path = tmp_path_factory.mktemp("mcp") / "store.duckdb"
    store = agentnb.connect(f"duckdb:///{path}")
    agent = store.create_agent("calc", system="You compute.")
    agent.mcp.add("demo", DEMO)
    yield store, agent
    store.close()


def test_tools_are_listed_with_the_servers_descriptions_and_schemas(shared):
    store, agent = shared
    tools = {t.name: t for t in agent.mcp.tools("demo")}
    assert {"demo_multiply", "demo_add", "demo_pid", "demo_crash", "demo_hang"} <= set(tools)
    multiply = tools["demo_multiply"]
    assert multiply.server == "demo"
    assert multiply.description == "Multiply two integers."
    assert multiply.input_schema["properties"]["a"]["type"] == "integer"
    assert multiply.input_schema["required"] == ["a", "b"]


def test_offline_model_calls_an_mcp_tool_and_the_row_names_the_server(shared):
    store, agent = shared
    reply = agent.chat("Please demo_multiply(a=6, b=7)", new_session=True)
    assert reply.status == "complete"
    assert reply.text == "demo_multiply returned 42."
    [call] = reply.tool_calls
    assert (call.tool_name, call.status, call.output) == ("demo_multiply", "success", "42")
    assert call.attrs == {"server": "demo"}
    rows = store.sql("select tool_name, json_extract_string(attrs, '$.server') as server "
                     f"from tool_calls where id = '{call.id}'")
    assert rows.to_dict("records") == [{"tool_name": "demo_multiply", "server": "demo"}]


def test_one_server_process_serves_twenty_calls(shared):
    store, agent = shared
    pids = set()
    for _ in range(20):
        reply = agent.chat("demo_pid()")
        [call] = reply.tool_calls
        assert call.status == "success", call.error_message
        pids.add(int(call.output))
    assert len(pids) == 1
    server = store.runtime.mcp.server("demo", agent.config.mcp_servers["demo"])
    assert server.starts == 1
    assert pid_alive(pids.pop())


def test_an_error_result_is_a_tool_error_the_model_reads(shared):
    _, agent = shared
    reply = agent.chat("demo_fail(reason='no such row')")
    [call] = reply.tool_calls
    assert call.status == "error"
    assert "demo failure: no such row" in call.error_message
    assert reply.status == "complete"


def test_bad_arguments_are_refused_by_the_server(shared):
    _, agent = shared
    reply = agent.chat("demo_multiply(a='six', b=7)")
    [call] = reply.tool_calls
    assert call.status == "error"
    assert "validation error" in call.error_message.lower()


def test_a_hang_is_a_timeout_and_the_server_goes_on(shared):
    store, agent = shared
    agent.set(tool_timeout=1)
    try:
        reply = agent.chat("demo_hang()")
        [call] = reply.tool_calls
        assert call.status == "timeout"
        agent.set(tool_timeout=None)
        before = store.runtime.mcp.server("demo", agent.config.mcp_servers["demo"]).starts
        reply = agent.chat("demo_multiply(a=2, b=3)")
        assert reply.tool_calls[0].output == "6"
        assert store.runtime.mcp.server("demo", agent.config.mcp_servers["demo"]).starts == before
    finally:
        agent.set(tool_timeout=None)


def test_a_crash_during_a_call_is_a_tool_error_then_the_server_restarts(shared):
    store, agent = shared
    first = int(agent.chat("demo_pid()").tool_calls[0].output)
    reply = agent.chat("demo_crash()")
    [call] = reply.tool_calls
    assert call.status == "error"
    assert "MCP server 'demo' stopped during the call" in call.error_message
    assert "crashing on purpose" in call.error_message  # the tail of its stderr
    assert reply.status == "complete"  # the session goes on
    assert wait_gone(first)
    second = int(agent.chat("demo_pid()").tool_calls[0].output)
    assert second != first
    server = store.runtime.mcp.server("demo", agent.config.mcp_servers["demo"])
    starts = server.starts
    assert starts >= 2
    assert len(store.history(reply.session_id)) > 0
    # a server that died between calls is restarted by the next call, which then works
    os.kill(second, 9)
    assert wait_gone(second)
    third = agent.chat("demo_pid()").tool_calls[0]
    assert third.status == "success" and int(third.output) not in (first, second)
    assert server.starts == starts + 1


def test_approval_per_tool_and_per_server(shared):
    store, agent = shared
    agent.mcp.add("ask", DEMO, approve_tools=["shout"])
    asked = []

    def approve(event):
        asked.append(event.tool_name)
        return event.input_args.get("text") == "yes"

    denied = agent.chat("ask_shout(text='no')", approve=approve)
    assert denied.tool_calls[0].status == "denied"
    allowed = agent.chat("ask_shout(text='yes')", approve=approve)
    assert allowed.tool_calls[0].output == "YES!"
    free = agent.chat("ask_multiply(a=2, b=2)", approve=approve)
    assert free.tool_calls[0].status == "success"
    assert asked == ["ask_shout", "ask_shout"]
    agent.mcp.add("ask", DEMO, approve=True, replace=True)
    assert agent.chat("ask_multiply(a=2, b=2)").tool_calls[0].status == "denied"  # no approver
    agent.set(auto_approve=True)
    try:
        assert agent.chat("ask_multiply(a=2, b=2)").tool_calls[0].output == "4"
    finally:
        agent.set(auto_approve=None)
        agent.mcp.remove("ask")


def test_servers_stop_when_the_store_closes(tmp_path):
    store = agentnb.connect(f"duckdb:///{tmp_path}/s.duckdb")
    agent = store.create_agent("a")
    agent.mcp.add("demo", DEMO)
    pid = int(agent.chat("demo_pid()").tool_calls[0].output)
    assert pid_alive(pid)
    store.close()
    assert wait_gone(pid)


def test_a_server_that_never_starts_is_one_line_with_its_stderr(tmp_path):
    store = agentnb.connect(f"duckdb:///{tmp_path}/s.duckdb")
    agent = store.create_agent("a")
    agent.mcp.add("broken", BROKEN)
    with pytest.raises(McpServerError) as info:
        agent.chat("hello")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("MCP server 'broken' did not start (")
    assert "mcp_broken_server.py" in message
    assert "DEMO_CONFIG is missing" in message
    assert agent.sessions() == []  # nothing was created
    agent.mcp.remove("broken")
    agent.mcp.add("nothere", ["agentnb-no-such-command", "--serve"])
    with pytest.raises(McpServerError, match=r"agentnb-no-such-command --serve\): command not found"):
        agent.chat("hello")
    agent.mcp.remove("nothere")
    agent.mcp.add("needs", DEMO, env=["AGENTNB_TEST_UNSET_VAR"])
    with pytest.raises(McpServerError, match="AGENTNB_TEST_UNSET_VAR is not set"):
        agent.chat("hello")
    store.close()


# -- streamable HTTP -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the server did not listen in time")


@pytest.fixture(scope="module")
def http_server(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("mcp-http") / "server.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([*DEMO, "--http", str(port)], stdout=subprocess.DEVNULL,
                                stderr=err)
    try:
        wait_listening(port, proc)
        yield f"http://127.0.0.1:{port}/mcp", proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_streamable_http_server_tools_with_a_header_from_the_environment(http_server, tmp_path,
                                                                          monkeypatch):
    url, proc = http_server
    monkeypatch.setenv("DEMO_TOKEN", "s3cr3t-value")
    store = agentnb.connect(f"duckdb:///{tmp_path}/s.duckdb")
    agent = store.create_agent("web")
    agent.mcp.add("remote", url=url, headers={"Authorization": "Bearer:DEMO_TOKEN"})
    assert agent.mcp.list()["remote"].headers == {"Authorization": "Bearer ${DEMO_TOKEN}"}
    reply = agent.chat("remote_multiply(a=6, b=7) and remote_pid()")
    calls = {c.tool_name: c for c in reply.tool_calls}
    assert calls["remote_multiply"].output == "42"
    assert int(calls["remote_pid"].output) == proc.pid
    assert calls["remote_pid"].attrs == {"server": "remote"}
    store.close()
    raw = Path(f"{tmp_path}/s.duckdb").read_bytes()
    assert b"s3cr3t-value" not in raw


def test_an_http_server_that_is_not_there(tmp_path):
    store = agentnb.connect(f"duckdb:///{tmp_path}/s.duckdb")
    agent = store.create_agent("web")
    url = f"http://127.0.0.1:{free_port()}/mcp"
    agent.mcp.add("gone", url=url)
    with pytest.raises(McpServerError, match=rf"'gone' did not start \(at {url}\): ConnectError"):
        agent.chat("hi")
    store.close()


# -- configuration ---------------------------------------------------------------------------
def test_add_validates_and_never_stores_secrets(tmp_path):
    store = agentnb.connect(f"duckdb:///{tmp_path}/s.duckdb")
    agent = store.create_agent("a")
    with pytest.raises(UserError, match="give either a command"):
        agent.mcp.add("x")
    with pytest.raises(UserError, match="passes a secret on the command line"):
        agent.mcp.add("x", ["server", "--api-key", "sk-123"])
    with pytest.raises(UserError, match="NAME of an environment variable"):
        agent.mcp.add("x", ["server"], env=["TOKEN=sk-123"])
    with pytest.raises(UserError, match="holds a secret"):
        agent.mcp.add("x", url="http://h/mcp?api_key=abc")
    with pytest.raises(UserError, match="not usable"):
        agent.mcp.add("bad name", ["server"])
    agent.mcp.add("x", ["server", "--port", "1"], env=["TOKEN", "B=OTHER"])
    assert agent.mcp.get("x").env == {"TOKEN": "TOKEN", "B": "OTHER"}
    with pytest.raises(UserError, match="already has an MCP server 'x'"):
        agent.mcp.add("x", ["other"])
    with pytest.raises(UserError, match=r"agent 'a' has no MCP server 'y' \(servers: x\)"):
        agent.mcp.remove("y")
    store.close()


MCP_JSON = {
    "mcpServers": {
        "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                   "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_literalSecretValue123456"}},
        "docs": {"url": "http://127.0.0.1:9/mcp",
                 "headers": {"Authorization": "Bearer ${DOCS_TOKEN}",
                             "X-Api-Key": "literal-api-key-value"}},
        "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "$TZ"}},
        "old": {"type": "sse", "url": "http://127.0.0.1:9/sse"},
    }
}


def test_import_of_an_mcpservers_file_refuses_literal_secrets(tmp_path):
    store = agentnb.connect(f"duckdb:///{tmp_path}/s.duckdb")
    agent = store.create_agent("a")
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(MCP_JSON))
    result = agent.mcp.import_file(path)
    assert result.added == ["github", "docs", "time"]
    servers = agent.mcp.list()
    assert servers["github"].env == {"GITHUB_PERSONAL_ACCESS_TOKEN": "GITHUB_PERSONAL_ACCESS_TOKEN"}
    assert servers["docs"].headers == {"Authorization": "Bearer ${DOCS_TOKEN}",
                                       "X-Api-Key": "${DOCS_X_API_KEY}"}
    assert servers["time"].env == {"TZ": "TZ"}
    warnings = " ".join(result.warnings)
    assert "github: env GITHUB_PERSONAL_ACCESS_TOKEN held a literal secret" in warnings
    assert "docs: header X-Api-Key held a literal secret" in warnings
    assert "SSE servers are not supported" in warnings
    assert len(result.warnings) == 3
    store.close()
    raw = Path(f"{tmp_path}/s.duckdb").read_bytes()
    assert b"ghp_literalSecretValue" not in raw and b"literal-api-key-value" not in raw


# -- the front ends ----------------------------------------------------------------------------
@pytest.fixture
def shell(monkeypatch, isolated_home):
    from IPython.core.history import HistoryManager
    from IPython.core.interactiveshell import InteractiveShell

    from agentnb.notebook.extension import get_magics

    monkeypatch.setattr(HistoryManager, "enabled", False)
    InteractiveShell.clear_instance()
    sh = InteractiveShell.instance()
    sh.extension_manager.load_extension("agentnb")
    get_magics(sh).chat_display = "text"
    yield sh
    sh.extension_manager.unload_extension("agentnb")
    InteractiveShell.clear_instance()


def test_notebook_mcp_commands_and_chat(shell, monkeypatch, capsys):
    import shlex

    from agentnb.notebook.extension import get_magics

    agent = shell.run_line_magic
    agent("agent", "create calc")
    command = shlex.join(DEMO)
    added = agent("agent", f"mcp add demo --approve-tool shout -- {command}")
    assert "'calc' can now use the tools of MCP server 'demo'" in added.to_text()
    listed = agent("agent", "mcp list")
    assert listed.rows[0][:2] == ["demo", "stdio"]
    tools = agent("agent", "mcp tools demo")
    assert "demo_multiply" in [r[0] for r in tools.rows]
    shell.run_cell_magic("chat", "", "demo_multiply(a=6, b=7)")
    reply = get_magics(shell).last_reply
    assert reply.tool_calls[0].output == "42"
    assert reply.tool_calls[0].attrs == {"server": "demo"}
    # approval is asked at a prompt, as for Python tools
    prompts = []
    monkeypatch.setattr("builtins.input", lambda p="": prompts.append(p) or "y")
    shell.run_cell_magic("chat", "", "demo_shout(text='hi')")
    reply = get_magics(shell).last_reply
    assert prompts == ["Approve demo_shout(text='hi')? [y/N] "]
    assert reply.tool_calls[0].output == "HI!"
    store = get_magics(shell).store
    frame = store.sql("select json_extract_string(attrs, '$.server') as server, count(*) as n "
                      "from tool_calls group by 1")
    assert frame.to_dict("records") == [{"server": "demo", "n": 2}]
    with pytest.raises(UsageError, match="unexpected 'extra'; write COMMAND after --"):
        agent("agent", "mcp add other extra -- ls")
    with pytest.raises(UsageError, match=r"^[^\n]+$"):
        agent("agent", "mcp add other --env TOKEN=sk-1 -- ls")
    removed = agent("agent", "mcp remove demo")
    assert "removed MCP server 'demo'" in removed.to_text()


def test_chat_cell_with_a_server_that_never_starts_is_one_usage_error(shell):
    import shlex

    shell.run_line_magic("agent", "create b")
    shell.run_line_magic("agent", f"mcp add broken -- {shlex.join(BROKEN)}")
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("chat", "", "hello")
    message = str(info.value)
    assert "\n" not in message and "DEMO_CONFIG is missing" in message


def cli(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "agentnb.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_cli_mcp_commands_and_agentnb_chat(isolated_home, tmp_path):
    store = agentnb.connect()
    store.create_agent("calc")
    store.close()
    cli("mcp", "add", "calc", "demo", "--", *DEMO, "--env", "AGENTNB_DEMO_VAR")
    listed = json.loads(cli("mcp", "list", "calc", "--json").stdout)
    assert listed[0]["name"] == "demo" and listed[0]["args"] == DEMO[1:]
    assert listed[0]["env"] == {"AGENTNB_DEMO_VAR": "AGENTNB_DEMO_VAR"}
    missing = cli("chat", "calc", "demo_multiply(a=6, b=7)", check=False)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "agentnb: error: MCP server 'demo' did not start ("
        + f"{' '.join(DEMO)}): the environment variable AGENTNB_DEMO_VAR is not set (the server "
        "takes it from agentnb's environment); set it and try again"]
    env = {**os.environ, "AGENTNB_DEMO_VAR": "1"}
    out = cli("chat", "calc", "demo_multiply(a=6, b=7) and demo_pid()", "--json", env=env)
    reply = json.loads(out.stdout)
    assert reply["text"].startswith("The results: demo_multiply -> 42; demo_pid -> ")
    assert reply["tool_calls"][0]["output"] == "42"
    assert wait_gone(int(reply["tool_calls"][1]["output"]))  # stopped when agentnb exited
    listed = cli("tools", "list", "calc").stdout
    assert "demo_*" in listed and "mcp: demo" in listed
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(MCP_JSON))
    imported = cli("mcp", "import", "calc", str(path))
    assert "github: env GITHUB_PERSONAL_ACCESS_TOKEN held a literal secret" in imported.stdout
    bad = cli("mcp", "add", "calc", "x", "--url", "ftp://nope", check=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    store = agentnb.connect()
    rows = store.sql("select tool_name, json_extract_string(attrs, '$.server') as server "
                     "from tool_calls order by tool_name").to_dict("records")
    assert rows == [{"tool_name": "demo_multiply", "server": "demo"},
                    {"tool_name": "demo_pid", "server": "demo"}]
    assert set(store.agent("calc").mcp.list()) == {"demo", "github", "docs", "time"}
    store.close()
