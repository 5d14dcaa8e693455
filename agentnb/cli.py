"""The ``agentnb`` command: the command layer in a terminal or a script.

::

    agentnb init
    agentnb agents create calc --model offline --system "You add numbers."
    agentnb sessions list calc --json
    agentnb keys create calc
    agentnb chat calc "Please add(a=2, b=3)"

This module only parses ``argv``, runs a command of :mod:`agentnb.commands`
and prints its result: text (aligned tables), or JSON with ``--json``. A
mistake the user can fix (any :class:`~agentnb.errors.UserError`, or a bad
command line) prints one line ``agentnb: error: ...`` on stderr and exits with
status 2; anything else is a bug and keeps its traceback. Importing it imports
nothing heavy: ``--help`` and the listings load no langchain, pandas or
ipywidgets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Sequence, TextIO

from .version import __version__
from .commands import base as cmds
from .errors import UserError
from .text import did_you_mean, excerpt

if TYPE_CHECKING:  # pragma: no cover
    from .api import Store
    from .commands.chat import TurnPlan
    from .config import LoadedSettings

PROG = "agentnb"
FRONT = "cli"


# -- parsing -----------------------------------------------------------------------
class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes are one-line UsageProblems, with "did you mean" for commands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # type: ignore[override]
        if "invalid choice:" in message:
            word = message.split("invalid choice:", 1)[1].split("(", 1)[0].strip().strip("'\"")
            choices = [c for a in self._actions
                       if isinstance(a, argparse._SubParsersAction) for c in a.choices]
            hint = did_you_mean(word, choices)
            text = f"{self.prog}: unknown command {excerpt(word)}"
            text += f"; did you mean {self.prog} {hint}?" if hint else \
                f"; choose one of: {', '.join(choices)}"
            raise cmds.UsageProblem(f"{text} (see {self.prog} --help)")
        raise cmds.UsageProblem(f"{self.prog}: {cmds._shorten_args(message)} "
                                f"(see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> Any:  # type: ignore[override]
        if status == 0:
            raise SystemExit(0)  # --help, --version: argparse printed them
        raise cmds.UsageProblem((message or "stopped").strip())


def _db_option(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--db", metavar="URL", default=default,
        help="store URL for this command (overrides AGENTNB_DATABASE_URL), "
             "e.g. duckdb:///path/agentnb.duckdb or sqlite:///path/agentnb.db")


def _common() -> argparse.ArgumentParser:
    """Options every command also takes after its name (``agentnb agents list --db URL``)."""
    parent = ArgumentParser(add_help=False)
    # SUPPRESS: a command that does not see --db leaves the top-level value alone.
    _db_option(parent, argparse.SUPPRESS)
    parent.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON instead of text")
    return parent


def build_parser() -> ArgumentParser:
    """The ``agentnb`` argument parser, built from the command registry."""
    parser = ArgumentParser(
        prog=PROG,
        description="Manage an agentnb store: agents, sessions, API keys, usage; chat.",
        epilog="Settings: AGENTNB_HOME (default ~/.agentnb), AGENTNB_DATABASE_URL; "
               "see: agentnb config show",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _db_option(parser, None)
    parser.set_defaults(command=None, group=parser)
    top = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=ArgumentParser)
    groups: dict[str, Any] = {}
    for cmd in cmds.commands_for(FRONT):
        for path in [cmd.path, *(tuple(a.split()) for a in cmd.cli_aliases)]:
            sub = top
            if len(path) > 1:
                if path[0] not in groups:
                    group = top.add_parser(path[0], help=_GROUP_HELP.get(path[0], ""),
                                           description=_GROUP_HELP.get(path[0]),
                                           parents=[_common()])
                    group.set_defaults(command=None, group=group)
                    groups[path[0]] = group.add_subparsers(
                        title="commands", metavar="COMMAND", parser_class=ArgumentParser)
                sub = groups[path[0]]
            alias = path != cmd.path
            leaf = sub.add_parser(
                path[-1], help=argparse.SUPPRESS if alias else cmd.summary,
                description=cmd.summary, epilog=cmds._epilog(cmd, FRONT), parents=[_common()],
                formatter_class=argparse.RawDescriptionHelpFormatter)
            cmds.add_arguments(leaf, cmd, FRONT)
            leaf.set_defaults(command=cmd, group=None)
    return parser


_GROUP_HELP = {
    "agents": "create, inspect, change and delete agents",
    "sessions": "conversations: list, read, export",
    "keys": "API keys of agents (and admin keys)",
    "templates": "agent templates (built-in and AGENTNB_HOME/templates)",
    "db": "the store's schema revision (alembic migrations)",
    "config": "agentnb settings",
    "tools": "the tools of agents",
    "mcp": "MCP: the MCP servers of agents, and serving agents over MCP",
}


# -- running -----------------------------------------------------------------------
class _Terminal:
    """How the CLI asks (a y/N question on a terminal; refused when stdin is not one)."""

    def __init__(self, err: TextIO) -> None:
        self.err = err

    def interactive(self) -> bool:
        try:
            return bool(sys.stdin is not None and sys.stdin.isatty())
        except (AttributeError, ValueError):
            return False

    def confirm(self, question: str, refusal: str) -> bool:
        if not self.interactive():
            raise UserError(refusal.replace("to confirm, type", "stdin is not a terminal; "
                                            "to confirm, type"))
        self.err.write(f"{question} [y/N] ")
        self.err.flush()
        return sys.stdin.readline().strip().lower() in ("y", "yes")


class _Settings:
    """The settings of one run (``--db`` wins over the environment), loaded once."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._loaded: "LoadedSettings | None" = None

    def __call__(self) -> "LoadedSettings":
        if self._loaded is None:
            from .config import load_settings
            from .errors import ConfigError

            try:
                loaded = load_settings(database_url=self.url)
            except ConfigError as exc:
                if self.url and "(argument)" in str(exc):
                    raise ConfigError(str(exc).replace("(argument)", "(--db)")) from None
                raise
            if self.url:
                loaded.sources["database_url"] = "--db"
            self._loaded = loaded
        return self._loaded


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Run the ``agentnb`` command; returns the exit status (2 for a user error)."""
    out = out or sys.stdout
    err = err or sys.stderr
    store: "Store | None" = None
    try:
        try:
            args = _parse(build_parser(), sys.argv[1:] if argv is None else list(argv))
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else 0
        cmd = args.command
        if cmd is None:
            args.group.print_help(out)
            return 0
        settings = _Settings(getattr(args, "db", None))
        opened: list["Store"] = []

        def open_store(create: bool) -> "Store":
            from .api import Store

            # only a command that writes may create the store (a typo in --db must not)
            opened.append(Store(settings().settings, create=create))
            return opened[-1]

        ctx = cmds.Context(FRONT, open_store, confirm=_Terminal(err).confirm,
                           session_attrs={"source": "cli"}, loaded_settings=settings)
        try:
            parsed = cmds.to_args(cmd, FRONT, vars(args))
            result = cmds.run(cmd, ctx, parsed)
            if cmd.id == "chat":
                return _chat(result, parsed, out, err, as_json=getattr(args, "json", False))
            if cmd.id == "serve":
                from .serve.server import run_foreground

                return run_foreground(ctx.store, result, out, err)
            if cmd.id == "mcp serve":
                from .mcpserver import serve

                return serve(result, opened[-1] if opened else open_store(False), err=err)
            return _print(result, out, err, as_json=getattr(args, "json", False))
        finally:
            for store in opened:
                store.close()
    except UserError as exc:
        message = cmds.message_for(FRONT, exc).removeprefix(f"{PROG}: ").removeprefix(f"{PROG} ")
        err.write(f"{PROG}: error: {message}\n")
        return 2
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (``agentnb sessions list | head``): not worth a traceback.
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1


def _parse(parser: ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; for a command with a ``--`` field (``mcp add``), the words after
    ``--`` are that field's, as typed (argparse alone would give options there to agentnb)."""
    before, after = cmds.split_dashes(argv)
    if after is not None:
        try:
            args = parser.parse_args(before)
        except cmds.UsageProblem:
            args = None
        cmd = getattr(args, "command", None)
        field = cmds.argv_field(cmd, FRONT) if cmd is not None else None
        if field is not None:
            setattr(args, field, cmds.argv_value(cmd, FRONT, getattr(args, field, None), after))
            return args
    return parser.parse_args(argv)


def _print(result: Any, out: TextIO, err: TextIO, *, as_json: bool) -> int:
    """Show a command's result: JSON, or its text (notes and secrets' warnings on stderr)."""
    from .render.results import Notice, SecretNotice, Table, TextResult

    if as_json:
        out.write(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
        return 0
    if isinstance(result, Table) and not result.rows:
        err.write(result.empty.strip("()") + "\n")
    elif isinstance(result, SecretNotice):
        out.write(f"{result.label}\n{result.secret}\n")
        err.write(result.warning + "\n")
    elif isinstance(result, TextResult):
        text = str.__str__(result)
        out.write(text if text.endswith("\n") else text + "\n")
    else:
        out.write(result.to_text().rstrip("\n") + "\n")
    if isinstance(result, Notice) and result.level == "warning":
        return 1  # declined (not deleted): not a success for a script
    return 0


def _chat(plan: "TurnPlan", args: Any, out: TextIO, err: TextIO, *, as_json: bool) -> int:
    """Run a planned turn, streamed to the terminal (see ``agentnb chat --help``)."""
    from .render.live import LiveTurn
    from .render.printer import TextPrinter, drive
    from .render.results import to_jsonable
    from .text import args_text, shorten

    message = " ".join(args.message).strip()
    if message == "-":
        message = sys.stdin.read().strip()
    if not message:
        raise UserError("the message is empty: agentnb chat AGENT MESSAGE (- reads stdin)")
    terminal = _Terminal(err)

    def approve(event: Any) -> bool:
        if args.yes_tools:
            return True
        call = f"{event.tool_name}({shorten(args_text(event.input_args), 200)})"
        if not terminal.interactive():
            err.write(f"[tool] {call} needs approval; denied (use --yes-tools)\n")
            return False
        err.write(f"run {call}? [y/N] ")
        err.flush()
        return sys.stdin.readline().strip().lower() in ("y", "yes")

    live = LiveTurn(message=message)

    class _Quiet:  # --json: nothing but the JSON at the end
        def start(self) -> None: ...
        def event(self, event: Any) -> None: ...
        def finish(self, note: str | None = None) -> None: ...

    view = _Quiet() if as_json else TextPrinter(
        live, session=plan.session.id, out=out, err=err,
        missing_note=lambda names: plan.missing_tools_note(FRONT, names))
    events = plan.agent.stream(message, session=plan.session.id, model=plan.model,
                               tools=plan.tools, approve=approve)
    reply, interrupted = drive(events, view)
    view.finish()
    if interrupted:
        err.write(f"{PROG}: interrupted; the partial answer is stored, marked interrupted\n")
        return 130
    assert reply is not None
    if as_json:
        out.write(json.dumps(to_jsonable({
            "text": reply.text, "status": reply.status, "error": reply.error,
            "session_id": reply.session_id, "agent": reply.agent, "model": reply.model,
            "input_tokens": reply.usage.input_tokens, "output_tokens": reply.usage.output_tokens,
            "tool_calls": [{"tool_name": c.tool_name, "input_args": c.input_args,
                            "status": c.status, "output": c.output,
                            "error_message": c.error_message} for c in reply.tool_calls],
        }), indent=2, ensure_ascii=False) + "\n")
    if reply.status == "error":
        if not as_json:
            err.write(f"{PROG}: error: the turn failed: {reply.error} (it is stored)\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
