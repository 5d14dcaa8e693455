"""How records are shown: one card, table and JSON shape per kind of record, for every command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..render.results import KeyValues, Table
from ..text import shorten, short_id

if TYPE_CHECKING:  # pragma: no cover
    from ..schemas import AgentRecord, ApiKeyRecord, SessionSummary
    from .base import Context


def agent_json(record: "AgentRecord") -> dict[str, Any]:
    """An agent as ``--json`` and HTTP show it."""
    return {
        "id": str(record.id),
        "name": record.name,
        "description": record.description,
        "template": record.template,
        "model": record.config.model,
        "config": record.config.model_dump(mode="json"),
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }


def memory_text(record: "AgentRecord") -> str:
    mem = record.config.memory
    detail = {
        "window": f"last {mem.window_turns} turns",
        "tokens": f"{mem.max_tokens:,} tokens",
        "summary": f"summary + last {mem.keep_turns} turns",
    }.get(mem.strategy)
    return f"{mem.strategy} ({detail})" if detail else mem.strategy


def agent_items(record: "AgentRecord") -> list[tuple[str, Any]]:
    """An agent's config as labelled values (the card of show, create, update)."""
    cfg = record.config
    items: list[tuple[str, Any]] = [
        ("name", record.name),
        ("description", record.description or None),
        ("model", cfg.model),
    ]
    if cfg.model_kwargs:
        items.append(("model settings", ", ".join(f"{k}={v!r}"
                                                  for k, v in cfg.model_kwargs.items())))
    items += [
        ("template", record.template),
        ("system", cfg.system or None),
        ("tools", list(cfg.tools) or None),
        ("memory", memory_text(record)),
        ("max iterations", cfg.max_iterations),
        ("tool timeout", f"{cfg.tool_timeout:g} s"),
        ("auto approve", cfg.auto_approve),
        ("created (UTC)", record.created_at),
        ("updated (UTC)", record.updated_at),
    ]
    return items


def agent_card(record: "AgentRecord", title: str | None = None) -> KeyValues:
    return KeyValues(agent_items(record), title=title or f"agent {record.name}",
                     data=agent_json(record))


def session_json(s: "SessionSummary") -> dict[str, Any]:
    """A session (with its figures) as ``--json`` and HTTP show it."""
    return {
        "id": str(s.session.id),
        "agent": s.agent_name,
        "title": s.session.title,
        "user": s.session.user_id,
        "messages": s.messages,
        "turns": s.turns,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "first_message": s.first_message,
        "attrs": s.session.attrs,
        "created_at": s.session.created_at.isoformat(),
        "updated_at": s.session.updated_at.isoformat(),
        "last_activity": s.last_activity.isoformat() if s.last_activity else None,
    }


def sessions_table(ctx: "Context", summaries: Sequence["SessionSummary"], title: str | None,
                   *, with_agent: bool) -> Table:
    current = ctx.state.current()
    current_id = current.session_id if current is not None else None
    mark = ctx.front == "notebook"
    # A store shared by a team: say whose each session is (one user's store: no column).
    with_user = len({s.session.user_id for s in summaries}) > 1
    columns = ([""] if mark else []) + ["id"] + (["agent"] if with_agent else []) + (
        ["user"] if with_user else []) + [
        "title / first message", "turns", "tokens", "last activity (UTC)"]
    rows = []
    for s in summaries:
        rows.append(
            (["*" if s.session.id == current_id else ""] if mark else [])
            + [short_id(s.session.id)]
            + ([s.agent_name] if with_agent else [])
            + ([s.session.user_id or ""] if with_user else [])
            + [shorten(s.session.title or s.first_message or "", 50), s.turns,
               s.input_tokens + s.output_tokens, s.last_activity or s.session.updated_at])
    empty = ("(no sessions yet: a session starts with the first %%chat)"
             if ctx.front == "notebook" else
             f"(no sessions yet: one starts with {ctx.spell('chat', 'AGENT MESSAGE')})")
    return Table(columns, rows, title=title, empty=empty,
                 data=[session_json(s) for s in summaries])


def key_json(key: "ApiKeyRecord", agent: str | None) -> dict[str, Any]:
    return {
        "id": str(key.id), "prefix": key.key_prefix, "name": key.name, "scope": key.scope,
        "agent": agent, "agent_id": str(key.agent_id) if key.agent_id else None,
        "active": key.is_active, "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
    }


__all__ = ["agent_card", "agent_items", "agent_json", "key_json", "memory_text",
           "session_json", "sessions_table"]
