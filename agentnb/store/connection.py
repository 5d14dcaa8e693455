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
  ``<file>.waiters`` file; a holder that sees a recent bump by someone else
  closes its connection after the current unit of work (or at once when
  idle) and pauses briefly before it opens again, so a busy process cannot
  starve the others;
* hands over quickly: on POSIX, agentnb processes also hold an exclusive
  ``flock`` on that ``.waiters`` file while they have the database open (one
  per process, shared by the process's holders, which DuckDB lets share the
  file). Waiting for that lock is a cheap syscall polled every few
  milliseconds, where retrying ``duckdb.connect`` costs milliseconds a try
  and needed long backoff sleeps; the file changes hands within ~2 ms of its
  release. Processes that do not take the gate (a raw ``duckdb`` session,
  ``duckdb`` CLI) are still handled by retrying the open with backoff.

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
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from ..config import duckdb_file
from ..errors import StoreLockedError, StoreUnavailableError
from .versions import versions_for

log = logging.getLogger(__name__)

#: Backoff between attempts to open a locked file: first delay and cap, seconds.
BACKOFF_BASE = 0.005
BACKOFF_CAP = 0.1
#: A waiter's signal counts for this long (seconds); waiters renew it every WAITER_TOUCH.
WAITER_FRESHNESS = 0.25
WAITER_TOUCH = 0.02
#: Polling interval of the inter-process gate (seconds, jittered up to twice this).
GATE_POLL = 0.002
#: How long a holder that stepped aside for waiters stays away (seconds, jittered).
STEP_ASIDE = 0.01
#: A busy holder keeps the file this long after opening it even when others wait
#: (opening and closing cost tens of ms: hand over per batch, not per turn).
HOLD_QUANTUM = 0.15

try:  # POSIX: an inter-process gate with fast hand-over; elsewhere backoff only.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class _Gate:
    """A process-wide exclusive ``flock`` on one file, shared by the process's holders.

    Counted: taken when the first holder of this process opens the database,
    dropped when the last one closes it (holders of one process share the
    DuckDB instance, so they need not exclude each other).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.count = 0
        self.fd: int | None = None
        self.usable = fcntl is not None
        #: The file's mtime when this process opened it: a file this process just created
        #: has a fresh mtime, which is not a waiter's signal (see _others_waiting).
        self.opened_mtime = 0.0

    def try_acquire(self) -> bool:
        """Take (or join) the gate without waiting; True when this process has it."""
        with self.lock:
            if self.count > 0:
                self.count += 1
                return True
            if not self.usable:
                self.count += 1
                return True
            try:
                if self.fd is None:
                    self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
                    self.opened_mtime = os.fstat(self.fd).st_mtime
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            except OSError:  # read-only directory, odd filesystem: backoff only
                self.usable = False
            self.count += 1
            return True

    def release(self) -> None:
        with self.lock:
            self.count = max(self.count - 1, 0)
            if self.count == 0 and self.fd is not None and self.usable:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_UN)
                except OSError:  # pragma: no cover
                    log.debug("releasing the store gate failed", exc_info=True)


_GATES: dict[str, _Gate] = {}
_GATES_LOCK = threading.Lock()


def _forget_gates_after_fork() -> None:
    # A forked child shares the parent's open file description, and so its
    # flock: close the child's copies (without unlocking, which would unlock
    # the parent too) so a child outliving its parent cannot keep the gate.
    # The child falls back to backoff only (DuckDB is not fork-safe anyway).
    for gate in _GATES.values():
        if gate.fd is not None:
            try:
                os.close(gate.fd)
            except OSError:  # pragma: no cover
                pass
        gate.fd = None
        gate.usable = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_gates_after_fork)


def _gate_for(path: Path) -> _Gate:
    key = os.path.realpath(path)
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = _Gate(path)
        return gate


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


#: The settings of the store's DuckDB instance. DuckDB keeps them per database
#: instance, not per connection, and ``lock_configuration`` cannot be undone:
#: a setting the store itself needs must be made before the lock (add it first).
DUCKDB_LOCKDOWN = (
    "SET enable_external_access = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET lock_configuration = true",
)


def lock_down_duckdb(dbapi_conn: Any) -> None:
    """Apply :data:`DUCKDB_LOCKDOWN` to a new DuckDB connection's instance (once).

    Connections of one process share the instance: a later connection finds it
    locked already and leaves it as it is.
    """
    locked = dbapi_conn.execute("SELECT current_setting('lock_configuration')").fetchone()[0]
    if locked:
        return
    for statement in DUCKDB_LOCKDOWN:
        dbapi_conn.execute(statement)


def store_file(url: str) -> Path | None:
    """The file of a file-based store (DuckDB or SQLite), None for memory or a server."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "duckdb":
        return duckdb_file(url)
    if backend == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database).expanduser()
    return None


_DAMAGED = ("not a valid duckdb database", "could not read enough bytes", "file is not a database",
            "database disk image is malformed", "serialization error", "corrupt",
            "checksum", "invalid database file")


def damaged_error(exc: BaseException, url: str) -> StoreUnavailableError | None:
    """The one-line error when ``exc`` (raised while using a file store) says the file is
    damaged or cannot be read or written; None for any other error."""
    if store_file(url) is None:
        return None
    orig = getattr(exc, "orig", None) or exc
    low = str(orig).lower()
    if any(word in low for word in _DAMAGED) or "permission denied" in low \
            or "read-only file system" in low:
        return unavailable_error(exc, url)
    return None


def unavailable_error(exc: BaseException, url: str) -> StoreUnavailableError:
    """One line for a store that cannot be opened: what is wrong with which file, what to do."""
    from ..config import mask_url

    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    low = text.lower()
    file = store_file(url)
    if file is None:
        return StoreUnavailableError(
            f"cannot reach the store at {mask_url(url)}: {text} "
            "(check that the server is running and the URL is right)"
        )
    if any(word in low for word in _DAMAGED):
        return StoreUnavailableError(
            f"the store {file} is damaged or is not an agentnb store ({text}); it was left "
            "untouched: move it aside to start a new store there, or restore it from a backup"
        )
    if isinstance(orig, PermissionError) or "permission denied" in low:
        return StoreUnavailableError(
            f"cannot open the store {file}: permission denied; give this user read and write "
            "access to it and its folder, or set AGENTNB_HOME to a folder of your own"
        )
    if "read-only file system" in low:
        return StoreUnavailableError(
            f"cannot open the store {file}: its file system is read-only; "
            "set AGENTNB_HOME to a writable folder"
        )
    if "is a directory" in low or file.is_dir():
        return StoreUnavailableError(
            f"cannot open the store {file}: it is a folder, not a store file; "
            "move it aside or choose another store file"
        )
    return StoreUnavailableError(
        f"cannot open the store {file}: {text} (set AGENTNB_HOME to a writable folder, "
        "or choose another store)"
    )


def is_lock_error(exc: BaseException) -> bool:
    """True when ``exc`` says another process holds the DuckDB file."""
    text = str(getattr(exc, "orig", None) or exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def create_store_engine(url: str, lock_timeout: float = 30.0) -> Engine:
    """An engine configured for the dialect: NullPool for DuckDB, timeouts for SQLite."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "duckdb":
        # NullPool: closing our Connection really closes the DuckDB connection,
        # which is what releases the file lock. The holder does the pooling.
        # duckdb_dialect: duckdb-engine's dialect without DuckDB's default database.
        from .duckdb_dialect import DRIVER

        engine = sa.create_engine(parsed.set(drivername=f"duckdb+{DRIVER}"), poolclass=NullPool)

        @sa.event.listens_for(engine, "connect")
        def _duckdb_lockdown(dbapi_conn, _record):
            # No files, network, extension installs or setting changes for
            # anything run on this instance (user SQL above all: readonly.py).
            lock_down_duckdb(dbapi_conn)

        return engine
    if backend == "sqlite":
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


class UnitsOfWork:
    """``begin()`` over a holder's ``connect()``: the one nesting rule of both holders."""

    def connect(self) -> Any:  # pragma: no cover - each holder has its own
        raise NotImplementedError

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


class ConnectionHolder(UnitsOfWork):
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
        self._gate = _gate_for(self._waiters) if self._waiters is not None else None
        self._gated = False
        self._last_touch = 0.0
        self._last_touch_mono = 0.0
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: Connection | None = None
        self._last_used = 0.0
        self._reaper: threading.Thread | None = None
        self._wake = threading.Condition(self._lock)
        self._closed = False
        #: How many times this holder had to wait for another process (for benchmarks).
        self.lock_retries = 0
        #: Seconds spent waiting for other processes: longest single wait, and in total.
        self.max_wait = 0.0
        self.total_wait = 0.0
        self._pause_until = 0.0
        self._opened_at = 0.0
        #: Bumped each time the connection is (re)opened: see :mod:`.versions`.
        self.epoch = 0
        self._pid = os.getpid()
        #: This process's write counters of the file (None: not a DuckDB file).
        self.versions = versions_for(self._file) if self._file is not None else None
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

    def token(self, session=None) -> tuple | None:
        """What the file's content is known by now (see :mod:`.versions`), or None.

        None unless this holder has the file open now (in this process): only
        then can nothing outside this process have changed it.
        """
        if self._conn is None or self.versions is None or self._pid != os.getpid():
            return None
        return (id(self), self.epoch, *self.versions.counters(session))

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
        self._opened_at = time.monotonic()
        self.epoch += 1
        return self._conn

    def _open_with_retry(self) -> Connection:
        try:
            return self._open_or_wait()
        except (StoreLockedError, StoreUnavailableError):
            raise
        except (sa.exc.DBAPIError, OSError) as exc:
            raise unavailable_error(exc, self.url) from None

    def _make_folder(self) -> None:
        # Made when the store is first opened, never when an engine is only built:
        # a command that does not create a store must not create its folder either.
        file = store_file(self.url)
        if file is not None and not file.parent.is_dir():
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailableError(
                    f"cannot create the folder of the store {file}: {exc.strerror or exc}; "
                    "set AGENTNB_HOME to a folder this user can write"
                ) from None

    def _open_or_wait(self) -> Connection:
        self._make_folder()
        if self._file is None:
            return self.engine.connect()
        start = time.monotonic()
        deadline = start + self.lock_timeout
        waited = self._enter_gate(deadline)
        attempt = 0
        try:
            while True:
                try:
                    conn = self.engine.connect()
                    break
                except sa.exc.OperationalError as exc:
                    if not is_lock_error(exc):
                        raise
                    if time.monotonic() >= deadline:
                        raise self._locked_error() from None
                    self.lock_retries += 1
                    self._signal_waiting()
                    attempt += 1
                    cap = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(attempt, 10)))
                    time.sleep(random.uniform(BACKOFF_BASE / 2, cap))
        except BaseException:
            self._leave_gate()
            raise
        if waited or attempt:
            wait = time.monotonic() - start
            self.total_wait += wait
            self.max_wait = max(self.max_wait, wait)
        return conn

    def _locked_error(self) -> StoreLockedError:
        return StoreLockedError(
            f"the store {self._file} is locked by another process "
            f"and stayed locked for {self.lock_timeout:g} s "
            "(set AGENTNB_LOCK_TIMEOUT to wait longer)"
        )

    def _enter_gate(self, deadline: float) -> bool:
        """Wait (polling, bounded by ``deadline``) for this process's turn at the gate.

        True when it had to wait.
        """
        gate = self._gate
        if gate is None or self._gated:
            return False
        waited = False
        start = time.monotonic()
        while not gate.try_acquire():
            waited = True
            if time.monotonic() >= deadline:
                raise self._locked_error()
            self.lock_retries += 1
            now = time.monotonic()
            if now - self._last_touch_mono >= WAITER_TOUCH:
                self._last_touch_mono = now
                self._signal_waiting()
            # Age priority: the longer a process has waited, the faster it polls,
            # so it wins the next hand-over against newcomers (no starvation).
            poll = GATE_POLL / (1.0 + 20.0 * (now - start))
            time.sleep(max(random.uniform(poll / 2, poll * 2), 0.0002))
        self._gated = True
        return waited

    def _leave_gate(self) -> None:
        if self._gated and self._gate is not None:
            self._gated = False
            self._gate.release()

    def _signal_waiting(self) -> None:
        assert self._waiters is not None
        try:
            self._waiters.touch()
            self._last_touch = time.time()
        except OSError:  # read-only directory: waiters just rely on idle release
            pass

    def _others_waiting(self) -> bool:
        if self._waiters is None:
            return False
        try:
            mtime = self._waiters.stat().st_mtime
        except OSError:
            return False
        # A bump of our own (made while we waited) does not count, nor the file's creation
        # by this process's gate: a new store would hand its file over (and reopen it) for
        # WAITER_FRESHNESS after creating it. A real waiter touches it again within
        # WAITER_TOUCH, so the one signal this could hide is renewed at once.
        seen = max(self._last_touch, self._gate.opened_mtime if self._gate is not None else 0.0)
        return mtime > seen and time.time() - mtime < WAITER_FRESHNESS

    def _after_use(self) -> None:
        self._last_used = time.monotonic()
        if self._conn is None:
            return
        if self._file is None:
            return  # other dialects: keep the pooled connection
        held_for = self._last_used - self._opened_at
        if self.idle_release <= 0 or (held_for >= HOLD_QUANTUM and self._others_waiting()):
            self._close_conn()
            # Step aside long enough for a waiter's backoff to find the file free.
            step = STEP_ASIDE if self._gate is not None and self._gate.usable else BACKOFF_CAP
            self._pause_until = time.monotonic() + random.uniform(0.5, 1.5) * step
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
        self._leave_gate()

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
                if self._depth == 0 and (
                    idle_for >= self.idle_release or self._others_waiting()
                ):
                    self._close_conn()
                    return
                # Wake often enough to let a waiting process in before idle_release.
                self._wake.wait(timeout=min(max(self.idle_release - idle_for, 0.01), 0.02))
