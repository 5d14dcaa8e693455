"""The store itself: status, init, schema migrations, where it is, settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from ..config import duckdb_file, mask_url
from ..render.results import KeyValues, Notice, Table
from ..text import short_id
from .base import Args, Context, Pos, command


def _revision_text(rev: str | None) -> str:
    return rev if rev is not None else "base (empty)"


@command("status", "the store, the current agent and session", aliases=("status",))
def status(ctx: Context, args: Args) -> KeyValues:
    store = ctx.store
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
