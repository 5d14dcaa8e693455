"""Copy one store into another: a local DuckDB file to the team's PostgreSQL, and back.

:func:`copy_store` reads every agent, session, message, tool call and key of
the source and writes them into the target, table by table (parents first,
so the target's foreign keys hold), in batches:

* the **target** is migrated to head first, and must be empty unless
  ``merge`` (then rows whose id the target already has are skipped, and an
  agent whose name the target gives to another agent stops the copy);
* everything is written in **one transaction** of the target, verified
  before the commit (row counts, and a SHA-256 over the sorted ids of each
  table), so a failure or a mismatch leaves the target as it was;
* the **source is never modified**: it is opened without auto-upgrade, only
  read, and must already be at this agentnb's schema (a file that does not
  exist is an error, not a new empty store).

Rows go through the tables' column types (UUIDs, JSON, UTC datetimes), so
each dialect gets its own representation (SQLite's hex UUIDs, PostgreSQL's
native ones).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError

from ..config import duckdb_file, mask_url
from ..errors import ConfigError, InvalidValueError, StoreVersionError, UserError
from ..text import excerpt
from .database import SCHEMA_HEAD, Database
from .tables import Agent, ApiKey, ChatSession, Message, ToolCall

#: Tables in the order they are copied: every parent before its children.
TABLES: tuple[sa.Table, ...] = tuple(
    m.__table__ for m in (Agent, ChatSession, Message, ToolCall, ApiKey))  # type: ignore[misc]
#: Rows per INSERT batch (and per progress step).
BATCH = 2000

#: ``progress(table, rows_done, rows_total)``, called after each batch of a table.
Progress = Callable[[str, int, int], None]


@dataclass
class TableCopy:
    """What happened to one table."""

    table: str
    source_rows: int = 0
    copied: int = 0
    skipped: int = 0  #: merge: rows the target already had
    checksum: str = ""  #: SHA-256 over the sorted ids of the source's rows


@dataclass
class CopyReport:
    """The result of :func:`copy_store`: per-table figures and how long it took."""

    source: str
    target: str
    merge: bool
    tables: list[TableCopy] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def copied(self) -> int:
        return sum(t.copied for t in self.tables)

    @property
    def rows_per_second(self) -> float:
        return self.copied / self.seconds if self.seconds > 0 else 0.0


def ids_checksum(ids: list[Any]) -> str:
    """SHA-256 (hex) over the sorted canonical ids: the same on every dialect."""
    digest = hashlib.sha256()
    for text in sorted(str(uuid.UUID(str(i))) for i in ids):
        digest.update(text.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _url(url: str):
    """The parsed URL; a string that is none is a one-line ConfigError."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot use database URL {excerpt(mask_url(str(url)))}: "
                          f"{str(exc).splitlines()[0] if str(exc) else 'not a URL'}") from None


def _require_existing(url: str) -> None:
    """A file store named as the source must exist (opening it would create it)."""
    parsed = _url(url)
    path: Path | None = None
    if parsed.get_backend_name() == "duckdb":
        path = duckdb_file(url)
    elif parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database).expanduser()
    try:
        exists = path is None or path.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long
        exists = False
    if not exists:
        raise UserError(f"no store at {excerpt(str(path), 120)}: nothing to copy from "
                        "(check the path)")


def _same_store(a: str, b: str) -> bool:
    pa, pb = _url(a), _url(b)
    fa, fb = duckdb_file(a), duckdb_file(b)
    if fa is not None and fb is not None:
        try:
            return fa.expanduser().resolve() == fb.expanduser().resolve()
        except (OSError, ValueError):
            return False
    return pa == pb


def open_source(url: str, *, lock_timeout: float = 30.0) -> Database:
    """The source store of a copy: existing, never upgraded, read only."""
    _require_existing(url)
    return _open(url, lock_timeout=lock_timeout, auto_upgrade=False)


def open_target(url: str, *, lock_timeout: float = 30.0) -> Database:
    """The target store of a copy (created or upgraded when the copy starts)."""
    _url(url)
    return _open(url, lock_timeout=lock_timeout)


def _open(url: str, **options) -> Database:
    try:
        return Database(url, **options)
    except (OSError, ValueError) as exc:  # a path with a NUL byte, an unusable directory
        raise ConfigError(f"cannot use database URL {excerpt(mask_url(url))}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None


def _check_source_schema(source: Database) -> None:
    from . import migrate

    with source.raw() as conn:
        revision = migrate.current_revision(conn)
    if revision is None:
        raise UserError(f"{mask_url(source.url)} has no agentnb store (no schema): nothing to copy")
    if revision != SCHEMA_HEAD:
        if not migrate.known_revision(revision):
            raise StoreVersionError(
                f"the source {mask_url(source.url)} has schema revision {revision}, written by a "
                "newer agentnb; copy it with that version (the source was left untouched)")
        raise UserError(
            f"the source {mask_url(source.url)} is at schema revision {revision} (this agentnb "
            f"writes {SCHEMA_HEAD}); upgrade it first with: agentnb --db URL db upgrade "
            "(a copy never changes its source)")


def copy_store(source: Database, target: Database, *, merge: bool = False,
               batch: int = BATCH, progress: Progress | None = None) -> CopyReport:
    """Copy every row of ``source`` into ``target``; see the module docstring."""
    if batch < 1:
        raise InvalidValueError("the batch size must be at least 1")
    if _same_store(source.url, target.url):
        raise UserError("the source and the target are the same store")
    _require_existing(source.url)
    _check_source_schema(source)
    target.ensure_schema()  # create or upgrade the target (refuses a newer one)
    report = CopyReport(source=mask_url(source.url), target=mask_url(target.url), merge=merge)
    started = time.perf_counter()
    with source.raw() as src, target.write() as dst:
        before = {t.name: _count(dst, t) for t in TABLES}
        if not merge and any(before.values()):
            held = ", ".join(f"{n:,} {name}" for name, n in before.items() if n)
            raise UserError(
                f"the target {mask_url(target.url)} is not empty ({held}); copy into an empty "
                "store, or add --merge to add what it does not have yet")
        if merge:
            _check_agent_names(src, dst)
        source_ids: dict[str, list[Any]] = {}
        for table in TABLES:
            info, source_ids[table.name] = _copy_table(src, dst, table, merge, batch, progress)
            report.tables.append(info)
        _verify(dst, report, before, source_ids)
    report.seconds = time.perf_counter() - started
    return report


def _count(conn: Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _check_agent_names(src: Connection, dst: Connection) -> None:
    """Merge: an agent name taken in the target by a different agent stops the copy."""
    agents = Agent.__table__
    theirs = {r.name: r.id for r in dst.execute(sa.select(agents.c.name, agents.c.id))}
    clashes = sorted(r.name for r in src.execute(sa.select(agents.c.name, agents.c.id))
                     if r.name in theirs and theirs[r.name] != r.id)
    if clashes:
        shown = ", ".join(repr(n) for n in clashes[:5]) + (" ..." if len(clashes) > 5 else "")
        raise UserError(
            f"the target already has other agents named {shown}; rename them on one side "
            "(agents update NAME name=NEW) and copy again (nothing was copied)")


def _copy_table(src: Connection, dst: Connection, table: sa.Table, merge: bool, batch: int,
                progress: Progress | None) -> tuple[TableCopy, list[Any]]:
    info = TableCopy(table=table.name, source_rows=_count(src, table))
    columns = [c.name for c in table.c]
    ids: list[Any] = []
    done = 0
    query = sa.select(table).order_by(table.c.id)
    if src.dialect.name == "postgresql":  # a server-side cursor: rows arrive batch by batch
        src = src.execution_options(stream_results=True, yield_per=batch)
    result = src.execute(query)
    while True:
        rows = result.fetchmany(batch)
        if not rows:
            break
        values = [dict(zip(columns, row)) for row in rows]
        ids.extend(v["id"] for v in values)
        if merge:
            have = {row[0] for row in dst.execute(
                sa.select(table.c.id).where(table.c.id.in_([v["id"] for v in values])))}
            fresh = [v for v in values if v["id"] not in have]
            info.skipped += len(values) - len(fresh)
            values = fresh
        if values:
            _insert(dst, table, values)
            info.copied += len(values)
        done += len(rows)
        if progress is not None:
            progress(table.name, done, info.source_rows)
    if progress is not None and done == 0:
        progress(table.name, 0, 0)
    info.checksum = ids_checksum(ids)
    if len(ids) != info.source_rows:  # the source changed while we read it
        raise UserError(f"{table.name}: read {len(ids):,} rows of {info.source_rows:,}; the "
                        "source changed during the copy, copy again (nothing was copied)")
    return info, ids


def _plain(table: sa.Table, values: list[dict[str, Any]]) -> list[list[Any]]:
    """Rows as the driver takes them: naive UTC times (UTCDateTime), JSON as text."""
    json_cols = {c.name for c in table.c if isinstance(c.type, sa.JSON)}
    out = []
    for row in values:
        plain = []
        for name, value in row.items():
            if isinstance(value, datetime):
                value = value.astimezone(timezone.utc).replace(tzinfo=None)
            elif name in json_cols and value is not None:
                value = json.dumps(value)
            plain.append(value)
        out.append(plain)
    return out


def _insert(dst: Connection, table: sa.Table, values: list[dict[str, Any]]) -> None:
    """One batch into the target, the fastest way its driver offers, in its transaction.

    PostgreSQL: ``COPY ... FROM STDIN`` (psycopg); DuckDB: an INSERT from the batch as a
    DataFrame (or, without pandas, multi-row INSERTs: duckdb-engine's executemany goes row
    by row); else SQLAlchemy's executemany.
    """
    columns = list(values[0])
    if dst.dialect.name == "postgresql" and dst.dialect.driver == "psycopg":
        raw = dst.connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in _plain(table, values):
                    copy.write_row(row)
    elif dst.dialect.name == "duckdb":
        raw = dst.connection.driver_connection
        rows = _plain(table, values)
        try:
            import pandas as pd
        except ImportError:  # pandas comes with agentnb[pandas]; without it, slower
            pd = None
        if pd is not None:  # DuckDB scans a DataFrame ~100x faster than it binds parameters
            # dtype=object: values stay as they are (no int -> float for NULLs)
            frame = pd.DataFrame(rows, columns=columns, dtype=object)
            raw.register("agentnb_copy_batch", frame)
            try:
                raw.execute(f"INSERT INTO {table.name} ({', '.join(columns)}) "
                            "SELECT * FROM agentnb_copy_batch")
            finally:
                raw.unregister("agentnb_copy_batch")
            return
        one = "(" + ", ".join(["?"] * len(columns)) + ")"
        for start in range(0, len(rows), 250):
            chunk = rows[start:start + 250]
            raw.execute(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
                        + ", ".join([one] * len(chunk)), [v for r in chunk for v in r])
    else:
        dst.execute(table.insert(), values)


def _verify(dst: Connection, report: CopyReport, before: dict[str, int],
            source_ids: dict[str, list[Any]]) -> None:
    """Counts and id checksums in the target, before the commit (a mismatch rolls back).

    Without merge the target's ids must be exactly the source's; with merge they must
    include them (the checksum is then taken over the source's ids found in the target).
    """
    for info in report.tables:
        table = next(t for t in TABLES if t.name == info.table)
        target_rows = _count(dst, table)
        expected = before[info.table] + info.copied
        if target_rows != expected:
            raise UserError(f"verification failed: {info.table} has {target_rows:,} rows in the "
                            f"target, expected {expected:,} (nothing was copied)")
        target_ids = [r[0] for r in dst.execute(sa.select(table.c.id))]
        if report.merge:
            wanted = {str(uuid.UUID(str(i))) for i in source_ids[info.table]}
            target_ids = [i for i in target_ids if str(uuid.UUID(str(i))) in wanted]
        if ids_checksum(target_ids) != info.checksum:
            raise UserError(f"verification failed: the ids of {info.table} differ between "
                            "source and target (nothing was copied)")


__all__ = ["CopyReport", "TableCopy", "copy_store", "ids_checksum", "open_source",
           "open_target"]
