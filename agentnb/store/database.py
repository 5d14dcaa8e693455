"""A store database: its connection holder and its schema, kept at head.

The schema is created and upgraded only by the shipped migrations. Opening
an older store upgrades it once per process; a store written by a newer
agentnb raises :class:`~agentnb.errors.StoreVersionError` and is not touched.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager, nullcontext
from typing import Iterator

from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError

from ..config import mask_url
from ..errors import ConfigError, StoreLockedError, StoreUnavailableError

from .connection import ConnectionHolder, damaged_error, store_file, unavailable_error
from .pool import PooledHolder, is_server_url, migration_lock

#: The newest schema revision of this agentnb (tests check it is alembic's head).
#: Comparing with it avoids importing alembic when a store is already current.
SCHEMA_HEAD = "0003"


class Database:
    """One store: ``read()`` and ``write()`` give connections with the schema at head."""

    def __init__(
        self,
        url: str,
        *,
        lock_timeout: float = 30.0,
        idle_release: float = 0.5,
        auto_upgrade: bool = True,
    ) -> None:
        self.url = url
        try:
            # A server (PostgreSQL) gets a connection pool; DuckDB/SQLite files the holder
            # that shares one file between processes.
            holder_class = PooledHolder if is_server_url(url) else ConnectionHolder
            self.holder = holder_class(
                url, lock_timeout=lock_timeout, idle_release=idle_release
            )
        except ModuleNotFoundError as exc:
            extra = (" (pip install 'agentnb[postgres]' and write the URL as "
                     "postgresql+psycopg://...)") if url.startswith("postgres") else ""
            raise ConfigError(
                f"the database URL {mask_url(url)} needs the {exc.name!r} driver{extra}"
            ) from None
        except ArgumentError as exc:
            raise ConfigError(f"cannot use database URL {mask_url(url)}: {exc}") from None
        self.auto_upgrade = auto_upgrade
        self._schema_checked = False
        self._schema_lock = threading.Lock()

    @property
    def dialect(self) -> str:
        return self.holder.dialect

    def exists(self) -> bool:
        """True when there is a store at this address (nothing is created to find out).

        A file-based store exists when its file does; on a server, when the
        database answers and holds agentnb's schema (an ``alembic_version`` row).
        """
        file = store_file(self.url)
        if file is not None:
            return file.exists()
        if self.dialect in ("duckdb", "sqlite"):  # in memory: made on demand
            return True
        with self.raw() as conn:
            return _stored_revision(conn) is not None

    def ensure_schema(self) -> None:
        """Create or upgrade the schema to head (once per process)."""
        if self._schema_checked:
            return
        import sqlalchemy as sa

        try:
            self._ensure_schema()
        except (StoreLockedError, StoreUnavailableError):
            raise
        except sa.exc.DBAPIError as exc:
            # A file that opened but cannot be read as a store (SQLite opens lazily)
            if store_file(self.url) is not None:
                raise unavailable_error(exc, self.url) from None
            raise

    def _ensure_schema(self) -> None:
        with self._schema_lock:
            if self._schema_checked:
                return
            with self.holder.connect() as conn:
                if _stored_revision(conn) == SCHEMA_HEAD:
                    self._schema_checked = True
                    return
                from . import migrate

                current = migrate.check_not_newer(conn)
                if conn.in_transaction():
                    conn.rollback()
                if current != migrate.head_revision() and self.auto_upgrade:
                    with migration_lock(conn):  # a server: one process migrates at a time
                        migrate.upgrade(conn, "head")
            self._schema_checked = True

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads; anything left uncommitted is rolled back."""
        self.ensure_schema()
        with self.holder.connect() as conn:
            try:
                yield conn
            finally:
                if conn.in_transaction():
                    conn.rollback()

    @contextmanager
    def write(self, session=None) -> Iterator[Connection]:
        """A connection in a transaction: committed on success, rolled back on error.

        ``session``: the write is a turn of that session (it moves that
        session's write counter, not the store's; see :mod:`.versions`).
        """
        self.ensure_schema()
        versions = self.holder.versions
        if versions is None:
            with self.holder.begin() as conn:
                yield conn
            return
        with self.holder.connect(), versions.writing(session):
            with self.holder.begin() as conn:
                yield conn

    def token(self, session=None) -> tuple | None:
        """What this process knows the file's content by now, or None (see :mod:`.versions`)."""
        return self.holder.token(session)

    @contextmanager
    def raw(self) -> Iterator[Connection]:
        """A connection without the schema check (for ``agentnb db`` commands).

        What it does is not known (migrations write): it counts as a write.
        """
        import sqlalchemy as sa

        versions = self.holder.versions
        with self.holder.connect() as conn, (versions.writing() if versions is not None
                                             else nullcontext()):
            try:
                yield conn
            except sa.exc.DBAPIError as exc:
                # a file that opened but cannot be read (truncated after its header)
                damaged = damaged_error(exc, self.url)
                if damaged is None:
                    raise
                raise damaged from None
            finally:
                if conn.in_transaction():
                    conn.rollback()

    def close(self) -> None:
        """Release the store file and dispose of the engine."""
        self.holder.dispose()


def _stored_revision(conn: Connection) -> str | None:
    """The revision in alembic_version, read with plain SQL (None if there is none)."""
    import sqlalchemy as sa

    if conn.dialect.name == "duckdb" and not conn.in_transaction():
        # every new Store reads it first: on the driver (~1 ms), not through SQLAlchemy's
        # statement compilation and transaction (~10 ms on a busy machine)
        import duckdb

        try:
            rows = conn.connection.driver_connection.execute(
                "select version_num from alembic_version").fetchall()
        except duckdb.Error:
            return None
        return rows[0][0] if len(rows) == 1 else None
    try:
        with conn.begin_nested() if conn.in_transaction() else conn.begin():
            rows = conn.execute(sa.text("select version_num from alembic_version")).fetchall()
    except sa.exc.DBAPIError:
        if conn.in_transaction():
            conn.rollback()
        return None
    finally:
        if conn.in_transaction():
            conn.rollback()
    return rows[0][0] if len(rows) == 1 else None
