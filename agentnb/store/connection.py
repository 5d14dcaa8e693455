"""Connections to the store that share one DuckDB file between processes.

DuckDB lets one process at a time open a database file (STACK.md). Two
notebook kernels and the CLI on one store is the normal case, so a
:class:`ConnectionHolder`:

* keeps one connection while the process is busy (opening costs tens of
  milliseconds, a held connection ~1 ms a transaction) and closes it after
  ``idle_release`` seconds without use;
* waits when another process has the file: retries with jittered exponential
  backoff, bounded by ``lock_timeout``, then raises :class:`StoreLockedError`;
* lets waiters in: a process that is waiting bumps the mtime of a small
  ``<file>.waiters`` file; a holder that sees a recent bump closes its
  connection after the current unit of work and pauses briefly before it
  opens again, so a busy process cannot starve the others.

Every unit of work runs under one re-entrant lock, so threads of one process
(``agent.map`` workers, a widget's task) share the held connection safely.
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref
import random
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from ..errors import StoreLockedError

log = logging.getLogger(__name__)

#: Backoff between attempts to open a locked file: first delay and cap, seconds.
BACKOFF_BASE = 0.005
BACKOFF_CAP = 0.1
#: A waiter's signal counts for this long (seconds).
WAITER_FRESHNESS = 1.0


_LIVE_HOLDERS: "weakref.WeakSet[ConnectionHolder]" = weakref.WeakSet()


@atexit.register
def _release_all() -> None:
    # Close held connections before the interpreter tears duckdb down: this
    # checkpoints the WAL and avoids duckdb's "leaked instance" noise at exit.
    for holder in list(_LIVE_HOLDERS):
        try:
            holder.dispose()
        except Exception:  # pragma: no cover - best effort at exit
            pass


def is_lock_error(exc: BaseException) -> bool:
    """True when ``exc`` says another process holds the DuckDB file."""
    text = str(getattr(exc, "orig", None) or exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def duckdb_file(url: str) -> Path | None:
    """The database file of a ``duckdb:///`` URL (None for memory or other dialects)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "duckdb":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith(":memory:"):
        return None
    return Path(database).expanduser()


def create_store_engine(url: str, lock_timeout: float = 30.0) -> Engine:
    """An engine configured for the dialect: NullPool for DuckDB, timeouts for SQLite."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "duckdb":
        path = duckdb_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # NullPool: closing our Connection really closes the DuckDB connection,
        # which is what releases the file lock. The holder does the pooling.
        return sa.create_engine(url, poolclass=NullPool)
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": lock_timeout, "check_same_thread": False}
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class ConnectionHolder:
    """Owns the process's connection to one store; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        lock_timeout: float = 30.0,
        idle_release: float = 0.5,
    ) -> None:
        self.url = url
        self.lock_timeout = lock_timeout
        self.idle_release = idle_release
        self.engine = create_store_engine(url, lock_timeout)
        self.dialect = self.engine.dialect.name
        self._file = duckdb_file(url)
        self._waiters = (
            self._file.with_name(self._file.name + ".waiters") if self._file else None
        )
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: Connection | None = None
        self._last_used = 0.0
        self._reaper: threading.Thread | None = None
        self._wake = threading.Condition(self._lock)
        self._closed = False
        #: How many times this holder had to wait for another process (for benchmarks).
        self.lock_retries = 0
        self._pause_until = 0.0
        _LIVE_HOLDERS.add(self)

    # -- public -------------------------------------------------------------
    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for one unit of work (autobegun; commit it or it rolls back)."""
        with self._lock:
            self._depth += 1
            try:
                conn = self._ensure_open()
                yield conn
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._after_use()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside a transaction, committed on success, rolled back on error."""
        with self.connect() as conn:
            if conn.in_transaction():
                # Nested unit of work: join the outer transaction.
                yield conn
                return
            with conn.begin():
                yield conn

    def release(self) -> None:
        """Close the held connection now (the file is free for other processes)."""
        with self._lock:
            if self._depth == 0:
                self._close_conn()

    def dispose(self) -> None:
        """Close the connection, stop the reaper and dispose of the engine."""
        with self._lock:
            self._closed = True
            self._close_conn()
            self._wake.notify_all()
        reaper = self._reaper
        if reaper is not None and reaper is not threading.current_thread():
            reaper.join(timeout=2)
        self._reaper = None
        self.engine.dispose()

    @property
    def is_open(self) -> bool:
        """True while this process holds a connection (and so the DuckDB file)."""
        return self._conn is not None

    # -- internals ----------------------------------------------------------
    def _ensure_open(self) -> Connection:
        if self._conn is not None:
            if self._conn.in_transaction() and self._depth == 1:
                self._conn.rollback()  # a previous unit left a transaction behind
            return self._conn
        if self._closed:
            raise RuntimeError("this store has been closed")
        delay = self._pause_until - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._conn = self._open_with_retry()
        return self._conn

    def _open_with_retry(self) -> Connection:
        if self._file is None:
            return self.engine.connect()
        deadline = time.monotonic() + self.lock_timeout
        attempt = 0
        while True:
            try:
                return self.engine.connect()
            except sa.exc.OperationalError as exc:
                if not is_lock_error(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"the store {self._file} is locked by another process "
                        f"and stayed locked for {self.lock_timeout:g} s "
                        "(set AGENTNB_LOCK_TIMEOUT to wait longer)"
                    ) from None
                self.lock_retries += 1
                self._signal_waiting()
                attempt += 1
                cap = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(attempt, 10)))
                time.sleep(random.uniform(BACKOFF_BASE / 2, cap))

    def _signal_waiting(self) -> None:
        assert self._waiters is not None
        try:
            self._waiters.touch()
        except OSError:  # read-only directory: waiters just rely on idle release
            pass

    def _others_waiting(self) -> bool:
        if self._waiters is None:
            return False
        try:
            mtime = self._waiters.stat().st_mtime
        except OSError:
            return False
        return time.time() - mtime < WAITER_FRESHNESS

    def _after_use(self) -> None:
        self._last_used = time.monotonic()
        if self._conn is None:
            return
        if self._file is None:
            return  # other dialects: keep the pooled connection
        if self.idle_release <= 0 or self._others_waiting():
            self._close_conn()
            # Step aside long enough for a waiter's backoff to find the file free.
            self._pause_until = time.monotonic() + random.uniform(0.5, 1.5) * BACKOFF_CAP
            return
        self._start_reaper()
        self._wake.notify_all()

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if conn.in_transaction():
                    conn.rollback()
                conn.close()
            except Exception:  # pragma: no cover - closing must not raise
                log.debug("closing a store connection failed", exc_info=True)

    def _start_reaper(self) -> None:
        if self._reaper is not None and self._reaper.is_alive():
            return
        self._reaper = threading.Thread(
            target=self._reap, name="agentnb-store-release", daemon=True
        )
        self._reaper.start()

    def _reap(self) -> None:
        with self._lock:
            while not self._closed and self._conn is not None:
                idle_for = time.monotonic() - self._last_used
                if self._depth == 0 and idle_for >= self.idle_release:
                    self._close_conn()
                    return
                self._wake.wait(timeout=max(self.idle_release - idle_for, 0.01))
