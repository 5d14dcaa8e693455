"""Ids as users type them: a full UUID or a unique prefix of its hex digits."""

from __future__ import annotations

import re
import uuid

import sqlalchemy as sa

from ..errors import InvalidValueError

_HEX = re.compile(r"^[0-9a-f]+$")
MIN_PREFIX = 4


def parse_id(text: str | uuid.UUID) -> uuid.UUID | tuple[uuid.UUID, uuid.UUID]:
    """A full UUID, or the (lowest, highest) UUIDs that start with a hex prefix."""
    if isinstance(text, uuid.UUID):
        return text
    cleaned = str(text).strip().lower().replace("-", "")
    if not _HEX.match(cleaned) or len(cleaned) > 32:
        raise InvalidValueError(f"not an id: {text!r} (expected hex digits such as 3f2a91c0)")
    if len(cleaned) == 32:
        return uuid.UUID(cleaned)
    if len(cleaned) < MIN_PREFIX:
        raise InvalidValueError(f"id prefix {text!r} is too short (at least {MIN_PREFIX} digits)")
    low = uuid.UUID(cleaned.ljust(32, "0"))
    high = uuid.UUID(cleaned.ljust(32, "f"))
    return low, high


def id_clause(column: sa.ColumnElement, text: str | uuid.UUID) -> sa.ColumnElement[bool]:
    """WHERE clause matching a full id or every id with the given prefix.

    A prefix becomes a range, which compares the same way on DuckDB and
    PostgreSQL (native UUIDs ordered like their text) and SQLite (hex text).
    """
    parsed = parse_id(text)
    if isinstance(parsed, uuid.UUID):
        return column == parsed
    low, high = parsed
    return sa.and_(column >= low, column <= high)
