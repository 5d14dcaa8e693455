"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

DuckDB note: a table with an index accepts only ADD (nullable) COLUMN and
SET DEFAULT; anything else must copy the table (see migrations/README).
"""
from alembic import op
import sqlalchemy as sa
import agentnb.store.types
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
