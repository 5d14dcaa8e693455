"""The command layer's machinery: a command declared once, parsed and run for any front end.

A command is a function decorated with :func:`command`::

    class CreateArgs(Args):
        name: Annotated[str, Pos("NAME", "the agent's name")]
        model: Annotated[str | None, Opt("--model", "-m", metavar="SPEC", help=MODEL_HELP)] = None

    @command("agents create", "create an agent", aliases=("create",), writes=True)
    def create(ctx: Context, args: CreateArgs) -> Result: ...

* its **arguments** are one pydantic model (typed, validated: a number out of
  range is a clear error, never a traceback); each field says how it is written
  on a command line (:class:`Pos`, :class:`Opt`, :class:`Flag`, :class:`Rest`),
  once, for every front end: the CLI and ``%agent`` build their parsers from it;
* its **handler** gets a :class:`Context` (the store, the front end's current
  agent, how the front end spells a command, how it asks for confirmation) and
  the parsed arguments, calls the Python API, and returns a result object
  (:mod:`agentnb.render.results`) that renders as HTML, text or JSON.

Front ends (``agentnb.cli``, ``agentnb.notebook.magics``, and the HTTP and
MCP front ends) parse, call :func:`run`, and display: nothing else.
"""

from __future__ import annotations

import argparse
import re
import shlex
import textwrap
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import UserError
from ..text import did_you_mean, excerpt

if TYPE_CHECKING:  # pragma: no cover
    from ..agent import Agent
    from ..api import Store
    from ..config import LoadedSettings, Settings

Front = Literal["cli", "notebook"]
FRONTS: tuple[Front, ...] = ("cli", "notebook")


class UsageProblem(UserError):
    """A command line that does not parse (unknown option, missing argument, bad value)."""


# -- how an argument is written ---------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """How one field of a command's arguments is written on a command line."""

    kind: Literal["positional", "option", "flag", "rest", "argv"]
    flags: tuple[str, ...] = ()
    metavar: str | None = None
    help: str = ""
    #: front ends that offer this argument (default: every front end of the command)
    fronts: tuple[str, ...] | None = None
    #: front ends where an optional positional must be given (no current agent there)
    required_in: tuple[str, ...] = ()
    #: a positional that may also be written as an option (``[NAME]`` or ``--agent NAME``)
    also: str | None = None
    #: flags: store False when given (``--no-tools`` for ``tools: bool = True``)
    negate: bool = False


def Pos(metavar: str, help: str = "", *, fronts: Sequence[str] | None = None,
        required_in: Sequence[str] = (), also: str | None = None) -> Spec:
    """A positional argument (optional when the field has a default)."""
    return Spec("positional", metavar=metavar, help=help,
                fronts=tuple(fronts) if fronts else None, required_in=tuple(required_in),
                also=also)


def Opt(*flags: str, metavar: str | None = None, help: str = "",
        fronts: Sequence[str] | None = None) -> Spec:
    """An option with a value (``--model SPEC``); the first flag is its name."""
    return Spec("option", flags=flags, metavar=metavar, help=help,
                fronts=tuple(fronts) if fronts else None)


def Flag(*flags: str, help: str = "", fronts: Sequence[str] | None = None,
         negate: bool = False) -> Spec:
    """A yes/no option (``--yes``); ``negate``: the flag turns a default True off."""
    return Spec("flag", flags=flags, help=help, fronts=tuple(fronts) if fronts else None,
                negate=negate)


def Rest(metavar: str, help: str = "") -> Spec:
    """The rest of the line as one text, unparsed (``%agent sql SELECT ...``)."""
    return Spec("rest", metavar=metavar, help=help)


def Argv(metavar: str, help: str = "") -> Spec:
    """Everything after ``--``, word by word (a command line to run: ``mcp add S -- CMD ARG``).

    The words before ``--`` are parsed as usual (options may come anywhere there);
    the words after it are this field's, as typed, options included.
    """
    return Spec("argv", metavar=metavar, help=help)


def argv_field(cmd: "Command", front: str) -> str | None:
    """The field that takes the words after ``--``, if the command has one."""
    for name, _, spec in cmd.fields(front):
        if spec.kind == "argv":
            return name
    return None


def argv_value(cmd: "Command", front: str, before: Any, after: list[str] | None, *,
               prog: str | None = None) -> list[str] | None:
    """The words of a ``--`` field; words for it before ``--`` are a UsageProblem."""
    if before:
        name = argv_field(cmd, front)
        metavar = next(s.metavar for n, _, s in cmd.fields(front) if n == name)
        prog = prog or prog_of(cmd, front)
        raise UsageProblem(f"{prog}: unexpected {excerpt(' '.join(before))}; write {metavar} "
                           f"after -- (see {prog} --help)")
    return after


def split_dashes(tokens: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """``[a, --, b, c]`` -> ``([a], [b, c])``; no ``--``: ``(tokens, None)``."""
    tokens = list(tokens)
    if "--" not in tokens:
        return tokens, None
    at = tokens.index("--")
    return tokens[:at], tokens[at + 1:]


class Args(BaseModel):
    """Base of every command's arguments: typed, validated, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArgs(Args):
    """A command without arguments."""


def _spec_of(info: Any) -> Spec | None:
    for item in info.metadata:
        if isinstance(item, Spec):
            return item
    return None


def _choices(annotation: Any) -> list[str] | None:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return [str(a) for a in args]
    for arg in args:  # Optional[Literal[...]]
        if typing.get_origin(arg) is Literal:
            return [str(a) for a in typing.get_args(arg)]
    return None


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (list, tuple):
        return True
    return any(typing.get_origin(a) in (list, tuple) for a in typing.get_args(annotation))


# -- commands -----------------------------------------------------------------------------
@dataclass
class Command:
    """One operation, declared once (see the module docstring)."""

    path: tuple[str, ...]
    summary: str
    handler: Callable[["Context", Any], Any]
    args: type[Args]
    #: other names in the notebook (``%agent create`` for ``agents create``)
    aliases: tuple[str, ...] = ()
    fronts: tuple[str, ...] = FRONTS
    #: True when the command may create the store (a read-only command never does)
    writes: bool = False
    epilog: str = ""
    #: usage examples, one per line, with ``{prog}`` for the front end's spelling
    examples: tuple[str, ...] = ()
    #: other paths in the CLI (``db status`` for ``db current``)
    cli_aliases: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return " ".join(self.path)

    def offered(self, front: str) -> bool:
        return front in self.fronts

    def fields(self, front: str) -> list[tuple[str, Any, Spec]]:
        """(name, field info, spec) of the arguments this front end offers, in order."""
        out = []
        for name, info in self.args.model_fields.items():
            spec = _spec_of(info)
            if spec is None or (spec.fronts is not None and front not in spec.fronts):
                continue
            out.append((name, info, spec))
        return out

    def raw_field(self, front: str) -> str | None:
        """The field that takes the rest of the line unparsed, if any."""
        for name, _, spec in self.fields(front):
            if spec.kind == "rest":
                return name
        return None


REGISTRY: dict[str, Command] = {}


def command(path: str, summary: str, *, aliases: Iterable[str] = (),
            fronts: Iterable[str] = FRONTS, writes: bool = False, epilog: str = "",
            examples: Iterable[str] = (), cli_aliases: Iterable[str] = ()) -> Callable:
    """Declare a command: ``path`` is its words in the CLI (``"agents create"``)."""

    def register(fn: Callable) -> Callable:
        hints = typing.get_type_hints(fn, include_extras=False)
        args_type = hints.get("args", NoArgs)
        cmd = Command(tuple(path.split()), summary, fn, args_type, tuple(aliases),
                      tuple(fronts), writes, textwrap.dedent(epilog).strip(), tuple(examples),
                      tuple(cli_aliases))
        if cmd.id in REGISTRY:
            raise RuntimeError(f"command {cmd.id!r} declared twice")
        REGISTRY[cmd.id] = cmd
        fn.command = cmd
        return fn

    return register


def commands_for(front: str) -> list[Command]:
    """The commands a front end offers, in declaration order."""
    return [c for c in REGISTRY.values() if c.offered(front)]


# -- how front ends spell commands --------------------------------------------------------
def spell(front: str, command_id: str, rest: str = "") -> str:
    """How ``front`` writes a command (``"%agent sessions"`` / ``"agentnb sessions list"``)."""
    cmd = REGISTRY.get(command_id)
    if front == "notebook":
        words = (cmd.aliases[0] if cmd is not None and cmd.aliases else command_id)
        text = f"%agent {words}"
    else:
        text = f"agentnb {command_id}"
    return f"{text} {rest}".rstrip()


def message_for(front: str, exc: UserError) -> str:
    """A UserError as one line in ``front``'s words (its ``see`` spelled for that front end)."""
    text = " ".join(str(exc.message if exc.message or not exc.args else exc.args[0]).split())
    if not text:
        text = " ".join(str(exc).split()) or type(exc).__name__
    if exc.see:
        text += f" (see {spell(front, exc.see)})"
    return text


# -- the context -------------------------------------------------------------------------
class FrontState:
    """What a front end remembers between commands: the current agent (none in the CLI)."""

    def current(self) -> "Agent | None":
        """The current agent's handle, or None."""
        return None

    def set_current(self, agent: "Agent | None") -> None:
        """Make ``agent`` current (None: no current agent)."""

    def handle(self, store: "Store", name: str) -> "Agent":
        """The handle for agent ``name`` (a front end may keep handles between commands)."""
        return store.agent(name)


@dataclass
class Context:
    """What a command works with; built by each front end.

    ``open_store(create)``: the store (``create``: whether a missing store may
    be created; only commands that write may). ``confirm(question, refusal)``:
    True to go on; raises a UserError (``refusal``) where the front end cannot
    ask. ``namespace``: the notebook's variables (for notebook-only commands).
    """

    front: str
    open_store: Callable[[bool], "Store"]
    state: FrontState = field(default_factory=FrontState)
    confirm: Callable[[str, str], bool] | None = None
    namespace: dict[str, Any] | None = None
    #: what new sessions record about where they started (``source``, notebook, kernel)
    session_attrs: dict[str, Any] = field(default_factory=dict)
    #: the model of agents created without ``--model`` (the notebook's ``default_model``)
    default_model: str | None = None
    #: how many messages ``history`` shows without ``-n`` (0: all)
    history_limit: int = 50
    #: the settings in force with where each came from (for ``config show``), without a store
    loaded_settings: Callable[[], "LoadedSettings"] | None = None
    writes: bool = False
    _store: "Store | None" = None

    @property
    def settings(self) -> "Settings":
        """The settings in force (read without opening the store when possible)."""
        if self.loaded_settings is not None:
            return self.loaded_settings().settings
        return self.store.settings

    @property
    def store(self) -> "Store":
        """The store, opened on first use (created only when the command writes)."""
        if self._store is None:
            self._store = self.open_store(self.writes)
        return self._store

    def existing_store(self) -> "Store | None":
        """The store, or None where there is none yet (and none is made)."""
        from ..errors import StoreNotFoundError

        try:
            return self.store
        except StoreNotFoundError:
            return None

    def spell(self, command_id: str, rest: str = "") -> str:
        """How this front end writes a command, for hints in messages."""
        return spell(self.front, command_id, rest)

    def agent(self, name: str | None, *, command_id: str | None = None) -> "Agent":
        """The handle of agent ``name``, or of the front end's current agent."""
        if name is None:
            current = self.state.current()
            if current is not None:
                return current
            if self.front == "notebook":
                raise UserError(
                    f"no current agent; create one with {self.spell('agents create', 'NAME')}, "
                    f"or pick one with {self.spell('agents use', 'NAME')}")
            example = self.spell(command_id or "agents show", "NAME")
            raise UserError(f"which agent? give its name: {example} (see agentnb agents list)")
        handle = self.state.handle(self.store, name)
        if self.session_attrs:
            handle.session_attrs = {**self.session_attrs, **handle.session_attrs}
        return handle

    def ask(self, question: str, refusal: str) -> bool:
        """Ask for a yes; where the front end cannot ask, raise ``refusal``."""
        if self.confirm is None:
            raise UserError(refusal)
        return self.confirm(question, refusal)


# -- parsing -----------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes are :class:`UsageProblem` lines, never SystemExit."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        kwargs.setdefault("add_help", False)  # --help is the front end's
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(prog=prog, **kwargs)

    def error(self, message: str) -> typing.NoReturn:  # type: ignore[override]
        raise UsageProblem(f"{self.prog}: {_shorten_args(message)} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> typing.NoReturn:  # type: ignore[override]
        raise UsageProblem(f"{self.prog}: {(message or 'stopped').strip()}")


def _shorten_args(message: str) -> str:
    """argparse quotes whole arguments in its errors: cut each to a short excerpt."""
    head, sep, tail = message.partition(": ")
    if sep and head in ("unrecognized arguments",):
        return f"{head}: " + " ".join(excerpt(w, 30)[1:-1] for w in tail.split()[:5])
    return message if len(message) <= 200 else message[:199] + "…"


def prog_of(cmd: Command, front: str, words: Sequence[str] | None = None) -> str:
    if front == "notebook":
        return "%agent " + " ".join(words or (cmd.aliases[:1] or cmd.path))
    return "agentnb " + " ".join(cmd.path)


def build_parser(cmd: Command, front: str, *, prog: str | None = None,
                 parser_class: type[argparse.ArgumentParser] = _Parser,
                 **kwargs: Any) -> argparse.ArgumentParser:
    """The argparse parser of ``cmd`` as ``front`` writes it."""
    parser = parser_class(
        prog or prog_of(cmd, front),
        description=cmd.summary,
        epilog=_epilog(cmd, front),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    add_arguments(parser, cmd, front)
    return parser


def _epilog(cmd: Command, front: str) -> str | None:
    parts = []
    if cmd.epilog:
        parts.append(cmd.epilog)
    if cmd.examples:
        prog = prog_of(cmd, front)
        parts.append("examples:\n" + "\n".join("  " + e.format(prog=prog) for e in cmd.examples))
    return "\n\n".join(parts) or None


def add_arguments(parser: argparse.ArgumentParser, cmd: Command, front: str) -> None:
    """Add ``cmd``'s arguments, as ``front`` offers them, to an argparse parser."""
    for name, info, spec in cmd.fields(front):
        help_text = front_help(spec.help or (info.description or ""), front)
        choices = _choices(info.annotation)
        if choices and spec.kind == "option" and "(one of" not in help_text:
            help_text = (help_text + " " if help_text else "") + f"({'|'.join(choices)})"
        if not info.is_required() and info.default not in (None, False, True, (), []) \
                and spec.kind == "option":
            help_text += f" (default: {info.default})"
        if spec.kind == "positional":
            required = info.is_required() or front in spec.required_in
            nargs: Any = None
            if _is_list(info.annotation):
                nargs = "+" if required else "*"
            elif not required:
                nargs = "?"
            parser.add_argument(name, metavar=spec.metavar, help=help_text, nargs=nargs,
                                default=None)
            if spec.also:
                parser.add_argument(spec.also, dest=f"{name}__also", metavar=spec.metavar,
                                    help=f"the same as {spec.metavar}")
        elif spec.kind == "option":
            extra: dict[str, Any] = {}
            if _is_list(info.annotation):
                extra["action"] = "append"
            parser.add_argument(*spec.flags, dest=name, metavar=spec.metavar, help=help_text,
                                default=None, **extra)
        elif spec.kind == "flag":
            parser.add_argument(*spec.flags, dest=name, help=help_text, default=None,
                                action="store_const", const=not spec.negate)
        elif spec.kind == "rest":
            parser.add_argument(name, metavar=spec.metavar, help=help_text, nargs="*",
                                default=None)
        elif spec.kind == "argv":
            # shown in the usage; the front end hands over the words after "--" itself
            parser.add_argument(name, metavar=f"-- {spec.metavar}", help=help_text, nargs="*",
                                default=None)


_NOTEBOOK_ONLY = re.compile(r" ?\(in a notebook: ([^)]*)\)")


def front_help(text: str, front: str) -> str:
    """A help text for ``front``: "(in a notebook: ...)" parts kept only in the notebook."""
    if front == "notebook":
        return _NOTEBOOK_ONLY.sub(r" (\1)", text)
    return _NOTEBOOK_ONLY.sub("", text)


def _field_label(cmd: Command, front: str, field_name: str) -> str:
    for name, _, spec in cmd.fields(front):
        if name == field_name:
            if spec.kind == "positional" or spec.kind == "rest":
                return spec.metavar or name
            return spec.flags[0]
    return field_name


def to_args(cmd: Command, front: str, values: dict[str, Any], *,
            prog: str | None = None) -> Args:
    """The command's typed arguments from parsed values; a bad value is a UsageProblem."""
    data: dict[str, Any] = {}
    for name, info, spec in cmd.fields(front):
        value = values.get(name)
        if spec.also:
            other = values.get(f"{name}__also")
            if other is not None and value is not None and other != value:
                raise UsageProblem(f"{prog or prog_of(cmd, front)}: {spec.metavar} given twice "
                                   f"({excerpt(value)} and {spec.also} {excerpt(other)})")
            value = value if value is not None else other
        if spec.kind == "rest" and isinstance(value, list):
            value = " ".join(value).strip() or None
        if value is not None:
            data[name] = value
    try:
        return cmd.args.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"][0] if err["loc"] else ""
        label = _field_label(cmd, front, str(loc))
        msg = friendly_error(err)
        got = err.get("input")
        shown = f", got {excerpt(got)}" if got is not None and not isinstance(got, dict) else ""
        prog = prog or prog_of(cmd, front)
        raise UsageProblem(f"{prog}: {label}: {msg}{shown} (see {prog} --help)") from None


def friendly_error(err: dict) -> str:
    """One pydantic error as a person would say it ("must be at most 1,000,000")."""
    kind, ctx = err.get("type", ""), err.get("ctx") or {}

    def num(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) else str(value)

    if kind == "less_than_equal":
        return f"must be at most {num(ctx.get('le'))}"
    if kind == "greater_than_equal":
        return f"must be at least {num(ctx.get('ge'))}"
    if kind in ("int_parsing", "int_from_float"):
        return "must be a whole number"
    if kind == "float_parsing":
        return "must be a number"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}".replace("'", "")
    if kind == "string_too_long":
        return f"must be at most {num(ctx.get('max_length'))} characters"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "missing":
        return "is required"
    return str(err.get("msg", "is not valid")).removeprefix("Value error, ")


def split_line(line: str, prog: str) -> list[str]:
    """Split a magic line like a shell does; an unclosed quote is a UsageProblem."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageProblem(
            f"{prog}: {exc} in {excerpt(line.strip(), 60)}; close the quote, or quote text "
            "that has spaces") from None


def wants_help(tokens: Sequence[str]) -> bool:
    """True when the user asked for help (``-h``/``--help``) among ``tokens``."""
    return any(t in ("-h", "--help") for t in tokens)


def parse_tokens(cmd: Command, front: str, tokens: Sequence[str], *,
                 prog: str | None = None) -> Args:
    """Parse a command's tokens (already split) into its typed arguments."""
    parser = build_parser(cmd, front, prog=prog)
    field = argv_field(cmd, front)
    before, after = split_dashes(tokens) if field else (list(tokens), None)
    values = vars(parser.parse_args(before))
    if field is not None:
        values[field] = argv_value(cmd, front, values.get(field), after, prog=prog)
    return to_args(cmd, front, values, prog=prog)


def help_text(cmd: Command, front: str, *, prog: str | None = None) -> str:
    """The ``--help`` of a command as ``front`` writes it."""
    return build_parser(cmd, front, prog=prog).format_help().rstrip() + "\n"


def run(cmd: Command, ctx: Context, args: Args) -> Any:
    """Run a command's handler (the only way front ends run one)."""
    ctx.writes = cmd.writes
    return cmd.handler(ctx, args)


def suggest_command(word: str, front: str) -> str | None:
    """The command (or alias) closest to a typo, spelled for ``front``."""
    names: dict[str, str] = {}
    for cmd in commands_for(front):
        if front == "notebook":
            for alias in cmd.aliases or (cmd.path[-1],):
                names[alias] = alias
        names[" ".join(cmd.path)] = " ".join(cmd.path)
        names.setdefault(cmd.path[0], cmd.path[0])
    return did_you_mean(word, list(names))


__all__ = [
    "Args",
    "Argv",
    "Command",
    "Context",
    "Flag",
    "FrontState",
    "NoArgs",
    "Opt",
    "Pos",
    "REGISTRY",
    "Rest",
    "Spec",
    "UsageProblem",
    "build_parser",
    "command",
    "commands_for",
    "help_text",
    "message_for",
    "parse_tokens",
    "run",
    "spell",
    "split_line",
    "suggest_command",
    "to_args",
    "wants_help",
]
