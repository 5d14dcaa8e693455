"""A session as Markdown or JSON, for ``export`` in the CLI and the magics."""

from __future__ import annotations

import json
from typing import Literal, Sequence

from .schemas import MessageRecord, SessionRecord, short_id

ExportFormat = Literal["md", "json"]

_ROLE_TITLES = {"user": "User", "assistant": "Assistant", "system": "System", "tool": "Tool"}


def session_to_json(session: SessionRecord, agent_name: str, messages: Sequence[MessageRecord]) -> str:
    """The session and its messages (with tool calls) as indented JSON."""
    payload = {
        "session": session.model_dump(mode="json"),
        "agent": agent_name,
        "messages": [m.model_dump(mode="json") for m in messages],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)


def session_to_markdown(
    session: SessionRecord, agent_name: str, messages: Sequence[MessageRecord]
) -> str:
    """A readable transcript: one heading per message, tool calls as lists."""
    title = session.title or f"Session {short_id(session.id)}"
    lines = [
        f"# {title}",
        "",
        f"- agent: `{agent_name}`",
        f"- session: `{session.id}`",
        f"- started: {session.created_at:%Y-%m-%d %H:%M} UTC",
        "",
    ]
    for m in messages:
        if m.role == "tool":
            continue  # shown with the call that produced it
        heading = _ROLE_TITLES.get(m.role, m.role)
        extra = []
        if m.model:
            extra.append(m.model)
        if m.status != "complete":
            extra.append(m.status)
        lines.append(f"## {heading}" + (f" ({', '.join(extra)})" if extra else ""))
        lines.append("")
        if m.content:
            lines.append(m.content)
            lines.append("")
        for call in m.tool_calls:
            args = ", ".join(f"{k}={v!r}" for k, v in call.input_args.items())
            result = call.output if call.status == "success" else (call.error_message or call.status)
            lines.append(f"- tool `{call.tool_name}({args})` -> {call.status}: {result}")
        if m.tool_calls:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def export_session(
    session: SessionRecord,
    agent_name: str,
    messages: Sequence[MessageRecord],
    fmt: ExportFormat = "md",
) -> str:
    """Markdown (``md``) or JSON (``json``) text of a session."""
    if fmt == "json":
        return session_to_json(session, agent_name, messages)
    return session_to_markdown(session, agent_name, messages)
