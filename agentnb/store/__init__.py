"""The store: agents, sessions, messages, tool calls and API keys in a database.

``Database`` owns connections and schema; ``Repository`` reads and writes
records. Nothing outside this package sees an ORM object or a connection.
"""

from .database import Database
from .repository import Repository, validate_name

__all__ = ["Database", "Repository", "validate_name"]
