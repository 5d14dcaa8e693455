"""The ``agentnb`` command: manage a store from a terminal or a script.

::

    agentnb init
    agentnb agents create calc --model offline --system "You add numbers."
    agentnb sessions list --agent calc --json
    agentnb keys create calc
    agentnb chat calc "Please add(a=2, b=3)"

Listings print aligned text tables, or JSON with ``--json`` (a list of
objects with stable keys, full UUIDs, ISO 8601 datetimes). A mistake the
user can fix (any :class:`~agentnb.errors.UserError`, or a bad command line)
prints one line ``agentnb: error: ...`` on stderr and exits with status 2;
anything else is a bug and keeps its traceback.

Adding a subcommand is one function and one parser block: write
``cmd_<name>(ctx, args) -> int`` (``ctx.store`` opens the store on first use
and :func:`main` closes it), write ``_parser_<name>(sub)`` that adds the
parser and calls ``set_defaults(func=cmd_<name>)``, and list the block in
:data:`SUBCOMMANDS`. Import heavy modules inside the function: ``--help``
and the listings must not import langchain, pandas or ipywidgets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TextIO

from . import __version__
from .errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from .api import Store
    from .config import LoadedSettings, Settings
    from .schemas import AgentConfig, AgentRecord

PROG = "agentnb"


# -- parsing -----------------------------------------------------------------------
class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``agentnb: error: ...`` plus where to get help."""

    #: Set on subcommands without subcommands of their own: their stray arguments
    #: are reported with their own ``--help`` hint rather than the top-level one.
    leaf = False

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{PROG}: error: {message}\n(see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        namespace, extras = super().parse_known_args(args, namespace)
        if self.leaf and extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def _add_db_option(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        default=default,
        help="store URL for this command (overrides AGENTNB_DATABASE_URL), "
        "e.g. duckdb:///path/agentnb.duckdb or sqlite:///path/agentnb.db",
    )


def _common() -> argparse.ArgumentParser:
    """Options every subcommand also accepts after its name (``agentnb agents list --db URL``)."""
    parent = ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand that does not see --db leaves the top-level value alone.
    _add_db_option(parent, argparse.SUPPRESS)
    return parent


def _show_help(parser: argparse.ArgumentParser) -> Callable[["Context", argparse.Namespace], int]:
    def run(ctx: "Context", args: argparse.Namespace) -> int:
        parser.print_help(ctx.out)
        return 0

    return run


def _group(sub: Any, name: str, help: str) -> tuple[argparse.ArgumentParser, Any]:
    """A command with subcommands (``agentnb agents ...``); alone it prints its help."""
    parser = sub.add_parser(name, help=help, description=help, parents=[_common()])
    parser.set_defaults(func=_show_help(parser))
    return parser, parser.add_subparsers(title="commands", metavar="COMMAND")


def _leaf(sub: Any, name: str, help: str, func: Callable, *, listing: bool = False,
          epilog: str | None = None) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=epilog,
        parents=[_common()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.leaf = True
    if listing:
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=func)
    return parser


# -- running -----------------------------------------------------------------------
class Context:
    """What a subcommand works with: output streams, settings and the store (opened lazily)."""

    def __init__(self, args: argparse.Namespace, out: TextIO | None = None,
                 err: TextIO | None = None) -> None:
        self.args = args
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._loaded: "LoadedSettings | None" = None
        self._store: "Store | None" = None

    @property
    def loaded(self) -> "LoadedSettings":
        """Settings with their sources; ``--db`` wins over the environment."""
        if self._loaded is None:
            from .config import load_settings
            from .errors import ConfigError

            url = getattr(self.args, "db", None)
            try:
                loaded = load_settings(database_url=url)
            except ConfigError as exc:
                if url and "database_url (argument)" in str(exc):
                    raise ConfigError(str(exc).replace("(argument)", "(--db)")) from None
                raise
            if url:
                loaded.sources["database_url"] = "--db"
            self._loaded = loaded
        return self._loaded

    @property
    def settings(self) -> "Settings":
        return self.loaded.settings

    @property
    def store(self) -> "Store":
        """The store (opened on first use, closed by :func:`main`)."""
        if self._store is None:
            from .api import Store

            self._store = Store(self.settings)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            store.close()

    # output helpers
    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def json(self, data: Any) -> None:
        self.out.write(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default) + "\n")

    def note(self, text: str) -> None:
        """A message for the human, on stderr (keeps stdout clean for pipes)."""
        self.err.write(text + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Path)):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _one_line(message: str) -> str:
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return "; ".join(lines) or "failed"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``agentnb`` command; returns the exit status (2 for a user error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    ctx = Context(args)
    try:
        return int(args.func(ctx, args) or 0)
    except UserError as exc:
        ctx.err.write(f"{PROG}: error: {_one_line(str(exc))}\n")
        return 2
    except KeyboardInterrupt:
        ctx.err.write(f"{PROG}: interrupted\n")
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
    finally:
        ctx.close()


# -- text rendering ----------------------------------------------------------------
def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False) if value else "-"
    return str(value)


def _shorten(text: str | None, width: int = 48) -> str:
    if not text:
        return ""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An aligned plain-text table; numbers right-aligned, None as ``-``."""
    rows = list(rows)
    numeric = [
        bool(rows) and all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool)
                           for r in rows)
        for i in range(len(headers))
    ]
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers)] + [line(r) for r in cells])


def format_fields(items: Iterable[tuple[str, Any]]) -> str:
    """``key: value`` lines with the values aligned."""
    items = list(items)
    width = max((len(k) for k, _ in items), default=0) + 1
    out = []
    for key, value in items:
        text = _cell(value)
        lines = text.splitlines() or [""]
        out.append(f"{(key + ':').ljust(width)}  {lines[0]}".rstrip())
        out.extend(" " * (width + 2) + extra for extra in lines[1:])
    return "\n".join(out)


def _listing(ctx: Context, args: argparse.Namespace, data: list[dict[str, Any]],
             headers: Sequence[str], rows: list[Sequence[Any]], empty: str) -> int:
    if args.json:
        ctx.json(data)
    elif not rows:
        ctx.note(empty)
    else:
        ctx.print(format_table(headers, rows))
    return 0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _config_fields(config: "AgentConfig") -> list[tuple[str, Any]]:
    data = config.model_dump(mode="json")
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        if key == "memory":
            items.extend((f"memory.{k}", v) for k, v in value.items())
        else:
            items.append((key, value))
    return items


def _config_value(config: "AgentConfig", key: str) -> Any:
    """The value now in force for a ``key`` as ``agents update`` accepts it."""
    from .agentconfig import MODEL_SETTINGS

    data = config.model_dump(mode="json")
    if key in MODEL_SETTINGS:
        return data["model_kwargs"].get(key)
    if key == "memory":
        return data["memory"]["strategy"]
    value: Any = data
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


# -- init and db ----------------------------------------------------------------------
def cmd_init(ctx: Context, args: argparse.Namespace) -> int:
    """Create or upgrade the store; print where it is and its revision."""
    from .config import mask_url
    from .store import migrate

    store = ctx.store
    with store.db.raw() as conn:
        before = migrate.check_not_newer(conn)
    revision = store.init()
    if before is None:
        state = "created"
    elif before != revision:
        state = f"upgraded from {before}"
    else:
        state = "up to date"
    ctx.print(format_fields([
        ("store", mask_url(store.url)),
        ("schema revision", f"{revision} ({state})"),
    ]))
    return 0


def _revision_text(rev: str | None) -> str:
    return rev if rev is not None else "base (empty)"


def cmd_db_current(ctx: Context, args: argparse.Namespace) -> int:
    """Print the store's schema revision and whether it is the newest."""
    from .config import mask_url
    from .store import migrate

    with ctx.store.db.raw() as conn:
        rev = migrate.current_revision(conn)
    head = migrate.head_revision()
    if args.json:
        ctx.json({"url": mask_url(ctx.store.url), "revision": rev, "head": head,
                  "is_head": rev == head})
        return 0
    if rev is None:
        ctx.print(f"none (empty store; run: {PROG} init)")
    elif rev == head:
        ctx.print(f"{rev} (head)")
    elif not migrate.known_revision(rev):
        ctx.print(f"{rev} (newer than this agentnb, which knows up to {head})")
    else:
        ctx.print(f"{rev} (head is {head}; run: {PROG} db upgrade)")
    return 0


def _migrate(ctx: Context, direction: str, revision: str) -> int:
    from .store import migrate

    with ctx.store.db.raw() as conn:
        before = migrate.current_revision(conn)
        getattr(migrate, direction)(conn, revision)
        after = migrate.current_revision(conn)
    verb = "upgraded" if direction == "upgrade" else "downgraded"
    if before == after:
        ctx.print(f"already at {_revision_text(after)}")
    else:
        ctx.print(f"{verb}: {_revision_text(before)} -> {_revision_text(after)}")
    return 0


def cmd_db_upgrade(ctx: Context, args: argparse.Namespace) -> int:
    """Upgrade the schema to REV (default: head)."""
    return _migrate(ctx, "upgrade", args.revision)


def cmd_db_downgrade(ctx: Context, args: argparse.Namespace) -> int:
    """Downgrade the schema to REV (``base`` removes every table)."""
    return _migrate(ctx, "downgrade", args.revision)


def cmd_db_path(ctx: Context, args: argparse.Namespace) -> int:
    """Print the DuckDB file of the store, or its (masked) URL for other databases."""
    from .config import mask_url
    from .store.connection import duckdb_file

    url = ctx.settings.url
    path = duckdb_file(url)
    ctx.print(str(path) if path is not None else mask_url(url))
    return 0


def _parser_init(sub: Any) -> None:
    _leaf(sub, "init", "create the store, or upgrade it to this agentnb's schema", cmd_init)


def _parser_db(sub: Any) -> None:
    _, db = _group(sub, "db", "the store's schema revision (alembic migrations)")
    p = _leaf(db, "current", "print the store's schema revision", cmd_db_current)
    p.add_argument("--json", action="store_true", help="print JSON")
    p = _leaf(db, "upgrade", "upgrade the schema (default: to head)", cmd_db_upgrade)
    p.add_argument("revision", nargs="?", default="head", metavar="REV",
                   help="target revision (default: head)")
    p = _leaf(db, "downgrade", "downgrade the schema", cmd_db_downgrade)
    p.add_argument("revision", metavar="REV", help="target revision ('base' removes every table)")
    _leaf(db, "path", "print the store's DuckDB file (or its URL, password masked)", cmd_db_path)


# -- config ---------------------------------------------------------------------------
def cmd_config_show(ctx: Context, args: argparse.Namespace) -> int:
    """Each effective setting, its value and where it came from."""
    from .config import mask_url

    loaded = ctx.loaded
    data = []
    for name in type(loaded.settings).model_fields:
        value = getattr(loaded.settings, name)
        if name == "database_url" and value:
            value = mask_url(value)
        if isinstance(value, Path):
            value = str(value)
        data.append({"name": name, "value": value, "source": loaded.sources.get(name, "default")})
    if args.json:
        ctx.json(data)
        return 0
    ctx.print(format_table(["SETTING", "VALUE", "SOURCE"],
                           [(d["name"], _cell(d["value"]), d["source"]) for d in data]))
    exists = "" if loaded.config_file.is_file() else " (not present)"
    ctx.print("")
    ctx.print(format_fields([
        ("store", mask_url(loaded.settings.url)),
        ("config file", f"{loaded.config_file}{exists}"),
    ]))
    return 0


def _parser_config(sub: Any) -> None:
    _, config = _group(sub, "config", "agentnb settings")
    _leaf(config, "show", "each effective setting, its value and where it came from",
          cmd_config_show, listing=True,
          epilog="Settings come from AGENTNB_<NAME> environment variables, then "
                 "AGENTNB_HOME/config.toml, then defaults.")


# -- agents ---------------------------------------------------------------------------
def _agent_json(record: "AgentRecord") -> dict[str, Any]:
    return {
        "id": str(record.id),
        "name": record.name,
        "description": record.description,
        "template": record.template,
        "model": record.config.model,
        "config": record.config.model_dump(mode="json"),
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
    }


def cmd_agents_list(ctx: Context, args: argparse.Namespace) -> int:
    """Every agent, by name."""
    records = ctx.store.agents()
    return _listing(
        ctx, args, [_agent_json(r) for r in records],
        ["NAME", "MODEL", "TEMPLATE", "DESCRIPTION", "UPDATED (UTC)"],
        [(r.name, r.config.model, r.template, _shorten(r.description), r.updated_at)
         for r in records],
        f"no agents yet (create one: {PROG} agents create NAME)",
    )


def _agent_details(ctx: Context, name: str) -> tuple["AgentRecord", dict[str, Any]]:
    store = ctx.store
    record = store.repo.get_agent(name)
    sessions = store.sessions(record.name)
    usage = store.usage("agent", agent=record.name)
    keys = store.keys(record.name)
    totals = {"turns": 0, "messages": 0, "input_tokens": 0, "output_tokens": 0, "tool_calls": 0}
    for row in usage:
        for key in totals:
            totals[key] += getattr(row, key)
    return record, {
        **_agent_json(record),
        "sessions": len(sessions),
        "usage": totals,
        "keys": {"total": len(keys), "active": sum(1 for k in keys if k.is_active)},
    }


def cmd_agents_show(ctx: Context, args: argparse.Namespace) -> int:
    """An agent's config, session count, usage totals and keys."""
    record, data = _agent_details(ctx, args.name)
    if args.json:
        ctx.json(data)
        return 0
    usage = data["usage"]
    items: list[tuple[str, Any]] = [
        ("name", data["name"]),
        ("id", data["id"]),
        ("description", data["description"] or None),
        ("template", data["template"]),
    ]
    items += _config_fields(record.config)
    items += [
        ("sessions", data["sessions"]),
        ("turns", usage["turns"]),
        ("messages", usage["messages"]),
        ("tokens", f"{usage['input_tokens']} in / {usage['output_tokens']} out"),
        ("tool calls", usage["tool_calls"]),
        ("api keys", f"{data['keys']['total']} ({data['keys']['active']} active)"),
        ("created", record.created_at),
        ("updated", record.updated_at),
    ]
    ctx.print(format_fields(items))
    return 0


def cmd_agents_create(ctx: Context, args: argparse.Namespace) -> int:
    """Create an agent (from a template, with overrides)."""
    agent = ctx.store.create_agent(
        args.name,
        model=args.model,
        system=args.system,
        template=args.template,
        description=args.description or "",
    )
    record = agent.record
    if args.json:
        ctx.json(_agent_json(record))
    else:
        source = f" from template {record.template!r}" if record.template else ""
        ctx.print(f"created agent {record.name!r}{source} (model {record.config.model})")
    return 0


def cmd_agents_update(ctx: Context, args: argparse.Namespace) -> int:
    """Rename an agent, change its description, or set config keys."""
    from .agentconfig import parse_assignments

    rename: str | None = None
    description: str | None = None
    config_items: list[str] = []
    for item in args.assignments:
        key, sep, value = item.partition("=")
        # name and description are text as typed, never JSON ("name=007" stays a string)
        if sep and key.strip() == "name":
            rename = value
        elif sep and key.strip() == "description":
            description = value
        else:
            config_items.append(item)
    changes = parse_assignments(config_items)
    record = ctx.store.update_agent(args.name, rename=rename, description=description, **changes)
    if args.json:
        ctx.json(_agent_json(record))
        return 0
    if rename is not None and rename != args.name:
        ctx.print(f"renamed agent {args.name!r} to {record.name!r}")
    for key in changes:
        ctx.print(f"{record.name}: {key} = {_cell(_config_value(record.config, key))}")
    if description is not None:
        ctx.print(f"{record.name}: description = {description}")
    return 0


def _confirm(ctx: Context, question: str, refusal: str) -> bool:
    """Ask on a terminal; refuse (UserError) when stdin is not one."""
    stdin = sys.stdin
    try:
        interactive = bool(stdin is not None and stdin.isatty())
    except (AttributeError, ValueError):
        interactive = False
    if not interactive:
        raise UserError(refusal)
    ctx.err.write(f"{question} [y/N] ")
    ctx.err.flush()
    answer = stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def cmd_agents_delete(ctx: Context, args: argparse.Namespace) -> int:
    """Delete an agent with its sessions, messages, tool calls and keys."""
    store = ctx.store
    record = store.repo.get_agent(args.name)  # unknown name: NotFoundError first
    if not args.yes:
        n_sessions = len(store.sessions(record.name))
        n_keys = len(store.keys(record.name))
        question = (f"delete agent {record.name!r} with {n_sessions} session(s) "
                    f"and {n_keys} API key(s)?")
        if not _confirm(ctx, question,
                        f"not deleting agent {record.name!r} without confirmation; "
                        "use --yes (stdin is not a terminal)"):
            ctx.note("not deleted")
            return 1
    counts = store.delete_agent(record.name)
    ctx.print(
        f"deleted agent {record.name!r} ({counts.get('sessions', 0)} session(s), "
        f"{counts.get('messages', 0)} message(s), {counts.get('api_keys', 0)} key(s))"
    )
    return 0


def _parser_agents(sub: Any) -> None:
    _, agents = _group(sub, "agents", "create, inspect, change and delete agents")
    _leaf(agents, "list", "every agent", cmd_agents_list, listing=True)
    p = _leaf(agents, "show", "an agent's config, sessions, usage and keys", cmd_agents_show,
              listing=True)
    p.add_argument("name", metavar="NAME")
    p = _leaf(agents, "create", "create an agent", cmd_agents_create, listing=True,
              epilog="NAME: a letter, then letters, digits, '-' or '_', at most 64 characters.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--model", metavar="SPEC", help="model spec, e.g. offline or openai:gpt-4o-mini")
    p.add_argument("--system", metavar="TEXT", help="system prompt")
    p.add_argument("--description", metavar="TEXT", help="what the agent is for")
    p.add_argument("--template", metavar="T",
                   help="start from a template (see: agentnb templates list)")
    p = _leaf(
        agents, "update", "rename an agent or change its description or config", cmd_agents_update,
        listing=True,
        epilog="examples:\n"
               "  agentnb agents update calc name=calc2\n"
               "  agentnb agents update calc model=offline temperature=0 memory=window\n"
               "  agentnb agents update calc 'description=Adds numbers' tools=add,mul\n"
               "keys: name, description, model, system, tools, max_iterations, tool_timeout,\n"
               "auto_approve, memory[.<setting>], model_kwargs.<setting>, and model settings\n"
               "such as temperature. Values are JSON when they parse, else text.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    p = _leaf(agents, "delete", "delete an agent and its sessions, messages and keys",
              cmd_agents_delete)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


# -- templates ------------------------------------------------------------------------
def cmd_templates_list(ctx: Context, args: argparse.Namespace) -> int:
    """Built-in and user templates."""
    from .templates import list_templates

    templates = list_templates(ctx.settings)
    data = [
        {"name": t.name, "description": t.description, "source": t.source,
         "model": t.config.model, "config": t.config.model_dump(mode="json")}
        for t in templates
    ]
    return _listing(
        ctx, args, data, ["NAME", "MODEL", "TOOLS", "SOURCE", "DESCRIPTION"],
        [(t.name, t.config.model, t.config.tools, t.source, _shorten(t.description, 60))
         for t in templates],
        "no templates",
    )


def cmd_templates_show(ctx: Context, args: argparse.Namespace) -> int:
    """One template's description and config."""
    from .templates import load_template

    t = load_template(args.name, ctx.settings)
    if args.json:
        ctx.json({"name": t.name, "description": t.description, "source": t.source,
                  "model": t.config.model, "config": t.config.model_dump(mode="json")})
        return 0
    ctx.print(format_fields(
        [("name", t.name), ("description", t.description or None), ("source", t.source)]
        + _config_fields(t.config)
    ))
    return 0


def _parser_templates(sub: Any) -> None:
    _, templates = _group(sub, "templates", "agent templates (built-in and AGENTNB_HOME/templates)")
    _leaf(templates, "list", "every template", cmd_templates_list, listing=True)
    p = _leaf(templates, "show", "a template's description and config", cmd_templates_show,
              listing=True)
    p.add_argument("name", metavar="NAME")


# -- sessions -------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cmd_sessions_list(ctx: Context, args: argparse.Namespace) -> int:
    """Sessions, newest activity first."""
    from .schemas import short_id

    summaries = ctx.store.sessions(args.agent, limit=args.limit)
    data = [
        {
            "id": str(s.session.id),
            "agent": s.agent_name,
            "title": s.session.title,
            "messages": s.messages,
            "turns": s.turns,
            "input_tokens": s.input_tokens,
            "output_tokens": s.output_tokens,
            "first_message": s.first_message,
            "created_at": _iso(s.session.created_at),
            "updated_at": _iso(s.session.updated_at),
            "last_activity": _iso(s.last_activity),
        }
        for s in summaries
    ]
    rows = [
        (short_id(s.session.id), s.agent_name, _shorten(s.session.title or s.first_message, 40),
         s.turns, s.messages, s.input_tokens + s.output_tokens,
         s.last_activity or s.session.updated_at)
        for s in summaries
    ]
    return _listing(ctx, args, data,
                    ["ID", "AGENT", "TITLE", "TURNS", "MESSAGES", "TOKENS", "LAST ACTIVITY (UTC)"],
                    rows, "no sessions")


def cmd_sessions_show(ctx: Context, args: argparse.Namespace) -> int:
    """A session's transcript (as the Markdown export)."""
    text = ctx.store.export(args.id, "json" if args.json else "md")
    ctx.out.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_sessions_export(ctx: Context, args: argparse.Namespace) -> int:
    """A session as Markdown or JSON, on stdout or in a file."""
    text = ctx.store.export(args.id, args.format)
    if not text.endswith("\n"):
        text += "\n"
    if args.output is None or args.output == "-":
        ctx.out.write(text)
        return 0
    path = Path(args.output).expanduser()
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    ctx.note(f"wrote {path}")
    return 0


def _parser_sessions(sub: Any) -> None:
    _, sessions = _group(sub, "sessions", "conversations: list, read, export")
    p = _leaf(sessions, "list", "sessions, newest activity first", cmd_sessions_list, listing=True)
    p.add_argument("--agent", metavar="NAME", help="only this agent's sessions")
    p.add_argument("--limit", metavar="N", type=_positive_int, help="at most N sessions")
    p = _leaf(sessions, "show", "a session's transcript", cmd_sessions_show)
    p.add_argument("id", metavar="ID", help="session id or a unique prefix of it")
    p.add_argument("--json", action="store_true", help="print the JSON export instead")
    p = _leaf(sessions, "export", "a session as Markdown or JSON", cmd_sessions_export)
    p.add_argument("id", metavar="ID", help="session id or a unique prefix of it")
    p.add_argument("--format", choices=["md", "json"], default="md", help="default: md")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")


# -- keys -----------------------------------------------------------------------------
def cmd_keys_create(ctx: Context, args: argparse.Namespace) -> int:
    """A new API key for an agent; the key is printed this once."""
    from .schemas import short_id

    new = ctx.store.create_key(args.agent, args.name)
    record = new.record
    if args.json:
        ctx.json({
            "id": str(record.id), "name": record.name, "agent": args.agent,
            "prefix": record.key_prefix, "key": new.key, "created_at": _iso(record.created_at),
        })
    else:
        ctx.print(f"created API key {record.name!r} for agent {args.agent!r} "
                  f"(id {short_id(record.id)}):")
        ctx.print(new.key)
    ctx.note("This key will not be shown again: store it now (it is kept only as a hash).")
    return 0


def cmd_keys_list(ctx: Context, args: argparse.Namespace) -> int:
    """API keys: prefix and metadata, never the key."""
    from .schemas import short_id

    store = ctx.store
    keys = store.keys(args.agent)
    names = {a.id: a.name for a in store.agents()} if keys else {}
    data = [
        {"id": str(k.id), "prefix": k.key_prefix, "name": k.name,
         "agent": names.get(k.agent_id), "agent_id": str(k.agent_id), "active": k.is_active,
         "created_at": _iso(k.created_at), "last_used_at": _iso(k.last_used_at)}
        for k in keys
    ]
    rows = [
        (short_id(k.id), k.key_prefix + "...", k.name, names.get(k.agent_id), k.is_active,
         k.created_at, k.last_used_at)
        for k in keys
    ]
    return _listing(ctx, args, data,
                    ["ID", "PREFIX", "NAME", "AGENT", "ACTIVE", "CREATED (UTC)",
                     "LAST USED (UTC)"],
                    rows,
                    f"no API keys (create one: {PROG} keys create AGENT)")


def cmd_keys_revoke(ctx: Context, args: argparse.Namespace) -> int:
    """Deactivate a key by id or unique prefix."""
    from .schemas import short_id

    record = ctx.store.revoke_key(args.key_id)
    ctx.print(f"revoked API key {short_id(record.id)} ({record.key_prefix}..., {record.name!r})")
    return 0


def _parser_keys(sub: Any) -> None:
    _, keys = _group(sub, "keys", "API keys of agents")
    p = _leaf(keys, "create", "a new key for an agent (printed once)", cmd_keys_create,
              listing=True)
    p.add_argument("agent", metavar="AGENT")
    p.add_argument("--name", default="default", metavar="N", help="a label for the key")
    p = _leaf(keys, "list", "keys (prefix and metadata only)", cmd_keys_list, listing=True)
    p.add_argument("--agent", metavar="A", help="only this agent's keys")
    p = _leaf(keys, "revoke", "deactivate a key", cmd_keys_revoke)
    p.add_argument("key_id", metavar="KEY_ID", help="key id or a unique prefix of it")


# -- usage ----------------------------------------------------------------------------
def cmd_usage(ctx: Context, args: argparse.Namespace) -> int:
    """Tokens and tool calls grouped by agent, session, model or day."""
    from .schemas import short_id

    rows = ctx.store.usage(args.by, agent=args.agent)
    data = []
    table = []
    for r in rows:
        key = r.key
        shown = key
        if args.by == "session":
            try:
                key = str(uuid.UUID(key))
                shown = short_id(key)
            except ValueError:
                pass
        elif args.by == "model" and not key:
            shown = "(none)"
        data.append({"by": args.by, "key": key, "turns": r.turns, "messages": r.messages,
                     "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
                     "tool_calls": r.tool_calls})
        table.append((shown, r.turns, r.messages, r.input_tokens, r.output_tokens, r.tool_calls))
    return _listing(ctx, args, data,
                    [args.by.upper(), "TURNS", "MESSAGES", "INPUT TOKENS", "OUTPUT TOKENS",
                     "TOOL CALLS"],
                    table, "no usage yet")


def _parser_usage(sub: Any) -> None:
    p = _leaf(sub, "usage", "tokens and tool calls, grouped", cmd_usage, listing=True)
    p.add_argument("--by", choices=["agent", "session", "model", "day"], default="agent",
                   help="group by (default: agent)")
    p.add_argument("--agent", metavar="NAME", help="only this agent")


# -- chat ---------------------------------------------------------------------------
def cmd_chat(ctx: Context, args: argparse.Namespace) -> int:
    """One turn with an agent, streamed to the terminal.

    The answer goes to stdout as it arrives; tool calls and the footer (model,
    tokens, session) go to stderr, so ``agentnb chat a "..." > answer.md``
    keeps just the answer. The turn continues the agent's latest session
    unless ``--new`` or ``--session`` says otherwise. A tool that needs
    approval asks on a terminal and is denied otherwise.
    """
    from .events import ApprovalRequested, Token, ToolCallFinished, ToolCallStarted, TurnError, TurnFinished
    from .schemas import short_id

    message = " ".join(args.message).strip()
    if message == "-":
        message = sys.stdin.read().strip()
    agent = ctx.store.agent(args.agent)
    if args.session:
        agent.resume(args.session)
    elif not args.new:
        agent.resume()

    def approve(event: ApprovalRequested) -> bool:
        if args.yes_tools:
            return True
        if not sys.stdin.isatty():
            ctx.err.write(f"  tool {event.tool_name} needs approval; denied (use --yes-tools)\n")
            return False
        ctx.err.write(f"  run {event.tool_name}({_call_args(event.input_args)})? [y/N] ")
        ctx.err.flush()
        return sys.stdin.readline().strip().lower() in ("y", "yes")

    reply = None
    ended_with_newline = True
    try:
        for event in agent.stream(message, new_session=args.new and not args.session,
                                  model=args.model, tools=not args.no_tools, approve=approve):
            if isinstance(event, Token) and not args.json:
                ctx.out.write(event.text)
                ctx.out.flush()
                ended_with_newline = event.text.endswith("\n")
            elif isinstance(event, ToolCallStarted) and not args.json:
                _newline(ctx, ended_with_newline)
                ended_with_newline = True
                ctx.err.write(f"  -> {event.tool_name}({_call_args(event.input_args)})\n")
            elif isinstance(event, ToolCallFinished) and not args.json:
                result = event.output if event.status == "success" else event.error_message
                result = _one_line(result or "")[:200]
                ms = f" {event.execution_time_ms:.0f} ms" if event.execution_time_ms else ""
                ctx.err.write(f"  <- {event.tool_name}: {event.status}{ms}: {result}\n")
            elif isinstance(event, TurnError) and not args.json:
                _newline(ctx, ended_with_newline)
                ended_with_newline = True
                ctx.err.write(f"  ! {event.message}\n")
            elif isinstance(event, TurnFinished):
                reply = event.reply
    except KeyboardInterrupt:
        _newline(ctx, ended_with_newline)
        ctx.err.write(f"{PROG}: interrupted; the partial answer is stored, marked interrupted\n")
        return 130
    assert reply is not None
    if args.json:
        ctx.json({
            "text": reply.text, "status": reply.status, "error": reply.error,
            "session_id": str(reply.session_id), "model": reply.model,
            "input_tokens": reply.usage.input_tokens, "output_tokens": reply.usage.output_tokens,
            "tool_calls": [{"tool_name": c.tool_name, "input_args": c.input_args,
                            "status": c.status, "output": c.output,
                            "error_message": c.error_message} for c in reply.tool_calls],
        })
    else:
        _newline(ctx, ended_with_newline)
        ctx.err.write(f"[{reply.model} | {reply.usage.input_tokens} in / "
                      f"{reply.usage.output_tokens} out tokens | session "
                      f"{short_id(reply.session_id)} | {reply.status}]\n")
    if reply.status == "error":
        if not args.json:
            ctx.err.write(f"{PROG}: error: the turn failed: {reply.error} (it is stored)\n")
        return 1
    return 0


def _newline(ctx: Context, ended_with_newline: bool) -> None:
    if not ended_with_newline:
        ctx.out.write("\n")
        ctx.out.flush()


def _call_args(args: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def _parser_chat(sub: Any) -> None:
    p = _leaf(sub, "chat", "send a message to an agent and stream the answer", cmd_chat,
              listing=True,
              epilog="The answer streams to stdout; tool calls and the footer go to stderr.\n"
                     "MESSAGE '-' reads the message from stdin.")
    p.add_argument("agent", metavar="AGENT", help="agent name")
    p.add_argument("message", metavar="MESSAGE", nargs="+", help="the message")
    p.add_argument("--new", action="store_true", help="start a new session")
    p.add_argument("--session", "-s", metavar="ID", help="continue this session (id or prefix)")
    p.add_argument("--model", metavar="SPEC", help="use this model for this turn")
    p.add_argument("--no-tools", action="store_true", help="do not offer tools to the model")
    p.add_argument("--yes-tools", action="store_true",
                   help="run tools that need approval without asking")


# -- the parser -----------------------------------------------------------------------
#: Parser blocks, in the order ``agentnb --help`` lists the commands.
SUBCOMMANDS: list[Callable[[Any], None]] = [
    _parser_init,
    _parser_db,
    _parser_config,
    _parser_agents,
    _parser_templates,
    _parser_sessions,
    _parser_keys,
    _parser_usage,
    _parser_chat,
]


def build_parser() -> ArgumentParser:
    """The ``agentnb`` argument parser with every subcommand."""
    parser = ArgumentParser(
        prog=PROG,
        description="Manage an agentnb store: agents, sessions, API keys, usage.",
        epilog="Settings: AGENTNB_HOME (default ~/.agentnb), AGENTNB_DATABASE_URL; "
               "see: agentnb config show",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_db_option(parser, None)
    parser.set_defaults(func=_show_help(parser))
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for block in SUBCOMMANDS:
        block(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
