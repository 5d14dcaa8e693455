"""The HTTP front end on a real uvicorn server in this process (``agentnb.serve.app``):
the auth matrix on every endpoint, errors as one line of JSON, limits, sessions, streams."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

import agentnb.serve
from agentnb.serve.server import BackgroundServer
from tests.serve_helpers import Served, make_keys, setup_store


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "store.duckdb"
    store = setup_store(f"duckdb:///{path}")
    keys, ids = make_keys(store)
    server = BackgroundServer(agentnb.serve.app(store), "127.0.0.1", 0).start()
    yield Served(store=store, url=server.url, keys=keys, server=server, ids=ids)
    server.stop()
    store.close()


@pytest.fixture
def http(served):
    with httpx.Client(base_url=served.url, timeout=60) as client:
        yield client


def chat_body(text: str = "Please add(a=2, b=3)", model: str = "calc", **extra):
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def error_of(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    message = body["error"]["message"]
    assert "\n" not in message and message, body
    return message


# -- the auth matrix -----------------------------------------------------------------
WHO = ["none", "malformed", "unknown", "revoked", "other", "calc", "admin"]


def endpoints(served, http):
    """(method, path, body, what an agent's own key gets, what an admin key gets)."""
    admin = served.headers("admin")
    reply = http.post("/api/agents/calc/chat", json={"message": "hello"}, headers=admin)
    session = reply.json()["session_id"]

    def throwaway_agent() -> str:
        name = f"tmp{uuid.uuid4().hex[:8]}"
        assert http.post("/api/agents", json={"name": name, "model": "offline"},
                         headers=admin).status_code == 201
        return name

    def throwaway_key() -> str:
        created = http.post("/api/keys", json={"agent": "other", "name": "tmp"}, headers=admin)
        return created.json()["id"]

    return [
        ("GET", "/v1/models", None, 200, 200),
        ("GET", "/v1/models/calc", None, 200, 200),
        ("POST", "/v1/chat/completions", lambda: chat_body("hi"), 200, 200),
        ("GET", "/api/agents", None, 200, 200),
        ("GET", "/api/agents/calc", None, 200, 200),
        ("GET", "/api/agents/calc/sessions", None, 200, 200),
        ("GET", f"/api/sessions/{session}", None, 200, 200),
        ("POST", "/api/agents/calc/chat", lambda: {"message": "hi"}, 200, 200),
        ("POST", "/api/agents", lambda: {"name": f"n{uuid.uuid4().hex[:8]}"}, 403, 201),
        ("PATCH", "/api/agents/calc", lambda: {"description": "adds"}, 403, 200),
        ("DELETE", lambda: f"/api/agents/{throwaway_agent()}", None, 403, 200),
        ("GET", "/api/keys", None, 403, 200),
        ("POST", "/api/keys", lambda: {"agent": "calc", "name": "k"}, 403, 201),
        ("DELETE", lambda: f"/api/keys/{throwaway_key()}", None, 403, 200),
    ]


def expected(who: str, own: int, admin: int, path: str, method: str) -> int:
    if who in ("none", "malformed", "unknown", "revoked"):
        return 401
    if who == "admin":
        return admin
    if who == "other":
        # listings are filtered to the key's agent; calc's own resources are forbidden
        listing = method == "GET" and path in ("/v1/models", "/api/agents")
        return 200 if listing else 403
    return own


def test_auth_matrix_on_every_endpoint(served, http):
    checked = 0
    for method, path, body, own, admin in endpoints(served, http):
        for who in WHO:
            headers = {} if who == "none" else served.headers(who)
            url = path() if callable(path) else path
            payload = body() if callable(body) else body
            r = http.request(method, url, json=payload, headers=headers)
            want = expected(who, own, admin, url, method)
            assert r.status_code == want, (method, url, who, r.status_code, r.text)
            if want >= 400:
                message = error_of(r)
                for key in served.keys.values():
                    assert key not in r.text and key[:20] not in message
            checked += 1
    assert checked == 14 * len(WHO)


def test_auth_messages_say_what_is_wrong(served, http):
    assert "missing API key" in error_of(http.get("/v1/models"))
    r = http.get("/v1/models", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and "malformed Authorization" in error_of(r)
    r = http.get("/v1/models", headers=served.headers("revoked"))
    assert r.status_code == 401 and "unknown or revoked" in error_of(r)
    r = http.get("/api/keys", headers=served.headers("calc"))
    assert r.status_code == 403 and "admin key" in error_of(r)


def test_agent_key_sees_only_its_agent(served, http):
    models = http.get("/v1/models", headers=served.headers("calc")).json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["calc"]
    agents = http.get("/api/agents", headers=served.headers("other")).json()
    assert [a["name"] for a in agents] == ["other"]
    every = [m["id"] for m in http.get("/v1/models", headers=served.headers("admin"))
             .json()["data"]]
    assert {"calc", "other", "slow"} <= set(every)


def test_revoking_a_key_over_http_stops_it_at_once(served, http):
    admin = served.headers("admin")
    new = http.post("/api/keys", json={"agent": "calc", "name": "short-lived"}, headers=admin)
    assert new.status_code == 201 and new.headers["cache-control"] == "no-store"
    key = new.json()["key"]
    assert http.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    listed = http.get("/api/keys", headers=admin).text
    assert key not in listed and new.json()["prefix"] in listed
    assert http.delete(f"/api/keys/{new.json()['id']}", headers=admin).json()["active"] is False
    assert http.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_last_used_is_written_at_most_once_a_minute(served, http):
    admin = served.headers("admin")
    new = http.post("/api/keys", json={"agent": "other", "name": "counted"}, headers=admin)
    key, key_id = new.json()["key"], new.json()["id"]
    for _ in range(3):
        http.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    first = [k for k in served.store.keys("other") if str(k.id) == key_id][0].last_used_at
    assert first is not None
    for _ in range(3):
        http.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    again = [k for k in served.store.keys("other") if str(k.id) == key_id][0].last_used_at
    assert again == first  # read on every request, written once


# -- the OpenAI-compatible endpoint ------------------------------------------------------
def test_completion_runs_the_agent_with_its_tools_and_stores_the_turn(served, http):
    r = http.post("/v1/chat/completions", json=chat_body(), headers=served.headers("calc"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "calc"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "add returned 5."}
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    session = r.headers["X-Agentnb-Session"]
    stored = http.get(f"/api/sessions/{session}", headers=served.headers("calc")).json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant", "tool", "assistant"]
    call = stored["messages"][1]["tool_calls"][0]
    assert (call["tool_name"], call["input_args"], call["output"], call["status"]) == (
        "add", {"a": 2, "b": 3}, "5", "success")
    assert stored["attrs"]["source"] == "http"
    assert stored["attrs"]["key_id"] == served.ids["calc"]


def test_session_header_continues_a_session(served, http):
    h = served.headers("calc")
    first = http.post("/v1/chat/completions", json=chat_body("my number is 7"), headers=h)
    session = first.headers["X-Agentnb-Session"]
    # only the trailing user message is taken when the header names the session
    body = {"model": "calc", "messages": [{"role": "user", "content": "ignored"},
                                          {"role": "assistant", "content": "ignored too"},
                                          {"role": "user", "content": "and add(a=1, b=1)"}]}
    second = http.post("/v1/chat/completions", json=body,
                       headers={**h, "X-Agentnb-Session": session})
    assert second.status_code == 200 and second.headers["X-Agentnb-Session"] == session
    users = [m.content for m in served.store.history(session) if m.role == "user"]
    assert users == ["my number is 7", "and add(a=1, b=1)"]
    # another agent's session, or none at all: 404
    other = http.post("/v1/chat/completions", json=chat_body("hi", "other"),
                      headers=served.headers("other")).headers["X-Agentnb-Session"]
    r = http.post("/v1/chat/completions", json=chat_body("x"),
                  headers={**h, "X-Agentnb-Session": other})
    assert r.status_code == 404 and "of agent 'calc'" in error_of(r)
    r = http.post("/v1/chat/completions", json=chat_body("x"),
                  headers={**h, "X-Agentnb-Session": str(uuid.uuid4())})
    assert r.status_code == 404


def test_full_conversation_continues_the_matching_session(served, http):
    h = served.headers("calc")
    first = http.post("/v1/chat/completions", json=chat_body("remember the word kiwi"),
                      headers=h)
    session = first.headers["X-Agentnb-Session"]
    answer = first.json()["choices"][0]["message"]["content"]
    convo = [{"role": "user", "content": "remember the word kiwi"},
             {"role": "assistant", "content": answer},
             {"role": "user", "content": "which word?"}]
    second = http.post("/v1/chat/completions", json={"model": "calc", "messages": convo},
                       headers=h)
    assert second.headers["X-Agentnb-Session"] == session
    convo += [{"role": "assistant", "content": second.json()["choices"][0]["message"]["content"]},
              {"role": "user", "content": "thanks"}]
    third = http.post("/v1/chat/completions", json={"model": "calc", "messages": convo},
                      headers=h)
    assert third.headers["X-Agentnb-Session"] == session
    assert served.store.session_summary(session).turns == 3
    # a conversation the store has not seen: a new session
    convo[1]["content"] = "something else"
    fourth = http.post("/v1/chat/completions", json={"model": "calc", "messages": convo},
                       headers=h)
    assert fourth.headers["X-Agentnb-Session"] != session
    # a single message always starts a new session
    fifth = http.post("/v1/chat/completions", json=chat_body("remember the word kiwi"),
                      headers=h)
    assert fifth.headers["X-Agentnb-Session"] not in (session, first.headers.get("x"))


def sse_events(text: str) -> list:
    return [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]


def test_streaming_chunks_and_the_usage_chunk(served, http):
    body = chat_body(stream=True, stream_options={"include_usage": True})
    with http.stream("POST", "/v1/chat/completions", json=body,
                     headers=served.headers("calc")) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        session = r.headers["X-Agentnb-Session"]
        data = sse_events(r.read().decode())
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "add returned 5."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert served.store.history(session)[-1].content == "add returned 5."


def test_unsupported_fields_are_400_never_ignored(served, http):
    h = served.headers("calc")
    cases = [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "client-side tools"),
        ({"n": 2}, "n > 1"),
        ({"top_k": 3}, "unsupported field 'top_k'"),
        ({"temperature": 5}, "temperature"),
    ]
    for extra, said in cases:
        r = http.post("/v1/chat/completions", json=chat_body(**extra), headers=h)
        assert r.status_code == 400 and said in error_of(r), (extra, r.text)
    image = {"model": "calc", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}
    r = http.post("/v1/chat/completions", json=image, headers=h)
    assert r.status_code == 400 and "'image_url' content is not supported" in error_of(r)
    system = {"model": "calc", "messages": [{"role": "system", "content": "be terse"},
                                            {"role": "user", "content": "hi"}]}
    r = http.post("/v1/chat/completions", json=system, headers=h)
    assert r.status_code == 400 and "own system prompt" in error_of(r)
    last = {"model": "calc", "messages": [{"role": "user", "content": "hi"},
                                          {"role": "assistant", "content": "hello"}]}
    assert http.post("/v1/chat/completions", json=last, headers=h).status_code == 400
    r = http.post("/v1/chat/completions", content=b"{not json", headers={
        **h, "Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in error_of(r)
    r = http.post("/v1/chat/completions", json={"model": "calc"}, headers=h)
    assert r.status_code == 400 and error_of(r).startswith("messages:")


def test_temperature_and_max_tokens_pass_through(served, http):
    body = chat_body("Tell me a story in 300 words", temperature=0.2, max_tokens=5)
    r = http.post("/v1/chat/completions", json=body, headers=served.headers("calc"))
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["completion_tokens"] == 5


# -- REST ----------------------------------------------------------------------------
def test_rest_chat_and_its_event_stream(served, http):
    h = served.headers("calc")
    r = http.post("/api/agents/calc/chat", json={"message": "Please add(a=4, b=5)"}, headers=h)
    reply = r.json()
    assert r.status_code == 200 and reply["text"] == "add returned 9."
    assert [(c["tool_name"], c["output"]) for c in reply["tool_calls"]] == [("add", "9")]
    assert reply["usage"]["input_tokens"] > 0 and reply["session_id"]
    again = http.post("/api/agents/calc/chat", json={"message": "and again",
                                                      "session": reply["session_id"]},
                      headers=h).json()
    assert again["session_id"] == reply["session_id"]
    with http.stream("POST", "/api/agents/calc/chat?stream=true",
                     json={"message": "Please add(a=1, b=2)"}, headers=h) as s:
        text = s.read().decode()
    kinds = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("event: ")]
    assert kinds[0] == "turn_started" and kinds[-1] == "turn_finished"
    assert "tool_call_started" in kinds and "tool_call_finished" in kinds and "token" in kinds
    final = json.loads(sse_events(text)[-1])
    assert final["text"] == "add returned 3." and final["status"] == "complete"
    sessions = http.get("/api/agents/calc/sessions", headers=h).json()
    assert reply["session_id"] in [s["id"] for s in sessions]


def test_admin_creates_updates_and_deletes_agents(served, http):
    admin = served.headers("admin")
    r = http.post("/api/agents", json={"name": "helper", "model": "offline",
                                       "system": "Be brief.", "settings": {"temperature": 0}},
                  headers=admin)
    assert r.status_code == 201 and r.json()["config"]["system"] == "Be brief."
    r = http.post("/api/agents", json={"name": "helper"}, headers=admin)
    assert r.status_code == 409 and "helper" in error_of(r)
    r = http.patch("/api/agents/helper", json={"name": "helper2", "set": {"system": "Hi."}},
                   headers=admin)
    assert r.status_code == 200 and r.json()["name"] == "helper2"
    r = http.patch("/api/agents/helper2", json={"set": {"no_such_key": 1}}, headers=admin)
    assert r.status_code == 400
    r = http.post("/api/agents", json={"name": "bad name!"}, headers=admin)
    assert r.status_code == 400
    r = http.delete("/api/agents/helper2", headers=admin)
    assert r.status_code == 200 and r.json()["deleted"] == "helper2"
    r = http.get("/api/agents/helper2", headers=admin)
    assert r.status_code == 404 and "helper2" in error_of(r)


# -- limits and failures --------------------------------------------------------------
def test_big_bodies_get_413(served, http):
    h = served.headers("calc")
    big = chat_body("x" * 1_100_000)
    r = http.post("/v1/chat/completions", json=big, headers=h)
    assert r.status_code == 413 and "1,000,000 bytes" in error_of(r)

    def chunks():  # no Content-Length: counted as it arrives
        payload = json.dumps(big).encode()
        for i in range(0, len(payload), 65536):
            yield payload[i:i + 65536]

    r = http.post("/v1/chat/completions", content=chunks(),
                  headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 413, r.text


def test_health_needs_no_key(served, http):
    r = http.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["store"] == "reachable"
    assert body["schema_revision"] == body["schema_head"] == "0003"
    assert body["version"] == agentnb.__version__


def test_unknown_routes_and_methods_are_one_line(served, http):
    r = http.get("/v2/nothing")
    assert r.status_code == 404 and "no endpoint" in error_of(r)
    r = http.put("/v1/models", headers=served.headers("calc"))
    assert r.status_code == 405 and error_of(r)


def test_openapi_document_and_docs(served, http):
    doc = http.get("/openapi.json").json()
    assert "/v1/chat/completions" in doc["paths"] and "/api/agents/{name}/chat" in doc["paths"]
    assert http.get("/docs").status_code == 200


def test_model_failure_is_502_and_the_turn_is_stored(served, http, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    admin = served.headers("admin")
    http.post("/api/agents", json={"name": "broken", "model": "openai:gpt-x", "settings": {
        "base_url": "http://127.0.0.1:9/v1", "max_retries": 0, "timeout": 5}}, headers=admin)
    r = http.post("/v1/chat/completions", json=chat_body("hello", "broken"), headers=admin)
    assert r.status_code == 502 and "the agent's turn failed" in error_of(r)
    session = r.headers["X-Agentnb-Session"]
    assert [m.status for m in served.store.history(session)][-1] == "error"
    r = http.post("/api/agents/broken/chat", json={"message": "hello"}, headers=admin)
    assert r.status_code == 502
    # streamed: the error arrives as an error event, the turn stored the same way
    with http.stream("POST", "/v1/chat/completions", headers=admin,
                     json=chat_body("hello", "broken", stream=True)) as s:
        data = sse_events(s.read().decode())
    assert "error" in json.loads(data[-1])


def test_client_disconnect_mid_stream_stores_an_interrupted_turn(served):
    h = served.headers("admin")
    body = chat_body("Tell me a story in 2000 words", "slow", stream=True)
    with httpx.Client(base_url=served.url, timeout=60) as client:
        with client.stream("POST", "/v1/chat/completions", json=body, headers=h) as r:
            session = r.headers["X-Agentnb-Session"]
            got = 0
            for line in r.iter_lines():
                if line.startswith("data: "):
                    got += 1
                if got >= 5:
                    break  # the client goes away mid-answer
    import time

    deadline = time.monotonic() + 60
    while True:  # the server notices the disconnect and stores what was produced
        messages = served.store.history(session)
        if messages and messages[-1].role == "assistant" and messages[-1].status != "complete":
            break
        assert time.monotonic() < deadline, [(m.role, m.status) for m in messages]
        time.sleep(0.05)
    assert messages[-1].status == "interrupted"
    assert 0 < len(messages[-1].content.split()) < 2000


def test_store_busy_is_503_with_retry_after(tmp_path):
    """Another process holds the DuckDB file longer than the lock timeout: 503, Retry-After."""
    import subprocess
    import sys
    import textwrap

    url = f"duckdb:///{tmp_path}/busy.duckdb"
    store = setup_store(url)
    keys, _ = make_keys(store)
    store.close()
    busy = agentnb.connect(url, lock_timeout=0.3, idle_release=0.05)
    server = BackgroundServer(agentnb.serve.app(busy), "127.0.0.1", 0).start()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(tmp_path / 'busy.duckdb')!r})
        print("held", flush=True)
        sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = httpx.get(server.url + "/v1/models", timeout=60,
                      headers={"Authorization": f"Bearer {keys['calc']}"})
        assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
        assert "busy" in error_of(r)
        health = httpx.get(server.url + "/health", timeout=60)
        assert health.status_code == 503 and health.json()["store"] == "unreachable"
    finally:
        holder.communicate("\n", timeout=30)
        server.stop()
        busy.close()


def test_served_agents_can_be_limited(tmp_path):
    store = setup_store(f"duckdb:///{tmp_path}/some.duckdb")
    keys, _ = make_keys(store)
    server = BackgroundServer(agentnb.serve.app(store, agents=["calc"]), "127.0.0.1", 0).start()
    try:
        h = {"Authorization": f"Bearer {keys['admin']}"}
        models = httpx.get(server.url + "/v1/models", headers=h).json()["data"]
        assert [m["id"] for m in models] == ["calc"]
        r = httpx.post(server.url + "/v1/chat/completions", json=chat_body("hi", "other"),
                       headers=h)
        assert r.status_code == 404 and "not served here" in r.json()["error"]["message"]
    finally:
        server.stop()
        store.close()
