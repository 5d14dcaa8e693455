"""``agentnb chat``: a turn streamed to the terminal, stored like any other."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import agentnb
from agentnb.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_chat_streams_answer_and_continues_session(capsys):
    assert _run(capsys, "agents", "create", "calc")[0] == 0
    code, out, err = _run(capsys, "chat", "calc", "hello", "there")
    assert code == 0
    assert 'You said: "hello there"' in out
    assert err.startswith("-- offline · ") and "tokens · session " in err
    code, out, _ = _run(capsys, "chat", "calc", "--json", "again")
    data = json.loads(out)
    assert data["status"] == "complete" and "turn 2" in data["text"]
    store = agentnb.connect()
    (summary,) = store.sessions("calc")
    assert summary.turns == 2 and str(summary.session.id) == data["session_id"]
    code, out, _ = _run(capsys, "chat", "calc", "--new", "--json", "fresh")
    assert json.loads(out)["session_id"] != data["session_id"]
    code, out, _ = _run(capsys, "chat", "calc", "-s", data["session_id"][:8], "--json", "back")
    assert json.loads(out)["session_id"] == data["session_id"]
    store.close()


def test_chat_with_builtin_tool(capsys):
    _run(capsys, "agents", "create", "sql", "--template", "sql-analyst")
    code, out, err = _run(capsys, "chat", "sql", "query_store(sql='select count(*) as n from agents')")
    assert code == 0
    assert "[tool] query_store(sql=" in err and "query_store(sql='select count(*) as n from agents'): ok" in err
    assert "1" in out
    store = agentnb.connect()
    history = store.history(store.sessions("sql")[0].session.id)
    assert history[1].tool_calls[0].tool_name == "query_store"
    assert history[1].tool_calls[0].status == "success"
    store.close()


def test_chat_model_failure_exit_1_and_stored(capsys, monkeypatch):
    import socket

    monkeypatch.setattr("agentnb.engine.RETRY_BASE_DELAY", 0.01)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _run(capsys, "agents", "create", "dead", "--model", "openai-compatible:x")
    _run(capsys, "agents", "update", "dead", f"base_url=http://127.0.0.1:{port}/v1",
         "max_retries=0")
    code, out, err = _run(capsys, "chat", "dead", "hi")
    assert code == 1
    assert "the turn failed" in err and "stored" in err
    store = agentnb.connect()
    history = store.history(store.sessions("dead")[0].session.id)
    assert [m.status for m in history] == ["complete", "error"]
    store.close()


def test_chat_user_errors_exit_2(capsys):
    code, _, err = _run(capsys, "chat", "ghost", "hi")
    assert code == 2 and err.count("\n") == 1 and "no agent named 'ghost'" in err
    _run(capsys, "agents", "create", "calc")
    code, _, err = _run(capsys, "chat", "calc", "   ")
    assert code == 2 and "empty" in err
    code, _, err = _run(capsys, "chat", "calc", "--model", "nope:x", "hi")
    assert code == 2 and err.startswith("agentnb: error:")


def test_chat_subprocess_streams(isolated_home):
    env = {"AGENTNB_HOME": str(isolated_home), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-m", "agentnb.cli", "agents", "create", "calc"],
                   env=env, check=True, capture_output=True)
    proc = subprocess.run(
        [sys.executable, "-m", "agentnb.cli", "chat", "calc", "write it in 50 words"],
        env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.split()) == 50
    assert "Traceback" not in proc.stderr


def test_chat_says_which_tools_it_cannot_run(capsys):
    assert _run(capsys, "agents", "create", "calc", "--tools", "add")[0] == 0
    code, out, err = _run(capsys, "chat", "calc", "hello")
    assert code == 0 and "hello" in out
    assert "[note] tools not available here: add (notebook functions run only in the kernel " \
        "that defines them)" in err
