"""Connections to a database server (PostgreSQL): a real pool, no file hand-over.

A server database lets any number of processes and connections in at once,
so none of :mod:`.connection`'s DuckDB machinery (one held connection per
process, the inter-process gate, idle release) applies. A
:class:`PooledHolder` checks a connection out of SQLAlchemy's ``QueuePool``
for each unit of work and returns it afterwards: threads of one process
(``agent.map`` workers, a widget's task, an HTTP server's requests) each get
their own connection and run at the same time; several processes (notebook
kernels on several hosts, ``agentnb serve --workers N``) simply each have a
pool.

It offers the interface of :class:`~.connection.ConnectionHolder` that
:class:`~.database.Database` uses, with the same nesting rule: a unit of
work opened inside another one on the same thread joins it (same connection,
same transaction).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from ..errors import UserError
from .connection import UnitsOfWork

#: Connections kept open per process, and how many more may be opened when busy.
POOL_SIZE = 5
MAX_OVERFLOW = 10


def is_server_url(url: str) -> bool:
    """True for a database server (pooled), False for DuckDB and SQLite files."""
    return make_url(url).get_backend_name() not in ("duckdb", "sqlite")


#: The key of the advisory lock agentnb's migrations take on PostgreSQL ("agentnb" in ASCII).
MIGRATION_LOCK = 0x6167656E746E62


@contextmanager
def migration_lock(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, hold a session-level advisory lock while the schema is migrated.

    Several processes opening a new team store at once (notebooks on several hosts, the
    workers of ``agentnb serve``) would otherwise race to create the same tables; the
    later ones wait here, then find the schema at head (alembic upgrades from the
    revision it reads, so nothing is done twice). Elsewhere a no-op: a DuckDB file has one
    writer at a time, SQLite serializes writers.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
    conn.commit()
    try:
        yield
    finally:
        if conn.in_transaction():
            conn.rollback()
        conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
        conn.commit()


def plain_postgres_url(url: str) -> str:
    """``postgresql://...`` (SQLAlchemy's default driver, psycopg2) as ``postgresql+psycopg``
    when only psycopg 3 is installed (what ``agentnb[postgres]`` brings): a URL copied
    from elsewhere works as written."""
    import importlib.util

    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres") \
            and importlib.util.find_spec("psycopg2") is None \
            and importlib.util.find_spec("psycopg") is not None:
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def create_server_engine(url: str, lock_timeout: float = 30.0) -> Engine:
    """An engine with a ``QueuePool``; ``lock_timeout`` bounds the wait for a free connection."""
    connect_args = {}
    url = plain_postgres_url(url)
    if make_url(url).get_backend_name() == "postgresql":
        # An unreachable server fails in seconds, not after the OS's TCP timeout.
        connect_args["connect_timeout"] = max(int(min(lock_timeout, 30)), 1)
    return sa.create_engine(
        url,
        pool_pre_ping=True,  # a server restart costs a reconnect, not an error
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        pool_timeout=lock_timeout,
        connect_args=connect_args,
    )


def unreachable_message(url: str, exc: BaseException) -> str:
    """One line: which server (password masked), what it said, what to check."""
    from ..config import mask_url

    text = str(getattr(exc, "orig", None) or exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[0] if lines else type(exc).__name__
    reason = reason.removeprefix("connection failed: ")
    if len(reason) > 200:
        reason = reason[:197] + "..."
    return (f"cannot connect to the store {mask_url(url)}: {reason} "
            "(is the server running, and the URL's user and password right?)")


class PooledHolder(UnitsOfWork):
    """Hands out pooled connections to a database server; see the module docstring."""

    def __init__(self, url: str, *, lock_timeout: float = 30.0, idle_release: float = 0.5) -> None:
        self.url = url
        self.lock_timeout = lock_timeout
        self.idle_release = idle_release  # unused: the pool keeps its connections
        self.engine = create_server_engine(url, lock_timeout)
        self.dialect = self.engine.dialect.name
        self._local = threading.local()
        self._closed = False
        #: The figures ConnectionHolder keeps for benchmarks: a server never makes us wait
        #: for a file, so they stay 0.
        self.lock_retries = 0
        self.max_wait = 0.0
        self.total_wait = 0.0

    #: No per-file write counters here (the DuckDB holder's ``versions``): other processes
    #: write a server at any time, so this process can never vouch for what it last read.
    versions = None

    def token(self, session: object = None) -> None:
        """Always None: nothing read from a server can be reused without asking it again."""
        return None

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A pooled connection for one unit of work (commit it or it rolls back)."""
        held: Connection | None = getattr(self._local, "conn", None)
        if held is not None:  # nested on this thread: join the outer unit of work
            yield held
            return
        if self._closed:
            raise RuntimeError("this store has been closed")
        try:
            opened = self.engine.connect()
        except sa.exc.OperationalError as exc:  # down, unreachable, refused, bad password
            raise UserError(unreachable_message(self.url, exc)) from None
        with opened as conn:
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None
                if conn.in_transaction():
                    conn.rollback()

    def release(self) -> None:
        """Nothing to release: connections go back to the pool after each unit of work."""

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._closed = True
        self.engine.dispose()

    @property
    def is_open(self) -> bool:
        """True while this thread is inside a unit of work."""
        return getattr(self._local, "conn", None) is not None
