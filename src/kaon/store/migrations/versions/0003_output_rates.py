"""Deliver workers on several machines share each output's rate limit: the next free sending slot per output.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from kaon.store.ddl import for_dialect

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Owner: kaon.delivery.store.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS output_rates (
        output_id TEXT PRIMARY KEY,
        next_slot_ms INTEGER NOT NULL
    )""",
)


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(for_dialect(statement, op.get_bind().dialect.name))


def downgrade() -> None:
    op.execute("DROP TABLE output_rates")
