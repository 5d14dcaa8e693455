"""A tiny OpenAI-compatible chat server for tests (stdlib only, 127.0.0.1).

``POST /v1/chat/completions``, plain JSON or ``stream: true`` server-sent
events (with the ``stream_options.include_usage`` usage chunk). Every request is recorded in
``server.requests`` as ``{"path", "headers", "body"}``: ``headers`` is the
request's ``http.client.HTTPMessage`` (case-insensitive:
``headers["Authorization"]``), ``body`` the decoded JSON.

Replies follow the offline model's convention: with ``tools`` in the request
and ``NAME(k=v)`` for one of them in the last user message, a tool call; once
the request carries tool messages after the last user message, a sentence
quoting their results; otherwise :attr:`OpenAIServer.reply_text`.

Use the ``openai_server`` fixture: ``from tests.openai_server import openai_server``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agentnb.models._calls import (
    call_id,
    count_tokens,
    find_tool_calls,
    split_tokens,
    summarize_results,
)

__all__ = ["OpenAIServer", "openai_server"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict)
        )
    return ""


class OpenAIServer:
    """The server; ``url`` is the base URL to give ChatOpenAI (``.../v1``)."""

    reply_text = "Hello from the local OpenAI-compatible test server."

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- control

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAIServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with server._lock:
                    server.requests.append(
                        {"path": self.path, "headers": self.headers, "body": body}
                    )
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                answer = server.answer(body)
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()
                    for event in server.stream_events(body, answer):
                        self.wfile.write(f"data: {event}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                else:
                    self._send_json(200, server.completion(body, answer))

            def _send_json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="openai-test-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- replies

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"text": str, "tool_calls": [...], "prompt_tokens": int}`` for a request."""
        messages = body.get("messages") or []
        prompt_tokens = sum(1 + count_tokens(_text(m.get("content"))) for m in messages)
        last_user = max(
            (i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1
        )
        user_text = _text(messages[last_user].get("content")) if last_user >= 0 else ""
        after = messages[last_user + 1 :]
        results = [m for m in after if m.get("role") == "tool"]
        if results:
            names = {
                call.get("id"): call.get("function", {}).get("name", "tool")
                for m in after
                for call in (m.get("tool_calls") or [])
            }
            items = [
                (
                    m.get("name") or names.get(m.get("tool_call_id"), "tool"),
                    _text(m.get("content")),
                    False,
                )
                for m in results
            ]
            return {
                "text": summarize_results(items),
                "tool_calls": [],
                "prompt_tokens": prompt_tokens,
            }
        schemas = {
            t["function"]["name"]: t["function"].get("parameters")
            for t in body.get("tools") or []
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        }
        calls = find_tool_calls(user_text, schemas) if schemas else []
        turn = sum(1 for m in messages if m.get("role") == "user")
        tool_calls = [
            {
                "id": call_id(c["name"], c["args"], i, turn),
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c["args"])},
            }
            for i, c in enumerate(calls)
        ]
        text = "" if tool_calls else self.reply_text
        return {"text": text, "tool_calls": tool_calls, "prompt_tokens": prompt_tokens}

    @staticmethod
    def _usage(answer: dict[str, Any]) -> dict[str, int]:
        completion = count_tokens(answer["text"]) + sum(
            count_tokens(c["function"]["name"]) + count_tokens(c["function"]["arguments"])
            for c in answer["tool_calls"]
        )
        prompt = answer["prompt_tokens"]
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def completion(self, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer["text"] or None}
        if answer["tool_calls"]:
            message["tool_calls"] = answer["tool_calls"]
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "test-model"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if answer["tool_calls"] else "stop",
                }
            ],
            "usage": self._usage(answer),
        }

    def stream_events(self, body: dict[str, Any], answer: dict[str, Any]) -> Iterator[str]:
        model = body.get("model", "test-model")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            return json.dumps(
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
            )

        yield chunk({"role": "assistant", "content": ""})
        for token in split_tokens(answer["text"]):
            yield chunk({"content": token})
        for index, call in enumerate(answer["tool_calls"]):
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["function"]["name"], "arguments": ""},
                        }
                    ]
                }
            )
            yield chunk(
                {
                    "tool_calls": [
                        {"index": index, "function": {"arguments": call["function"]["arguments"]}}
                    ]
                }
            )
        yield chunk({}, "tool_calls" if answer["tool_calls"] else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            yield json.dumps(
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": model,
                    "choices": [],
                    "usage": self._usage(answer),
                }
            )


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A running :class:`OpenAIServer`; stopped after the test."""
    with OpenAIServer() as server:
        yield server
