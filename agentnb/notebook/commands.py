"""The ``%agent`` subcommands: one function each, one dispatcher.

A subcommand is declared with :func:`command`: its name, a one-line summary,
its arguments (argparse, built on first use by a :class:`MagicArgumentParser`)
and a function ``run(nb, args)`` where ``nb`` is the shell's
:class:`~agentnb.notebook.magics.AgentMagics`. The function returns what the
cell shows (a :mod:`~agentnb.notebook.render` object, a DataFrame, text) and
raises ``UsageError`` for anything the user should type differently;
:class:`~agentnb.errors.UserError` from the store becomes a ``UsageError``
in :func:`dispatch`.

To add a subcommand (``panel``, say) write a function here decorated with
``@command(...)`` that imports its heavy module inside the function.
"""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from IPython.core.error import UsageError

from .magics import NO_AGENT_HINT, check_model_spec
from .parsing import MagicArgumentParser, close_match, split_line, user_errors, wants_help
from .render import (
    BarChart,
    KeyValues,
    Notice,
    SecretNotice,
    Stack,
    Table,
    TextResult,
    Transcript,
    shorten,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..schemas import AgentRecord
    from .magics import AgentMagics

PROG = "%agent"


# -- the registry ------------------------------------------------------------------
@dataclass
class Command:
    """One ``%agent`` subcommand."""

    name: str
    summary: str
    run: Callable[["AgentMagics", argparse.Namespace], Any]
    arguments: Sequence[tuple[tuple, dict]] = ()
    #: The rest of the line is passed as ``args.text`` unparsed (``sql``).
    raw: bool = False
    epilog: str = ""
    _parser: MagicArgumentParser | None = field(default=None, repr=False)

    @property
    def parser(self) -> MagicArgumentParser:
        if self._parser is None:
            parser = MagicArgumentParser(
                f"{PROG} {self.name}",
                description=self.summary,
                epilog=textwrap.dedent(self.epilog).strip() or None,
            )
            for args, kwargs in self.arguments:
                parser.add_argument(*args, **kwargs)
            self._parser = parser
        return self._parser

    def usage(self) -> str:
        if self.raw:
            return f"{PROG} {self.name} {self.arguments[0][1].get('metavar', 'TEXT')}"
        return self.parser.format_usage().removeprefix("usage: ").strip()

    def help(self) -> str:
        if self.raw:
            epilog = textwrap.dedent(self.epilog).strip()
            return f"usage: {self.usage()}\n\n{self.summary}\n\n{epilog}\n"
        return self.parser.format_help()


COMMANDS: dict[str, Command] = {}


def arg(*names: str, **kwargs: Any) -> tuple[tuple, dict]:
    """An argument of a subcommand, as ``parser.add_argument`` takes it."""
    return names, kwargs


def command(
    name: str, summary: str, *arguments: tuple[tuple, dict], raw: bool = False, epilog: str = ""
) -> Callable:
    """Declare a subcommand of ``%agent``."""

    def register(fn: Callable) -> Callable:
        COMMANDS[name] = Command(name, summary, fn, arguments, raw=raw, epilog=epilog)
        return fn

    return register


def dispatch(nb: "AgentMagics", line: str) -> Any:
    """Run one ``%agent`` line: pick the subcommand, parse, run, map user errors."""
    stripped = line.strip()
    if not stripped:
        with user_errors():
            return status(nb, argparse.Namespace())
    name, rest = (stripped.split(None, 1) + [""])[:2]
    if name in ("-h", "--help"):
        name, rest = "help", ""
    cmd = COMMANDS.get(name)
    if cmd is None:
        hint = close_match(name, list(COMMANDS))
        suggestion = f"did you mean %agent {hint}? " if hint else ""
        raise UsageError(
            f"unknown subcommand {name!r}; {suggestion}"
            f"choose one of: {', '.join(COMMANDS)} (see %agent help)"
        )
    if cmd.raw:
        text = rest.strip()
        if text in ("-h", "--help"):
            print(cmd.help())
            return None
        args = argparse.Namespace(text=text)
    else:
        tokens = split_line(rest, f"{PROG} {name}")
        if wants_help(tokens):
            print(cmd.help())
            return None
        args = cmd.parser.parse_line(tokens)
    nb._apply_default_agent()
    with user_errors():
        return cmd.run(nb, args)


# -- helpers ----------------------------------------------------------------------
def _short(value: Any) -> str:
    from ..schemas import short_id

    return short_id(value)


def _csv(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _model_of(record: "AgentRecord") -> str:
    return record.config.model


def _memory_text(record: "AgentRecord") -> str:
    mem = record.config.memory
    detail = {
        "window": f"last {mem.window_turns} turns",
        "tokens": f"{mem.max_tokens} tokens",
        "summary": f"summary + last {mem.keep_turns} turns",
    }.get(mem.strategy)
    return f"{mem.strategy} ({detail})" if detail else mem.strategy


def _agent_card(record: "AgentRecord", title: str | None = None) -> KeyValues:
    cfg = record.config
    items: list[tuple[str, Any]] = [
        ("name", record.name),
        ("description", record.description or ""),
        ("model", cfg.model),
    ]
    if cfg.model_kwargs:
        items.append(
            ("model settings", ", ".join(f"{k}={v!r}" for k, v in cfg.model_kwargs.items()))
        )
    items += [
        ("template", record.template or ""),
        ("system", cfg.system or ""),
        ("tools", ", ".join(cfg.tools) or "(none)"),
        ("memory", _memory_text(record)),
        ("max iterations", cfg.max_iterations),
        ("tool timeout", f"{cfg.tool_timeout:g} s"),
        ("auto approve", cfg.auto_approve),
        ("created", record.created_at),
        ("updated", record.updated_at),
    ]
    return KeyValues(items, title=title or f"agent {record.name}")


def _sessions_table(nb: "AgentMagics", summaries: Sequence[Any], title: str | None, *,
                    with_agent: bool) -> Table:
    current = nb._current_session
    columns = ["", "id"] + (["agent"] if with_agent else []) + [
        "title / first message", "turns", "tokens", "last activity"
    ]
    rows = []
    for s in summaries:
        rows.append(
            ["*" if s.session.id == current else "", _short(s.session.id)]
            + ([s.agent_name] if with_agent else [])
            + [
                shorten(s.session.title or s.first_message or "", 50),
                s.turns,
                s.input_tokens + s.output_tokens,
                s.last_activity or s.session.updated_at,
            ]
        )
    return Table(columns, rows, title=title,
                 empty="(no sessions yet: a session starts with the first %%chat)")


def _session_counts(nb: "AgentMagics") -> dict[str, int]:
    """Sessions per agent name, counted by the database (no per-session statistics)."""
    _, rows = nb.store.sql_rows(
        "select a.name, count(*) from sessions s join agents a on a.id = s.agent_id "
        "group by a.name"
    )
    return {name: int(n) for name, n in rows}


def _confirm_hint(cmd: str) -> str:
    return f"to confirm, type: %agent {cmd} --yes"


# -- status and listings ------------------------------------------------------------
def status(nb: "AgentMagics", args: argparse.Namespace) -> KeyValues:
    """``%agent`` with no arguments: the store, the current agent and session."""
    from ..config import mask_url

    store = nb.store
    record = nb.current_record()
    items: list[tuple[str, Any]] = [("store", mask_url(store.url))]
    if record is None:
        items.append(("agent", "(none) - %agent create NAME, or %agent use NAME"))
    else:
        items.append(("agent", record.name))
        items.append(("model", _model_of(record)))
        session = nb._current_session
        items.append(
            ("session", _short(session) if session else "(none yet - starts with the first %%chat)")
        )
        items.append(("tools", ", ".join(record.config.tools) or "(none)"))
    if nb._store is not None and nb._store._tools is not None:
        names = _registry_names(nb._store.tools)
        items.append(("notebook tools", ", ".join(names) or "(none)"))
    return KeyValues(items, title="agentnb")


@command("help", "show the subcommands, or the help of one", arg("subcommand", nargs="?"))
def help_(nb: "AgentMagics", args: argparse.Namespace) -> None:
    if args.subcommand:
        cmd = COMMANDS.get(args.subcommand)
        if cmd is None:
            hint = close_match(args.subcommand, list(COMMANDS))
            raise UsageError(
                f"no subcommand {args.subcommand!r}"
                + (f"; did you mean {hint!r}?" if hint
                   else f"; choose one of: {', '.join(COMMANDS)}")
            )
        print(cmd.help())
        return None
    width = max(len(n) for n in COMMANDS)
    lines = [
        "%agent SUBCOMMAND [ARGS]  - agents, sessions, tools and the agentnb store",
        "",
        f"  {'(none)'.ljust(width)}  status: store, current agent and session",
    ]
    lines += [f"  {name.ljust(width)}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    lines += ["", "%agent SUBCOMMAND --help shows a subcommand's arguments.",
              "%%chat [NAME] (a cell magic) sends the cell to an agent: %%chat --help."]
    print("\n".join(lines))
    return None


@command("list", "list the agents of the store")
def list_agents(nb: "AgentMagics", args: argparse.Namespace) -> Table:
    store = nb.store
    agents = store.agents()
    counts = _session_counts(nb)
    current = nb.current_agent
    rows = [
        [
            "*" if a.name == current else "",
            a.name,
            a.config.model,
            a.template or "",
            ", ".join(a.config.tools),
            counts.get(a.name, 0),
            shorten(a.description, 50),
        ]
        for a in agents
    ]
    return Table(
        ["", "name", "model", "template", "tools", "sessions", "description"],
        rows,
        title=f"{len(rows)} agent{'s' if len(rows) != 1 else ''}",
        empty="(no agents yet: %agent create NAME)",
    )


@command("templates", "list the agent templates (built-in and your own)")
def templates(nb: "AgentMagics", args: argparse.Namespace) -> Table:
    from ..templates import list_templates

    rows = [
        [t.name, t.config.model, ", ".join(t.config.tools), t.config.memory.strategy,
         shorten(t.description, 60), t.source]
        for t in list_templates(nb.store.settings)
    ]
    return Table(["name", "model", "tools", "memory", "description", "source"], rows,
                 title="templates (use: %agent create NAME --template T)")


@command("models", "list model providers: installed or not, key variable set or not")
def models(nb: "AgentMagics", args: argparse.Namespace) -> Table:
    try:
        from ..models import list_providers
    except ImportError:
        raise UsageError("model providers are not available in this install of agentnb") from None
    rows = []
    for p in list_providers():
        key_env = getattr(p, "key_env", None) or ""
        rows.append(
            [
                p.name,
                getattr(p, "package", "") or "",
                "yes" if getattr(p, "installed", False) else "no",
                key_env or "-",
                ("set" if getattr(p, "key_set", False) else "not set") if key_env else "-",
                "" if getattr(p, "installed", False) or not getattr(p, "extra", None)
                else f"pip install 'agentnb[{p.extra}]'",
            ]
        )
    # Say whether a key is set, never what it is.
    return Table(["provider", "package", "installed", "key variable", "key", "install"], rows,
                 title="model providers (spec: provider:model)")


# -- agents -----------------------------------------------------------------------
@command(
    "create",
    "create an agent and make it current",
    arg("name", metavar="NAME"),
    arg("--template", "-t", metavar="T", help="start from a template (see %%agent templates)"),
    arg("--model", "-m", metavar="SPEC", help="model spec, e.g. offline or openai:gpt-4o-mini"),
    arg("--system", "-s", metavar="TEXT", help="system prompt (quote it)"),
    arg("--tools", metavar="F,G", help="tool names, comma separated"),
    arg("--description", "-d", metavar="TEXT", help="what the agent is for"),
    epilog="""
    example: %agent create analyst --template data-analyst --model offline
    """,
)
def create(nb: "AgentMagics", args: argparse.Namespace) -> Notice:
    tools = _csv(args.tools) if args.tools is not None else None
    # Notebook functions named in --tools become tools of this notebook now;
    # other names may be built-in tools, resolved when the agent runs.
    callables = [(n, nb.shell.user_ns[n]) for n in tools or [] if callable(nb.shell.user_ns.get(n))]
    for _, fn in callables:
        _register(nb, fn)
    model = args.model or nb.default_model or None
    if model:
        check_model_spec(model)
    agent = nb.store.create_agent(
        args.name,
        model=model,
        system=args.system,
        template=args.template,
        description=args.description or "",
        tools=tools,
    )
    nb.set_current(agent.name, None)
    cfg = agent.config
    detail = f"model {cfg.model}"
    if agent.record.template:
        detail += f", template {agent.record.template}"
    if cfg.tools:
        detail += f", tools {', '.join(cfg.tools)}"
    return Notice(
        f"created agent {agent.name!r} ({detail}); it is now the current agent",
        "success",
        detail="chat with a %%chat cell; change settings with %agent set key=value",
    )


@command("use", "make an agent current (its latest session continues)",
         arg("name", metavar="NAME"),
         arg("--new", action="store_true", help="start a new session instead of resuming"))
def use(nb: "AgentMagics", args: argparse.Namespace) -> Notice:
    agent, session = nb.use_agent(args.name, resume=not args.new)
    if args.new:
        session = nb.new_session(agent.name)
        where = f"new session {_short(session.id)}"
    elif session is not None:
        where = f"resumed session {_short(session.id)}"
    else:
        where = "a new session starts with the first %%chat"
    return Notice(f"now using {agent.name!r} (model {agent.config.model}); {where}", "success")


@command("show", "show an agent: config, sessions, usage", arg("name", metavar="NAME", nargs="?"))
def show(nb: "AgentMagics", args: argparse.Namespace) -> Stack:
    agent = nb.require_agent(args.name)
    store = nb.store
    sessions = store.sessions(agent.name, limit=5)
    usage = store.usage("agent", agent=agent.name)
    total = usage[0] if usage else None
    usage_kv = KeyValues(
        [
            ("turns", total.turns if total else 0),
            ("input tokens", total.input_tokens if total else 0),
            ("output tokens", total.output_tokens if total else 0),
            ("tool calls", total.tool_calls if total else 0),
        ],
        title="usage",
    )
    n = _session_counts(nb).get(agent.name, 0)
    return Stack(
        _agent_card(agent.record),
        _sessions_table(nb, sessions, f"sessions ({min(n, 5)} latest of {n})", with_agent=False),
        usage_kv,
    )


@command(
    "set",
    "change an agent's settings: key=value ...",
    arg("items", nargs="*", metavar="[NAME] key=value"),
    epilog="""
    keys: model, system, tools (a,b), memory (full|window|tokens|summary),
    memory.window_turns, max_iterations, tool_timeout, auto_approve,
    temperature (and other model settings), description, name (renames).
    example: %agent set calc model=offline temperature=0 "system=You add numbers."
    """,
)
def set_(nb: "AgentMagics", args: argparse.Namespace) -> KeyValues:
    from ..agentconfig import parse_assignments

    items = list(args.items)
    name = None
    if items and "=" not in items[0]:
        name = items.pop(0)
    if not items:
        who = name or "[NAME]"
        raise UsageError(f"nothing to set; type e.g. %agent set {who} model=offline temperature=0")
    agent = nb.require_agent(name)
    changes = parse_assignments(items)
    if isinstance(changes.get("model"), str):
        check_model_spec(changes["model"])
    rename = changes.pop("name", None)
    description = changes.pop("description", None)
    if rename is not None:
        rename = str(rename)
    if description is not None:
        description = str(description)
    record = nb.store.update_agent(
        agent.name, rename=rename, description=description, **changes
    )
    if rename is not None and nb._current_agent == agent.name:
        nb._current_agent = record.name
    return _agent_card(record, title=f"agent {record.name} (updated)")


@command("delete", "delete an agent with its sessions, messages and keys",
         arg("name", metavar="NAME"),
         arg("--yes", "-y", action="store_true", help="confirm the deletion"))
def delete(nb: "AgentMagics", args: argparse.Namespace) -> Notice:
    agent = nb.require_agent(args.name)
    if not args.yes:
        n = _session_counts(nb).get(agent.name, 0)
        raise UsageError(
            f"this deletes agent {agent.name!r} and its {n} session{'s' if n != 1 else ''}; "
            + _confirm_hint(f"delete {agent.name}")
        )
    counts = nb.store.delete_agent(agent.name)
    if nb._current_agent == agent.name:
        nb.set_current(None)
    return Notice(
        f"deleted agent {agent.name!r} ({counts.get('sessions', 0)} sessions, "
        f"{counts.get('messages', 0)} messages, {counts.get('api_keys', 0)} keys)",
        "success",
    )


# -- sessions ---------------------------------------------------------------------
@command("sessions", "list sessions (of NAME, else of the current agent, else all)",
         arg("name", metavar="NAME", nargs="?"),
         arg("--all", "-a", action="store_true", help="sessions of every agent"),
         arg("-n", type=int, default=20, metavar="N", help="how many (newest first; default 20)"),
         arg("--browse", "-b", action="store_true",
             help="a widget to search, read and export the sessions"))
def sessions(nb: "AgentMagics", args: argparse.Namespace) -> Any:
    if args.n < 1:
        raise UsageError("%agent sessions: -n must be 1 or more")
    name = None if args.all else (args.name or nb.current_agent)
    if name is not None:
        name = nb.require_agent(name).name
    if args.browse:
        from .browser import SessionBrowser

        return SessionBrowser(store=nb.store, agent=name)
    summaries = nb.store.sessions(name, limit=args.n)
    title = f"sessions of {name}" if name else "sessions of every agent"
    return _sessions_table(nb, summaries, title, with_agent=name is None)


@command("new", "start a new session with the current agent",
         arg("--title", metavar="TEXT", help="a title for the session"))
def new(nb: "AgentMagics", args: argparse.Namespace) -> Notice:
    session = nb.new_session(title=args.title)
    return Notice(f"new session {_short(session.id)} with {nb.current_agent!r}", "success")


@command("resume", "continue a session (an id prefix from %agent sessions)",
         arg("session_id", metavar="ID"))
def resume(nb: "AgentMagics", args: argparse.Namespace) -> Notice:
    store = nb.store
    session = store.session(args.session_id)
    agent = store.repo.get_agent(session.agent_id)
    nb.set_current(agent.name, session.id)
    turns = next((s.turns for s in store.sessions(agent.name) if s.session.id == session.id), 0)
    return Notice(
        f"resumed session {_short(session.id)} of {agent.name!r} "
        f"({turns} turn{'s' if turns != 1 else ''})",
        "success",
    )


@command("history", "the current session's messages",
         arg("-n", type=int, default=None, metavar="N",
             help="only the last N messages (default: AgentMagics.history_limit)"))
def history(nb: "AgentMagics", args: argparse.Namespace) -> Transcript:
    if nb.current_agent is None:
        raise UsageError(NO_AGENT_HINT)
    session_id = nb.current_session
    if session_id is None:
        raise UsageError(
            f"agent {nb.current_agent!r} has no current session yet; chat with %%chat, "
            "or pick one with %agent resume ID (see %agent sessions)"
        )
    limit = args.n if args.n is not None else nb.history_limit
    if limit < 0:
        raise UsageError("%agent history: -n must be 0 (all) or more")
    messages = nb.store.history(session_id, last=limit or None)
    title = f"{nb.current_agent} · session {_short(session_id)}"
    if limit and len(messages) >= limit:
        title += f" (last {limit} messages)"
    return Transcript(messages, title=title)


# -- widgets ----------------------------------------------------------------------
@command("panel", "a chat panel (widget) for NAME, else the current agent",
         arg("name", metavar="NAME", nargs="?"),
         arg("--new", action="store_true", help="start a new session with the first message"))
def panel(nb: "AgentMagics", args: argparse.Namespace) -> Any:
    from .panel import NEW_SESSION, ChatPanel

    name = args.name or nb.current_agent
    if name is None and not nb.store.agents():
        raise UsageError(NO_AGENT_HINT)
    session = None
    if name is not None:
        agent = nb.require_agent(name)
        name = agent.name
        if args.new:
            session = NEW_SESSION
        elif name == nb.current_agent and nb.current_session is not None:
            session = nb.current_session
    elif args.new:
        session = NEW_SESSION
    return ChatPanel(store=nb.store, agent=name, session=session, rate=nb.stream_rate)


# -- analysis ---------------------------------------------------------------------
@command("usage", "tokens and tool calls by agent, session, model or day",
         arg("--by", choices=["agent", "session", "model", "day"], default="agent"),
         arg("--agent", metavar="NAME", help="only this agent"))
def usage(nb: "AgentMagics", args: argparse.Namespace) -> Any:
    rows = nb.store.usage(args.by, agent=args.agent)
    keys = [_short(r.key) if args.by == "session" else (r.key or "(none)") for r in rows]
    table = Table(
        [args.by, "turns", "messages", "input tokens", "output tokens", "tool calls"],
        [[k, r.turns, r.messages, r.input_tokens, r.output_tokens, r.tool_calls]
         for k, r in zip(keys, rows)],
        title=f"usage by {args.by}" + (f" ({args.agent})" if args.agent else ""),
        empty="(no usage yet)",
    )
    if args.by != "day" or not rows:
        return table
    chart = BarChart(keys, [r.input_tokens + r.output_tokens for r in rows],
                     title="tokens per day", unit="tokens")
    return Stack(table, chart)


@command("sql", "query the store (read-only); the result is a DataFrame",
         arg("text", metavar="SELECT ..."), raw=True,
         epilog="""
         tables: agents, sessions, messages, tool_calls, api_keys
         example: df = %agent sql select role, count(*) as n from messages group by role
         """)
def sql(nb: "AgentMagics", args: argparse.Namespace) -> Any:
    if not args.text:
        raise UsageError("give a query: %agent sql SELECT ... (see %agent sql --help)")
    try:
        import pandas  # noqa: F401
    except ImportError:
        raise UsageError("%agent sql needs pandas: pip install 'agentnb[pandas]'") from None
    return nb.store.sql(args.text)


@command("export", "a session as Markdown or JSON (default: the current session)",
         arg("session_id", metavar="SESSION", nargs="?"),
         arg("--format", "-f", choices=["md", "json"], default="md"),
         arg("--output", "-o", metavar="FILE", help="write to FILE instead of showing it"))
def export(nb: "AgentMagics", args: argparse.Namespace) -> Any:
    session_id = args.session_id or nb.current_session
    if session_id is None:
        raise UsageError(
            "no current session to export; give one: %agent export ID (see %agent sessions)"
        )
    text = nb.store.export(session_id, args.format)
    if args.output:
        path = Path(args.output).expanduser()
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        return Notice(f"wrote {path} ({len(text):,} characters, {args.format})", "success")
    return TextResult(text, markdown=args.format == "md", language=args.format)


# -- API keys ---------------------------------------------------------------------
@command(
    "keys",
    "API keys: create [AGENT] [--name N] | list [AGENT] | revoke KEY_ID",
    arg("action", nargs="?", default="list", choices=["create", "list", "revoke"]),
    arg("target", nargs="?", metavar="AGENT|KEY_ID"),
    arg("--name", metavar="N", default="default", help="a label for a new key"),
)
def keys(nb: "AgentMagics", args: argparse.Namespace) -> Any:
    store = nb.store
    if args.action == "create":
        agent = nb.require_agent(args.target)
        new_key = store.create_key(agent.name, args.name)
        from IPython.display import display

        # Displayed, not returned: a returned value would also stay in Out/_.
        display(
            SecretNotice(
                f"new API key {new_key.record.name!r} for {agent.name!r} "
                f"(id {_short(new_key.record.id)}):",
                new_key.key,
                "Copy it now: it is shown only once and agentnb does not store it. "
                "It is now in this cell's output; clear the output after copying "
                "(Edit > Clear Outputs) before you save or share the notebook.",
            )
        )
        return None
    if args.action == "revoke":
        if not args.target:
            raise UsageError("which key? type %agent keys revoke KEY_ID (see %agent keys list)")
        record = store.revoke_key(args.target)
        return Notice(f"revoked key {record.name!r} ({record.key_prefix}…, id {_short(record.id)})",
                      "success")
    names = {a.id: a.name for a in store.agents()}
    rows = [
        [_short(k.id), names.get(k.agent_id, "?"), k.name, k.key_prefix + "…",
         "active" if k.is_active else "revoked", k.created_at, k.last_used_at]
        for k in store.keys(args.target)
    ]
    return Table(["id", "agent", "name", "prefix", "status", "created", "last used"], rows,
                 title="API keys", empty="(no keys: %agent keys create [AGENT])")


# -- tools ------------------------------------------------------------------------
def _registry_names(registry: Any) -> list[str]:
    return sorted(registry.names())


def _register(nb: "AgentMagics", fn: Any, *, approve: bool = False) -> str:
    """Register a notebook function in the notebook's registry; its tool name.

    A function that cannot be a tool (a lambda, no docstring, parameters
    without type hints) raises ToolDefinitionError, a UserError.
    """
    spec = nb.tools.register(fn, requires_approval=approve)
    return getattr(spec, "name", None) or fn.__name__


@command(
    "tool",
    "make notebook functions tools of the current agent",
    arg("functions", nargs="+", metavar="FUNC"),
    arg("--approve", action="store_true", help="ask before each call of these tools"),
    epilog="""
    A tool is a function with a docstring and type hints on its parameters:

        def add(a: int, b: int) -> int:
            "Add two integers."
            return a + b

        %agent tool add
    """,
)
def tool(nb: "AgentMagics", args: argparse.Namespace) -> Notice:
    ns = nb.shell.user_ns
    missing = [n for n in args.functions if n not in ns]
    if missing:
        functions = [k for k, v in ns.items() if callable(v) and not k.startswith("_")]
        hint = close_match(missing[0], functions)
        raise UsageError(
            f"no function named {missing[0]!r} in the notebook"
            + (f"; did you mean {hint!r}?" if hint else "; define it in a cell first")
        )
    not_callable = [n for n in args.functions if not callable(ns[n])]
    if not_callable:
        raise UsageError(
            f"{not_callable[0]!r} is not a function; a tool is a function with a docstring"
        )
    names = [_register(nb, ns[n], approve=args.approve) for n in args.functions]
    record = nb.current_record()
    if record is None:
        return Notice(
            f"registered {', '.join(names)} in this notebook; no current agent to give them to "
            "(%agent use NAME, then %agent tool again)",
            "warning",
        )
    tools = list(record.config.tools) + [n for n in names if n not in record.config.tools]
    nb.store.update_agent(record.name, tools=tools)
    approve = " (each call asks for approval)" if args.approve else ""
    return Notice(f"{record.name!r} can now use {', '.join(names)}{approve}; its tools: "
                  f"{', '.join(tools)}", "success")


__all__ = ["COMMANDS", "Command", "arg", "command", "dispatch", "status"]
