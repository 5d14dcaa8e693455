"""Agents: list, show, create, update (``%agent set``), delete, use."""

from __future__ import annotations

from typing import Annotated, Any

from ..agentconfig import UNSET, parse_assignments, setting_value
from ..errors import UserError
from ..render.results import KeyValues, Notice, Stack, Table
from ..text import shorten
from .base import Args, Context, Flag, Opt, Pos, command
from .options import AgentName, ModelSpec, NewAgentName, Yes
from .views import agent_card, agent_json, sessions_table


def _csv(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


@command("agents list", "list the agents of the store", aliases=("list",))
def list_agents(ctx: Context, args: Args) -> Table:
    store = ctx.store
    agents = store.agents()
    counts = store.session_counts() if agents else {}
    current = ctx.state.current()
    mark = ctx.front == "notebook"
    rows = [
        (["*" if current is not None and a.name == current.name else ""] if mark else [])
        + [a.name, a.config.model, a.template, list(a.config.tools) or None,
           counts.get(a.name, 0), shorten(a.description, 50) or None]
        for a in agents
    ]
    n = len(rows)
    return Table(
        ([""] if mark else []) + ["name", "model", "template", "tools", "sessions",
                                  "description"],
        rows,
        title=f"{n} agent{'s' if n != 1 else ''}",
        empty=f"(no agents yet: {ctx.spell('agents create', 'NAME')})",
        data=[agent_json(a) for a in agents],
    )


class ShowArgs(Args):
    name: AgentName = None


@command("agents show", "show an agent: config, sessions, usage and keys", aliases=("show",))
def show(ctx: Context, args: ShowArgs) -> Stack:
    agent = ctx.agent(args.name, command_id="agents show")
    store = ctx.store
    record = agent.refresh().record
    sessions = store.sessions(record.name, limit=5)
    n_sessions = store.session_counts().get(record.name, 0)
    usage = store.usage("agent", agent=record.name)
    keys = store.keys(record.name)
    totals = {"turns": 0, "messages": 0, "input_tokens": 0, "output_tokens": 0,
              "tool_calls": 0}
    for row in usage:
        for key in totals:
            totals[key] += getattr(row, key)
    active = sum(1 for k in keys if k.is_active)
    usage_kv = KeyValues([
        ("sessions", n_sessions),
        ("turns", totals["turns"]),
        ("messages", totals["messages"]),
        ("tokens", f"{totals['input_tokens']:,} in / {totals['output_tokens']:,} out"),
        ("tool calls", totals["tool_calls"]),
        ("api keys", f"{len(keys)} ({active} active)"),
    ], title="usage")
    data = {**agent_json(record), "sessions": n_sessions, "usage": totals,
            "keys": {"total": len(keys), "active": active}}
    shown = min(n_sessions, 5)
    return Stack(
        agent_card(record),
        sessions_table(ctx, sessions, f"sessions ({shown} latest of {n_sessions})",
                       with_agent=False),
        usage_kv,
        data=data,
    )


class CreateArgs(Args):
    name: NewAgentName
    template: Annotated[str | None, Opt("--template", "-t", metavar="T",
                                        help="start from a template (see templates list)")] = None
    model: ModelSpec = None
    system: Annotated[str | None, Opt("--system", "-s", metavar="TEXT",
                                      help="the system prompt (quote it)")] = None
    tools: Annotated[str | None, Opt("--tools", metavar="F,G",
                                     help="tool names, comma separated")] = None
    description: Annotated[str | None, Opt("--description", "-d", metavar="TEXT",
                                           help="what the agent is for")] = None
    exist_ok: Annotated[bool, Flag("--exist-ok", help="if an agent of that name exists, use it "
                                   "as it is instead of failing")] = False


@command("agents create", "create an agent", aliases=("create",), writes=True,
         examples=("{prog} analyst --template data-analyst --model offline",
                   "{prog} calc --system 'You add numbers.' --tools add,mul",
                   "{prog} helper --exist-ok     (a notebook that runs twice)"))
def create(ctx: Context, args: CreateArgs) -> Notice:
    store = ctx.store
    tools = _csv(args.tools)
    existed = store.find_agent(args.name) if args.exist_ok else None
    if tools and ctx.namespace is not None:
        # notebook functions named in --tools become tools of this notebook now;
        # other names may be built-in tools, resolved when the agent runs
        for name in tools:
            fn = ctx.namespace.get(name)
            if callable(fn):
                store.tools.register(fn, name=name)
    agent = store.create_agent(
        args.name, model=args.model or ctx.default_model, system=args.system,
        template=args.template, description=args.description or "", tools=tools,
        exist_ok=args.exist_ok)
    ctx.state.set_current(ctx.agent(agent.name))
    cfg = agent.config
    detail = f"model {cfg.model}"
    if agent.record.template:
        detail += f", template {agent.record.template}"
    if cfg.tools:
        detail += f", tools {', '.join(cfg.tools)}"
    if existed is not None:
        text = f"agent {agent.name!r} exists; using it as it is ({detail})"
    else:
        text = f"created agent {agent.name!r} ({detail})"
    hint = None
    if ctx.front == "notebook":
        hint = ("it is now the current agent: chat with a %%chat cell; change settings with "
                "%agent set key=value")
    return Notice(text, "success", detail=hint,
                  data={**agent_json(agent.record), "created": existed is None})


class UpdateArgs(Args):
    name: Annotated[str | None, Pos("NAME", "the agent (in a notebook: default the current "
                                    "agent)", required_in=("cli",))] = None
    settings: Annotated[list[str], Pos("KEY=VALUE", "settings to change")] = []
    unset: Annotated[list[str], Opt("--unset", metavar="KEY",
                                    help="remove a setting (back to its default); repeatable")] = []


UPDATE_EPILOG = """
keys: name (renames), description, model, system, tools (a,b), memory
(full|window|tokens|summary), memory.window_turns, memory.max_tokens,
memory.keep_turns, max_iterations, tool_timeout, auto_approve, and the model's
own settings (temperature, max_tokens, base_url, api_key_env, ...).
values: text settings (name, description, system, model, base_url) as typed;
numbers, true/false and lists (a,b) as such; other model settings JSON when
they parse, else text. KEY= (empty) removes a setting, as --unset KEY does.
"""


@command("agents update", "change an agent's settings: key=value ...", aliases=("set",),
         epilog=UPDATE_EPILOG,
         examples=("{prog} calc model=offline temperature=0 memory=window",
                   "{prog} calc 'system=You add numbers.' tools=add,mul",
                   "{prog} calc temperature=      (back to the model's default)",
                   "{prog} calc name=calc2"))
def update(ctx: Context, args: UpdateArgs) -> Notice:
    items = list(args.settings)
    name = args.name
    if name is not None and "=" in name:  # %agent set key=value: no NAME, the current agent
        items.insert(0, name)
        name = None
    if not items and not args.unset:
        who = name or "NAME"
        raise UserError(f"nothing to change; type e.g. "
                        f"{ctx.spell('agents update', who + ' model=offline temperature=0')}")
    agent = ctx.agent(name, command_id="agents update")
    changes = parse_assignments(items, args.unset)
    before = agent.name
    record = ctx.store.update_agent(before, **changes)
    agent.record = record
    shown = []
    for key, value in changes.items():
        if key == "name":
            continue
        now = record.description if key == "description" else setting_value(record.config, key)
        shown.append(f"{key} = {now!r}" if value is not UNSET else f"{key} removed")
    parts = []
    if record.name != before:
        parts.append(f"renamed agent {before!r} to {record.name!r}")
    if shown:
        parts.append(f"updated agent {record.name!r}: {', '.join(shown)}")
    return Notice("; ".join(parts) or f"agent {record.name!r} unchanged", "success",
                  data=agent_json(record))


class DeleteArgs(Args):
    name: Annotated[str, Pos("NAME", "the agent to delete")]
    yes: Yes = False


@command("agents delete", "delete an agent with its sessions, messages, tool calls and keys",
         aliases=("delete",))
def delete(ctx: Context, args: DeleteArgs) -> Notice:
    store = ctx.store
    record = store.get_agent(args.name)  # an unknown name is an error first
    if not args.yes:
        n = store.session_counts().get(record.name, 0)
        keys = len(store.keys(record.name))
        question = (f"delete agent {record.name!r} with {n} session{'s' if n != 1 else ''} "
                    f"and {keys} API key{'s' if keys != 1 else ''}?")
        if not ctx.ask(question, f"{question[:-1]}: to confirm, type "
                                 f"{ctx.spell('agents delete', record.name + ' --yes')}"):
            return Notice(f"not deleted: agent {record.name!r}", "warning",
                          data={"deleted": False})
    counts = store.delete_agent(record.name)
    current = ctx.state.current()
    if current is not None and current.id == record.id:
        ctx.state.set_current(None)
    n_sessions, n_messages, n_keys = (counts.get(t, 0) for t in
                                      ("sessions", "messages", "api_keys"))
    return Notice(
        f"deleted agent {record.name!r} ({n_sessions} session{'s' if n_sessions != 1 else ''}, "
        f"{n_messages} message{'s' if n_messages != 1 else ''}, "
        f"{n_keys} key{'s' if n_keys != 1 else ''})",
        "success", data={"deleted": True, "rows": counts})


class UseArgs(Args):
    name: Annotated[str, Pos("NAME", "the agent to chat with")]
    new: Annotated[bool, Flag("--new", help="start a new session instead of continuing")] = False


@command("agents use", "make an agent current (its latest session continues)",
         aliases=("use",), fronts=("notebook",), writes=True)
def use(ctx: Context, args: UseArgs) -> Notice:
    agent = ctx.agent(args.name)
    if args.new:
        session = agent.new_session()
        where = f"new session {session.id.hex[:8]}"
    else:
        session = agent.current_session()
        if session is not None:
            turns = ctx.store.session_summary(session.id).turns
            where = (f"resumed session {session.id.hex[:8]} "
                     f"({turns} turn{'s' if turns != 1 else ''})")
        else:
            where = "a new session starts with the first %%chat"
    ctx.state.set_current(agent)
    return Notice(f"now using {agent.name!r} (model {agent.config.model}); {where}", "success",
                  data={"agent": agent.name,
                        "session": str(agent.session_id) if agent.session_id else None})


__all__: list[Any] = []
