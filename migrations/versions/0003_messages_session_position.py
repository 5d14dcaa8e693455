"""an index on messages (session_id, position), on SQLite and PostgreSQL

A session's newest messages (``history(last=50)``, the memory's window) and the
next position of a turn (``max(position)``) are then an index range read, not a
scan and sort of every message of the session: what keeps them flat as a
PostgreSQL team store grows (bench/README.md).

Not on DuckDB, like the foreign keys (tables.py): its min/max zone maps already
prune what these queries read, every secondary index costs its inserts, and a
table with more indexes accepts fewer ALTERs (STACK.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: Where the index exists; the same rule as the foreign keys (agentnb/store/tables.py).
INDEX_DIALECTS = ("sqlite", "postgresql")
NAME = "ix_messages_session_id_position"


def upgrade() -> None:
    if op.get_bind().dialect.name in INDEX_DIALECTS:
        op.create_index(NAME, "messages", ["session_id", "position"])


def downgrade() -> None:
    if op.get_bind().dialect.name in INDEX_DIALECTS:
        op.drop_index(NAME, table_name="messages")
