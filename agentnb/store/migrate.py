"""Run the shipped alembic migrations against a store, from code.

The alembic environment ships inside the wheel as ``agentnb.migrations``
(the top-level ``migrations/`` folder of the repository), so an installed
agentnb can create and upgrade a store without an ``alembic.ini``.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection

from ..errors import InvalidValueError, StoreVersionError


class DuckDBImpl(DefaultImpl):
    """Teaches alembic the ``duckdb`` dialect (without it: ``KeyError: 'duckdb'``)."""

    __dialect__ = "duckdb"
    transactional_ddl = False


def script_location() -> Path:
    """Folder of the shipped alembic environment."""
    return Path(str(resources.files("agentnb.migrations")))


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic ``Config`` built in code; ``connection`` is used by env.py."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this agentnb knows."""
    head = script_directory().get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The store's revision, or None for an empty database."""
    return MigrationContext.configure(connection).get_current_revision()


def known_revision(revision: str) -> bool:
    try:
        return script_directory().get_revision(revision) is not None
    except Exception:
        return False


def check_not_newer(connection: Connection) -> str | None:
    """Raise :class:`StoreVersionError` when the store is from a newer agentnb."""
    current = current_revision(connection)
    if current is not None and not known_revision(current):
        raise StoreVersionError(
            f"this store has schema revision {current}, written by a newer agentnb than this one "
            f"(which knows up to {head_revision()}); upgrade agentnb (pip install -U agentnb). "
            "The store was left untouched."
        )
    return current


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade the store to ``revision`` (default: the newest)."""
    check_not_newer(connection)
    _run(command.upgrade, connection, revision)


def downgrade(connection: Connection, revision: str) -> None:
    """Downgrade the store to ``revision`` (``base`` removes every table)."""
    check_not_newer(connection)
    _run(command.downgrade, connection, revision)


_REVISION = re.compile(r"^(head|heads|base|[0-9A-Za-z_]{1,32}([+-]\d{1,3})?)$")


def _run(fn, connection: Connection, revision: str) -> None:
    from ..text import excerpt

    known = ", ".join(["base", *sorted(r.revision for r in script_directory().walk_revisions()),
                       "head"])
    if not isinstance(revision, str) or not _REVISION.match(revision):
        raise InvalidValueError(f"not a schema revision: {excerpt(revision)} (known: {known})")
    cfg = alembic_config(connection)
    try:
        fn(cfg, revision)
    except CommandError:
        raise InvalidValueError(
            f"cannot migrate to {excerpt(revision)}: no such revision (known: {known})") from None
    if connection.in_transaction():
        connection.commit()
