"""Sessions: list, show (``%agent history``), new, resume, export; the panel and browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from ..errors import UserError
from ..render.results import Notice, Table, TextResult, Transcript
from ..text import excerpt, short_id
from .base import Args, Context, Flag, Opt, Pos, command
from .options import MAX_LIMIT, AgentFilter, ExportFormat, Limit, OutputFile, SessionId
from .views import session_json, sessions_table

#: How many sessions a listing shows without ``-n``.
DEFAULT_SESSIONS = 20


class ListArgs(Args):
    agent: AgentFilter = None
    all: Annotated[bool, Flag("--all", "-a", help="sessions of every agent (in a notebook the "
                              "default is the current agent's)")] = False
    limit: Limit = None
    user: Annotated[str | None, Field(min_length=1, max_length=128),
                    Opt("--user", "-u", metavar="USER",
                        help="only the sessions USER started (AGENTNB_USER, else the OS user "
                             "of whoever chatted)")] = None
    browse: Annotated[bool, Flag("--browse", "-b", fronts=("notebook",),
                                 help="a widget to search, read and export them")] = False


@command("sessions list", "list sessions, newest first (of NAME, else of the current agent, "
         "else of every agent)", aliases=("sessions",))
def list_sessions(ctx: Context, args: ListArgs) -> Any:
    if args.browse:
        return _browser(ctx, args.agent, every=args.all)
    store = ctx.store
    name = None
    if args.agent is not None:
        name = ctx.agent(args.agent).name
    elif not args.all:
        current = ctx.state.current()
        name = current.name if current is not None else None
    limit = args.limit or DEFAULT_SESSIONS
    counts = store.session_counts(user=args.user)
    total = counts.get(name, 0) if name else sum(counts.values())
    summaries = store.sessions(name, limit=limit, user=args.user)
    title = f"sessions of {name}" if name else "sessions of every agent"
    if args.user is not None:
        title += f" by user {args.user}"
    if total > len(summaries):
        title += f" ({len(summaries)} newest of {total}; -n N for more)"
    table = sessions_table(ctx, summaries, title, with_agent=name is None)
    if args.user is not None and not summaries:
        table.empty = f"(no sessions of user {args.user})"
    return table


class ShowArgs(Args):
    session: SessionId = None
    limit: Annotated[int | None, Field(ge=0, le=MAX_LIMIT),
                     Opt("--limit", "-n", metavar="N",
                         help="only the last N messages (0: all; in a notebook the default is "
                              "AgentMagics.history_limit)")] = None


def _current_session_id(ctx: Context, what: str) -> Any:
    current = ctx.state.current()
    if current is None:
        raise UserError(
            f"no current agent, so no current session to {what}; give a session id "
            f"(see {ctx.spell('sessions list')})")
    session = current.current_session()
    if session is None:
        raise UserError(
            f"agent {current.name!r} has no session yet; chat with %%chat, or pick one with "
            f"{ctx.spell('sessions resume', 'ID')} (see {ctx.spell('sessions list')})")
    return session.id


@command("sessions show", "a session's messages (default: the current session)",
         aliases=("history",))
def show(ctx: Context, args: ShowArgs) -> Transcript:
    session_id = args.session or _current_session_id(ctx, "show")
    store = ctx.store
    session = store.session(session_id)
    agent = store.get_agent(session.agent_id)
    limit = args.limit if args.limit is not None else (
        ctx.history_limit if ctx.front == "notebook" else 0)
    messages = store.history(session.id, last=limit or None)
    title = f"{agent.name} · session {short_id(session.id)}"
    if limit and len(messages) >= limit:
        title += f" (last {limit} messages)"
    return Transcript(messages, title=title, agent_name=agent.name)


class NewArgs(Args):
    agent: Annotated[str | None, Pos("NAME", "the agent (in a notebook: default the current "
                                     "agent)", required_in=("cli",))] = None
    title: Annotated[str | None, Field(max_length=256),
                     Opt("--title", metavar="TEXT", help="a title for the session")] = None


@command("sessions new", "start a new session (the next chat continues it)", aliases=("new",),
         writes=True)
def new(ctx: Context, args: NewArgs) -> Notice:
    agent = ctx.agent(args.agent, command_id="sessions new")
    session = agent.new_session(title=args.title)
    ctx.state.set_current(agent)
    return Notice(f"new session {short_id(session.id)} with {agent.name!r}", "success",
                  data={"id": str(session.id), "agent": agent.name, "title": session.title})


class ResumeArgs(Args):
    session: Annotated[str, Pos("ID", "a session id or a unique prefix of it")]


@command("sessions resume", "continue a session (an id prefix from sessions)",
         aliases=("resume",), fronts=("notebook",))
def resume(ctx: Context, args: ResumeArgs) -> Notice:
    store = ctx.store
    summary = store.session_summary(args.session)
    agent = ctx.agent(summary.agent_name)
    agent.resume(summary.session.id)
    ctx.state.set_current(agent)
    turns = summary.turns
    return Notice(f"resumed session {short_id(summary.session.id)} of {agent.name!r} "
                  f"({turns} turn{'s' if turns != 1 else ''})", "success",
                  data=session_json(summary))


class ExportArgs(Args):
    session: SessionId = None
    format: ExportFormat = "md"
    output: OutputFile = None


def write_text_file(path_text: str, text: str) -> Path:
    """Write ``text`` to a user-given path; a bad path is a one-line UserError."""
    if "\x00" in path_text or not path_text.strip():
        raise UserError(f"not a file path: {excerpt(path_text)}")
    path = Path(path_text).expanduser()
    try:
        path.write_text(text, encoding="utf-8")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"cannot write {excerpt(str(path), 80)}: {reason}") from None
    return path


@command("sessions export", "a session as Markdown or JSON (default: the current session)",
         aliases=("export",))
def export(ctx: Context, args: ExportArgs) -> Any:
    session_id = args.session or _current_session_id(ctx, "export")
    text = ctx.store.export(session_id, args.format)
    if not text.endswith("\n"):
        text += "\n"
    if args.output and args.output != "-":
        path = write_text_file(args.output, text)
        return Notice(f"wrote {path} ({len(text):,} characters, {args.format})", "success",
                      data={"path": str(path), "format": args.format, "characters": len(text)})
    return TextResult(text, markdown=args.format == "md", language=args.format)


class WidgetRequest:
    """A result the notebook shows as a widget (the chat panel, the session browser).

    The command decides what the widget opens (which agent, which session: the
    one session rule); the notebook front end builds the ipywidget.
    """

    def __init__(self, kind: str, **options: Any) -> None:
        self.kind = kind
        self.options = options

    def to_text(self) -> str:
        return f"({self.kind} widget: open it in a notebook)"

    def to_json(self) -> Any:
        return {"widget": self.kind, **{k: str(v) if v is not None else None
                                         for k, v in self.options.items()}}

    __repr__ = to_text


class PanelArgs(Args):
    agent: Annotated[str | None, Pos("NAME", "the agent (default: the current one)")] = None
    new: Annotated[bool, Flag("--new", help="start a new session with the first message")] = False


@command("panel", "a chat panel (widget) for NAME, else the current agent", aliases=("panel",),
         fronts=("notebook",))
def panel(ctx: Context, args: PanelArgs) -> WidgetRequest:
    name = args.agent
    current = ctx.state.current()
    if name is None and current is None:
        store = ctx.existing_store()
        if store is None or not store.agents():
            ctx.agent(None)  # raises: no current agent, and how to make one
    agent = ctx.agent(name) if name is not None else current
    session: Any = None
    if agent is not None:
        if args.new:
            session = "new"
        elif current is not None and agent.name == current.name:
            found = agent.current_session()
            session = found.id if found is not None else None
    elif args.new:
        session = "new"
    return WidgetRequest("chat_panel", agent=agent.name if agent is not None else None,
                         session=session)


class BrowseArgs(Args):
    agent: AgentFilter = None


@command("sessions browse", "a widget to search, read and export the sessions",
         aliases=("browse",), fronts=("notebook",))
def browse(ctx: Context, args: BrowseArgs) -> WidgetRequest:
    return _browser(ctx, args.agent, every=False)


def _browser(ctx: Context, agent: str | None, *, every: bool) -> WidgetRequest:
    """The browser of NAME's sessions, else the current agent's (unless ``every``), else all."""
    name = ctx.agent(agent).name if agent else None
    current = ctx.state.current()
    if name is None and not every and current is not None:
        name = current.name
    return WidgetRequest("session_browser", agent=name)


__all__ = ["WidgetRequest", "write_text_file"]
