"""API keys: create (shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..errors import UserError
from ..render.results import Notice, SecretNotice, Table
from ..text import short_id
from .base import Args, Context, Flag, Opt, Pos, command
from .views import key_json


class CreateArgs(Args):
    agent: Annotated[str | None, Pos("AGENT", "the agent the key is for (in a notebook: "
                                     "default the current agent)")] = None
    name: Annotated[str, Field(min_length=1, max_length=64),
                    Opt("--name", metavar="N", help="a label for the key")] = "default"
    admin: Annotated[bool, Flag("--admin", help="a key for the whole store (the HTTP API's "
                                "admin endpoints), not for one agent")] = False


@command("keys create", "a new API key for an agent (shown once, stored only as a hash)",
         writes=True)
def create(ctx: Context, args: CreateArgs) -> SecretNotice:
    store = ctx.store
    if args.admin:
        if args.agent is not None:
            raise UserError("an admin key belongs to no agent: give either AGENT or --admin")
        new = store.create_key(None, args.name, admin=True)
        whom = "the whole store (admin)"
        agent_name = None
    else:
        agent_name = ctx.agent(args.agent, command_id="keys create").name
        new = store.create_key(agent_name, args.name)
        whom = f"agent {agent_name!r}"
    record = new.record
    warning = "Copy it now: it is shown only once and agentnb does not store it."
    if ctx.front == "notebook":
        warning += (" It is now in this cell's output; clear the output after copying "
                    "(Edit > Clear Outputs) before you save or share the notebook.")
    return SecretNotice(
        f"new API key {record.name!r} for {whom} (id {short_id(record.id)}):", new.key, warning,
        data={**key_json(record, agent_name), "key": new.key})


class ListArgs(Args):
    agent: Annotated[str | None, Pos("AGENT", "only this agent's keys", also="--agent")] = None


@command("keys list", "API keys: prefix and metadata, never the key")
def list_keys(ctx: Context, args: ListArgs) -> Table:
    store = ctx.store
    keys = store.keys(args.agent)
    names = {a.id: a.name for a in store.agents()} if keys else {}
    return Table(
        ["id", "agent", "name", "scope", "prefix", "status", "created (UTC)", "last used (UTC)"],
        [[short_id(k.id), names.get(k.agent_id) if k.agent_id else None, k.name, k.scope,
          k.key_prefix + "…", "active" if k.is_active else "revoked", k.created_at,
          k.last_used_at] for k in keys],
        title="API keys",
        empty=f"(no API keys: {ctx.spell('keys create', 'AGENT')})",
        data=[key_json(k, names.get(k.agent_id)) for k in keys],
    )


class RevokeArgs(Args):
    key_id: Annotated[str, Pos("KEY_ID", "key id or a unique prefix of it (see keys list)")]


@command("keys revoke", "deactivate a key (it stops working at once)")
def revoke(ctx: Context, args: RevokeArgs) -> Notice:
    record = ctx.store.revoke_key(args.key_id)
    return Notice(f"revoked API key {record.name!r} ({record.key_prefix}…, id "
                  f"{short_id(record.id)})", "success", data=key_json(record, None))
