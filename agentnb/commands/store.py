"""The store itself: status, init, schema migrations, where it is, settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from ..config import duckdb_file, mask_url
from ..errors import UserError
from ..render.results import KeyValues, Notice, Table
from ..text import short_id
from .base import Args, Context, Flag, Opt, Pos, command


def _revision_text(rev: str | None) -> str:
    return rev if rev is not None else "base (empty)"


@command("status", "the store, the current agent and session", aliases=("status",))
def status(ctx: Context, args: Args) -> KeyValues:
    store = ctx.existing_store()
    if store is None:
        # status answers "where am I?": a store not made yet is an answer, not an error
        url = mask_url(ctx.settings.url)
        first = ctx.spell("agents create", "NAME")
        return KeyValues([("store", f"{url} (not created yet: {first} or "
                                    f"{ctx.spell('init')} creates it)"),
                          ("agent", f"(none) - {first}")],
                         title="agentnb", data={"store": url, "exists": False, "agent": None})
    items: list[tuple[str, Any]] = [("store", store.display_url)]
    current = ctx.state.current()
    data: dict[str, Any] = {"store": store.display_url, "agent": None}
    if current is None and ctx.front == "notebook":
        items.append(("agent", f"(none) - {ctx.spell('agents create', 'NAME')}, or "
                               f"{ctx.spell('agents use', 'NAME')}"))
    elif current is None:  # the CLI has no current agent: say what the store holds
        counts = store.counts()
        items += [("agents", counts["agents"]), ("sessions", counts["sessions"]),
                  ("messages", counts["messages"])]
        data.update(agents=counts["agents"], sessions=counts["sessions"],
                    messages=counts["messages"])
    else:
        record = current.refresh().record
        session = current.session_id
        items += [
            ("agent", record.name),
            ("model", record.config.model),
            ("session", short_id(session) if session else
             "(none yet - starts with the first %%chat)" if ctx.front == "notebook"
             else "(the latest, or a new one)"),
            ("tools", list(record.config.tools) or "(none)"),
        ]
        data.update(agent=record.name, model=record.config.model,
                    session=str(session) if session else None, tools=record.config.tools)
    if store.runtime.has_tools:
        names = store.runtime.tools.names()
        items.append(("notebook tools" if ctx.front == "notebook" else "registered tools",
                      names))
        data["registered_tools"] = names
    return KeyValues(items, title="agentnb", data=data)


@command("init", "create the store, or upgrade it to this agentnb's schema", writes=True)
def init(ctx: Context, args: Args) -> KeyValues:
    migration = ctx.store.init()
    before, after = migration.before, migration.after
    if before is None:
        state = "created"
    elif before != after:
        state = f"upgraded from {before}"
    else:
        state = "up to date"
    return KeyValues([("store", ctx.store.display_url),
                      ("schema revision", f"{after} ({state})")],
                     data={"url": ctx.store.display_url, "revision": after, "before": before,
                           "state": state.split()[0]})


@command("db current", "the store's schema revision and whether it is the newest",
         aliases=("db current", "db status"), cli_aliases=("db status",))
def db_current(ctx: Context, args: Args) -> Notice:
    status = ctx.store.schema_status()
    rev, head = status.revision, status.head
    state = status.state
    if state == "empty":
        text = f"none (empty store; run: {ctx.spell('init')})"
    elif state == "head":
        text = f"{rev} (head)"
    elif state == "newer":
        text = f"{rev} (newer than this agentnb, which knows up to {head})"
    else:
        text = f"{rev} (head is {head}; run: {ctx.spell('db upgrade')})"
    return Notice(text, data={"url": status.url, "revision": rev, "head": head,
                              "is_head": status.is_head})


class UpgradeArgs(Args):
    revision: Annotated[str, Pos("REV", "target revision (head, or a revision id)")] = "head"


class DowngradeArgs(Args):
    revision: Annotated[str, Pos("REV", "target revision ('base' removes every table)")]


def _migrated(ctx: Context, direction: str, revision: str) -> Notice:
    migration = ctx.store.migrate(direction, revision)  # type: ignore[arg-type]
    before, after = migration.before, migration.after
    verb = "upgraded" if direction == "upgrade" else "downgraded"
    text = (f"already at {_revision_text(after)}" if before == after
            else f"{verb}: {_revision_text(before)} -> {_revision_text(after)}")
    return Notice(text, "success", data={"before": before, "after": after})


@command("db upgrade", "upgrade the schema (default: to head)", aliases=("db upgrade",),
         writes=True)
def db_upgrade(ctx: Context, args: UpgradeArgs) -> Notice:
    return _migrated(ctx, "upgrade", args.revision)


@command("db downgrade", "downgrade the schema", aliases=("db downgrade",))
def db_downgrade(ctx: Context, args: DowngradeArgs) -> Notice:
    return _migrated(ctx, "downgrade", args.revision)


@command("db path", "the store's DuckDB file (or its URL, secrets masked)",
         aliases=("db path",))
def db_path(ctx: Context, args: Args) -> Notice:
    url = ctx.settings.url
    path = duckdb_file(url)
    text = str(path) if path is not None else mask_url(url)
    return Notice(text, data={"path": str(path) if path else None, "url": mask_url(url)})


@command("config show", "each effective setting, its value and where it came from",
         aliases=("config",),
         epilog="Settings come from AGENTNB_<NAME> environment variables, then "
                "AGENTNB_HOME/config.toml, then defaults.")
def config_show(ctx: Context, args: Args) -> Table:
    assert ctx.loaded_settings is not None
    loaded = ctx.loaded_settings()
    rows, data = [], []
    for name in type(loaded.settings).model_fields:
        value = getattr(loaded.settings, name)
        if name == "database_url" and value:
            value = mask_url(value)
        if isinstance(value, Path):
            value = str(value)
        source = loaded.sources.get(name, "default")
        rows.append([name, value, source])
        data.append({"name": name, "value": value, "source": source})
    exists = "" if loaded.config_file.is_file() else " (not present)"
    title = (f"store: {mask_url(loaded.settings.url)}; "
             f"config file: {loaded.config_file}{exists}")
    return Table(["setting", "value", "source"], rows, title=title, data=data)


# -- db copy (issue 12) --------------------------------------------------------------------
class CopyArgs(Args):
    to: Annotated[str | None, Opt("--to", metavar="URL",
                                  help="copy this store into the store at URL")] = None
    source: Annotated[str | None, Opt("--from", metavar="URL",
                                      help="copy the store at URL into this one")] = None
    merge: Annotated[bool, Flag("--merge", help="the target may hold rows already: add only "
                                "what it does not have")] = False


COPY_EPILOG = """
The target is created or upgraded to this agentnb's schema and must be empty unless
--merge. Everything is written in one transaction, verified (row counts and a checksum
of the ids of each table) before it is committed. The source is never modified.
example: agentnb db copy --to postgresql+psycopg://me@db.example.com/agentnb
"""


class _CopyProgress:
    """A tqdm bar per table on stderr (in a notebook: tqdm's widget); none without tqdm."""

    def __init__(self, front: str) -> None:
        self.front = front
        self.bar: Any = None
        self.table: str | None = None

    def __call__(self, table: str, done: int, total: int) -> None:
        if self.table != table:
            self.close()
            self.table = table
            try:
                if self.front == "notebook":
                    from tqdm.auto import tqdm
                else:
                    from tqdm import tqdm
            except ImportError:  # tqdm comes with agentnb[pandas]
                return
            import sys

            # disable=None: no bar when stderr is not a terminal (a script's log stays clean)
            self.bar = tqdm(total=total, desc=f"{table:<10}", unit="row", leave=True,
                            file=sys.stderr if self.front != "notebook" else None,
                            disable=None if self.front != "notebook" else False)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@command("db copy", "copy every agent, session, message, tool call and key to (or from) "
         "another store", aliases=("db copy",), epilog=COPY_EPILOG, writes=True)
def db_copy(ctx: Context, args: CopyArgs) -> KeyValues:
    if (args.to is None) == (args.source is None):
        raise UserError(f"give one of --to URL or --from URL: {ctx.spell('db copy', '--to URL')}")
    url = (args.to if args.to is not None else args.source) or ""
    if not url.strip():
        raise UserError("give a store URL (duckdb:///path, sqlite:///path, "
                        "postgresql+psycopg://user@host/db)")
    progress = _CopyProgress(ctx.front)
    try:
        if args.to is not None:
            report = ctx.store.copy_to(url.strip(), merge=args.merge, progress=progress)
        else:
            report = ctx.store.copy_from(url.strip(), merge=args.merge, progress=progress)
    finally:
        progress.close()
    items: list[tuple[str, Any]] = [("from", report.source), ("to", report.target)]
    for t in report.tables:
        skipped = f", {t.skipped:,} already there" if t.skipped else ""
        items.append((t.table, f"{t.copied:,} copied{skipped}"))
    items.append(("verified", "row counts and id checksums match"))
    items.append(("took", f"{report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s)"))
    data = {"source": report.source, "target": report.target, "merge": report.merge,
            "seconds": report.seconds,
            "tables": {t.table: {"copied": t.copied, "skipped": t.skipped,
                                 "source_rows": t.source_rows, "ids_sha256": t.checksum}
                       for t in report.tables}}
    return KeyValues(items, title=f"copied {report.copied:,} rows", data=data)
