"""api key scopes (agent or admin keys) and attrs on tool calls

* ``api_keys.scope``: ``agent`` (a key of one agent, what every key before this
  revision is) or ``admin`` (a key of the whole store, for the HTTP API's admin
  endpoints); ``api_keys.agent_id`` becomes nullable, since an admin key
  belongs to no agent.
* ``tool_calls.attrs``: JSON about a call that is not one of its columns (the
  MCP server a tool came from, say).

DuckDB accepts ``ALTER TABLE`` on a table with secondary indexes only for a
few changes (STACK.md): its indexes are dropped, the columns altered, and the
indexes created again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: The indexes of api_keys as 0001 made them: (name, columns, unique).
API_KEY_INDEXES = [
    ("ix_api_keys_agent_id", ["agent_id"], False),
    ("ix_api_keys_key_hash", ["key_hash"], True),
    ("ix_api_keys_is_active", ["is_active"], False),
    ("ix_api_keys_created_at", ["created_at"], False),
]


def _duckdb() -> bool:
    return op.get_bind().dialect.name == "duckdb"


def _drop_key_indexes() -> None:
    for name, _, _ in API_KEY_INDEXES:
        op.drop_index(name, table_name="api_keys")


def _create_key_indexes() -> None:
    for name, columns, unique in API_KEY_INDEXES:
        op.create_index(name, "api_keys", columns, unique=unique)


def upgrade() -> None:
    op.add_column("tool_calls", sa.Column("attrs", sa.JSON(), nullable=True))
    if _duckdb():
        _drop_key_indexes()
        op.execute("ALTER TABLE api_keys ALTER COLUMN agent_id DROP NOT NULL")
        op.execute("ALTER TABLE api_keys ADD COLUMN scope VARCHAR(16) DEFAULT 'agent'")
        op.execute("UPDATE api_keys SET scope = 'agent' WHERE scope IS NULL")
        op.execute("ALTER TABLE api_keys ALTER COLUMN scope SET NOT NULL")
        _create_key_indexes()
    else:
        with op.batch_alter_table("api_keys") as batch:
            batch.alter_column("agent_id", existing_type=sa.Uuid(), nullable=True)
            batch.add_column(sa.Column("scope", sa.String(length=16), nullable=False,
                                       server_default="agent"))


def downgrade() -> None:
    # Admin keys cannot exist in the older schema (agent_id was required).
    op.execute("DELETE FROM api_keys WHERE agent_id IS NULL")
    if _duckdb():
        _drop_key_indexes()
        op.execute("ALTER TABLE api_keys DROP COLUMN scope")
        op.execute("ALTER TABLE api_keys ALTER COLUMN agent_id SET NOT NULL")
        _create_key_indexes()
        for name in ("ix_tool_calls_message_id", "ix_tool_calls_tool_name",
                     "ix_tool_calls_created_at"):
            op.drop_index(name, table_name="tool_calls")
        op.execute("ALTER TABLE tool_calls DROP COLUMN attrs")
        op.create_index("ix_tool_calls_message_id", "tool_calls", ["message_id"])
        op.create_index("ix_tool_calls_tool_name", "tool_calls", ["tool_name"])
        op.create_index("ix_tool_calls_created_at", "tool_calls", ["created_at"])
    else:
        with op.batch_alter_table("api_keys") as batch:
            batch.drop_column("scope")
            batch.alter_column("agent_id", existing_type=sa.Uuid(), nullable=False)
        with op.batch_alter_table("tool_calls") as batch:
            batch.drop_column("attrs")
