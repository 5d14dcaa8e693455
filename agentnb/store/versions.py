"""What this process wrote to a DuckDB file: lets caches skip re-reading it.

DuckDB lets one process at a time open a file for writing, and a
:class:`~agentnb.store.connection.ConnectionHolder` keeps its connection open
while the process works. So while a holder's connection stays open (same
``epoch``), no other process can have changed the file, and every change
made by this process went through a holder of this file. Each holder's
writes bump a counter here, under a lock held from before the transaction
until after its commit:

* ``store``: any write but a turn (agents, sessions' titles and attrs, keys,
  deletes, migrations);
* one counter per session, bumped by :meth:`Repository.append_turn`.

A record read while the token was ``T`` is still what the database holds as
long as the token is still ``T``: that is how a turn skips re-reading the
agent, the session and the session's newest message id (three queries,
~1 ms each) without missing a change from another process, thread or Store.
Writes made through a connection that is not agentnb's (``duckdb.connect``
on the same file in this process) are not counted; the caches see them once
the holder has reopened the file (after ``idle_release``).
"""

from __future__ import annotations

import os
import threading
import uuid
from contextlib import contextmanager
from typing import Hashable, Iterator

#: A token: (holder epoch, store counter, session counter); None when unknown.
Token = tuple


class FileVersions:
    """Write counters of one database file in this process (shared by its holders)."""

    def __init__(self) -> None:
        #: Held (re-entrantly) from before a write transaction until its counters moved.
        self.lock = threading.RLock()
        self.store = 0
        self.sessions: dict[uuid.UUID, int] = {}

    @contextmanager
    def writing(self, session: uuid.UUID | None = None) -> Iterator[tuple[int, int]]:
        """Hold the lock around one write; yields (store, session) counters before it.

        The counter of ``session`` (a turn) or the store's (anything else) moves
        on the way out, committed or not (a rolled-back write only costs a cache
        its entries).
        """
        with self.lock:
            before = (self.store, self.sessions.get(session, 0) if session else 0)
            try:
                yield before
            finally:
                if session is None:
                    self.store += 1
                else:
                    self.sessions[session] = self.sessions.get(session, 0) + 1

    def counters(self, session: Hashable | None = None) -> tuple[int, int]:
        return self.store, (self.sessions.get(session, 0) if session is not None else 0)


_FILES: dict[str, FileVersions] = {}
_FILES_LOCK = threading.Lock()


def versions_for(path: os.PathLike | str) -> FileVersions:
    """The process-wide counters of one file (by real path)."""
    key = os.path.realpath(path)
    with _FILES_LOCK:
        found = _FILES.get(key)
        if found is None:
            found = _FILES[key] = FileVersions()
        return found


__all__ = ["FileVersions", "Token", "versions_for"]
