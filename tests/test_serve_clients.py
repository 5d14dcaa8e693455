"""Real clients against a real ``agentnb serve`` subprocess on 127.0.0.1: the ``openai`` SDK
(sync, async, streaming), LangChain's ``ChatOpenAI``, an old store upgraded on open, and the
command's own checks (workers, non-loopback warning)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import openai
import pytest

import agentnb
from tests.serve_helpers import ServeProcess, make_keys

SQL = "Please query_store(sql='select 40 + 2 as answer')"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("served") / "store.duckdb"
    url = f"duckdb:///{path}"
    store = agentnb.connect(url)
    store.create_agent("calc", model="offline", tools=["query_store"],
                       system="You answer from the store.")
    store.create_agent("other", model="offline")
    store.create_agent("slow", model="offline", model_kwargs={"token_delay": 0.01})
    keys, _ = make_keys(store)
    store.close()  # the server process opens the file; this one must not hold it
    proc = ServeProcess(url)
    proc.keys = keys
    yield proc
    proc.stop()


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=server.keys["calc"],
                         max_retries=0, timeout=60)


def stored(server, session: str) -> dict:
    r = httpx.get(f"{server.url}/api/sessions/{session}", timeout=60,
                  headers={"Authorization": f"Bearer {server.keys['admin']}"})
    assert r.status_code == 200, r.text
    return r.json()


def test_openai_sdk_sync_with_a_tool_call_stored(server, client):
    raw = client.chat.completions.with_raw_response.create(
        model="calc", messages=[{"role": "user", "content": SQL}])
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("query_store returned answer")
    assert "42" in completion.choices[0].message.content
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    session = raw.headers["X-Agentnb-Session"]
    messages = stored(server, session)["messages"]
    calls = [c for m in messages for c in m["tool_calls"]]
    assert [(c["tool_name"], c["input_args"], c["status"]) for c in calls] == [
        ("query_store", {"sql": "select 40 + 2 as answer"}, "success")]
    assert "42" in calls[0]["output"]
    models = client.models.list()
    assert [m.id for m in models.data] == ["calc"]


def test_openai_sdk_streaming_with_usage(server, client):
    stream = client.chat.completions.create(
        model="calc", messages=[{"role": "user", "content": "Tell me a story in 40 words"}],
        stream=True, stream_options={"include_usage": True})
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert len(text.split()) == 40 and finish == "stop"
    assert usage is not None and usage.completion_tokens >= 40


def test_openai_sdk_async_concurrent(server):
    async def main():
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=server.keys["calc"],
                                    max_retries=0, timeout=60)
        replies = await asyncio.gather(*[
            client.chat.completions.create(
                model="calc", messages=[{"role": "user", "content": f"hello number {i}"}])
            for i in range(8)])
        stream = await client.chat.completions.create(
            model="calc", messages=[{"role": "user", "content": "Tell me a story in 10 words"}],
            stream=True)
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream
                            if c.choices])
        await client.close()
        return replies, streamed

    replies, streamed = asyncio.run(main())
    for i, reply in enumerate(replies):
        assert f"hello number {i}" in reply.choices[0].message.content
    assert len(streamed.split()) == 10


def test_session_continuity_both_ways(server, client):
    first = client.chat.completions.with_raw_response.create(
        model="calc", messages=[{"role": "user", "content": "my name is Ada"}])
    session = first.headers["X-Agentnb-Session"]
    answer = first.parse().choices[0].message.content
    # the usual OpenAI shape: the whole conversation; it matches the stored session
    second = client.chat.completions.with_raw_response.create(
        model="calc", messages=[{"role": "user", "content": "my name is Ada"},
                                {"role": "assistant", "content": answer},
                                {"role": "user", "content": "what is my name?"}])
    assert second.headers["X-Agentnb-Session"] == session
    # the header: only the new message
    third = client.chat.completions.with_raw_response.create(
        model="calc", messages=[{"role": "user", "content": "and again?"}],
        extra_headers={"X-Agentnb-Session": session})
    assert third.headers["X-Agentnb-Session"] == session
    users = [m["content"] for m in stored(server, session)["messages"] if m["role"] == "user"]
    assert users == ["my name is Ada", "what is my name?", "and again?"]


def test_sdk_exception_classes(server, client):
    user = [{"role": "user", "content": "hi"}]
    bad = openai.OpenAI(base_url=server.url + "/v1", api_key="anb_" + "y" * 43, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        bad.chat.completions.create(model="calc", messages=user)
    assert "unknown or revoked" in exc.value.message
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="other", messages=user)
    admin = openai.OpenAI(base_url=server.url + "/v1", api_key=server.keys["admin"],
                          max_retries=0)
    with pytest.raises(openai.NotFoundError):
        admin.chat.completions.create(model="nobody", messages=user)
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="calc", messages=user, n=2)
    assert "n > 1" in exc.value.message
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="calc", messages=user, tools=[{
            "type": "function", "function": {"name": "f", "parameters": {}}}])
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="calc",
                                       messages=[{"role": "user", "content": "x" * 1_200_000}])
    assert exc.value.status_code == 413


def test_langchain_chat_openai(server):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=server.url + "/v1", api_key=server.keys["calc"], model="calc",
                     max_retries=0, timeout=60, stream_usage=True)
    message = llm.invoke(SQL)
    assert "42" in message.content
    assert message.usage_metadata["input_tokens"] > 0
    chunks = list(llm.stream("Tell me a story in 12 words"))
    text = "".join(c.content for c in chunks)
    assert len(text.split()) == 12
    assert sum((c.usage_metadata or {}).get("output_tokens", 0) for c in chunks) >= 12
    # LangChain sends the whole conversation: it continues the stored session
    from langchain_core.messages import AIMessage, HumanMessage

    first = llm.invoke([HumanMessage("remember 17")])
    again = llm.invoke([HumanMessage("remember 17"), AIMessage(first.content),
                        HumanMessage("which number?")])
    assert again.content
    with pytest.raises(openai.PermissionDeniedError):
        ChatOpenAI(base_url=server.url + "/v1", api_key=server.keys["calc"], model="other",
                   max_retries=0).invoke("hi")


def test_no_key_in_the_server_log(server, client):
    client.chat.completions.create(model="calc", messages=[{"role": "user", "content": "hi"}])
    httpx.get(server.url + "/v1/models", headers={"Authorization": f"Bearer {server.keys['admin']}"})
    assert _wait_for(server, "GET /v1/models")
    log = server.log
    assert "POST /v1/chat/completions" in log  # uvicorn's access log is on
    for key in server.keys.values():
        assert key not in log and key not in server.banner


def _write_0001_store(url: str) -> str:
    """A store as agentnb wrote it before key scopes (revision 0001), with one agent key."""
    from agentnb.store import keys as keymat
    from agentnb.store import migrate
    from agentnb.store.connection import ConnectionHolder

    holder = ConnectionHolder(url)
    with holder.connect() as conn:
        migrate.upgrade(conn, "0001")
    holder.dispose()
    plain = keymat.generate_key()
    now = "2026-11-30 10:00:00"
    agent_id = uuid.uuid4()
    holder = ConnectionHolder(url)
    with holder.begin() as conn:
        conn.exec_driver_sql(
            "insert into agents (id, name, description, config, created_at, updated_at) "
            f"values ('{agent_id}', 'old', '', '{{\"model\": \"offline\"}}', '{now}', '{now}')")
        conn.exec_driver_sql(
            "insert into api_keys (id, agent_id, name, key_prefix, key_hash, is_active, "
            f"created_at) values ('{uuid.uuid4().hex}', '{agent_id}', 'old-key', "
            f"'{keymat.key_prefix(plain)}', '{keymat.hash_key(plain)}', true, '{now}')")
    holder.dispose()
    return plain


def test_an_old_store_is_upgraded_and_its_keys_work_and_ctrl_c_stops(tmp_path):
    url = f"duckdb:///{tmp_path}/old.duckdb"
    plain = _write_0001_store(url)
    proc = ServeProcess(url)
    try:
        assert httpx.get(proc.url + "/health").json()["schema_revision"] == "0003"
        client = openai.OpenAI(base_url=proc.url + "/v1", api_key=plain, max_retries=0)
        assert [m.id for m in client.models.list().data] == ["old"]
        reply = client.chat.completions.create(
            model="old", messages=[{"role": "user", "content": "still here?"}])
        assert "still here?" in reply.choices[0].message.content
        # an agent key, not an admin key
        r = httpx.get(proc.url + "/api/keys", headers={"Authorization": f"Bearer {plain}"})
        assert r.status_code == 403
    finally:
        err = proc.stop()
    # Ctrl-C stops it cleanly, and the file is free: another process opens it at once
    assert proc.proc.returncode == 0, err
    assert "Traceback" not in err and "agentnb serve: stopped" in proc.log
    agentnb.connect(url).close()


def test_cli_refuses_workers_on_a_file_store_and_warns_off_loopback(tmp_path):
    import subprocess
    import sys

    url = f"duckdb:///{tmp_path}/w.duckdb"
    agentnb.connect(url).close()
    run = subprocess.run([sys.executable, "-m", "agentnb.cli", "serve", "--db", url,
                          "--workers", "2", "--port", "0"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "several workers need a PostgreSQL store" in lines[0], run.stderr
    run = subprocess.run([sys.executable, "-m", "agentnb.cli", "serve", "--db", url,
                          "nobody"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "nobody" in run.stderr
    # any address but a loopback one: a warning that keys travel in clear
    proc = ServeProcess(url, "--host", "0.0.0.0")
    try:
        assert "travel in clear" in "".join(proc.stderr_lines) or _wait_for(proc, "travel in clear")
    finally:
        proc.stop()


def _wait_for(proc: ServeProcess, text: str) -> bool:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if text in proc.log:
            return True
        time.sleep(0.05)
    return False


def test_the_cli_works_on_the_store_while_the_server_runs(server, client, tmp_path):
    """The server holds the DuckDB file only while it works: another process gets in."""
    import json
    import subprocess
    import sys

    db = server.proc.args[server.proc.args.index("--db") + 1]
    reply = client.chat.completions.with_raw_response.create(
        model="calc", messages=[{"role": "user", "content": "seen from the CLI?"}])
    session = reply.headers["X-Agentnb-Session"]
    run = subprocess.run([sys.executable, "-m", "agentnb.cli", "sessions", "list", "calc",
                          "--json", "--db", db], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert session in [s["id"] for s in json.loads(run.stdout)]
    run = subprocess.run([sys.executable, "-m", "agentnb.cli", "chat", "calc", "from the CLI",
                          "--session", session, "--db", db],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    # and the server goes on, with the CLI's turn in the same session
    again = client.chat.completions.with_raw_response.create(
        model="calc", messages=[{"role": "user", "content": "still there?"}],
        extra_headers={"X-Agentnb-Session": session})
    assert again.status_code == 200
    users = [m["content"] for m in stored(server, session)["messages"] if m["role"] == "user"]
    assert users == ["seen from the CLI?", "from the CLI", "still there?"]
