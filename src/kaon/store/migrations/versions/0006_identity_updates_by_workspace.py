"""The sync worker reads a workspace's identity updates after a cursor: an index for that read.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from kaon.store.ddl import for_dialect

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Owner: kaon.activation.store (IdentityUpdates.after and prune).
SCHEMA = (
    "CREATE INDEX IF NOT EXISTS audience_identity_updates_by_workspace ON audience_identity_updates"
    " (workspace_id, id)",
)


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(for_dialect(statement, op.get_bind().dialect.name))


def downgrade() -> None:
    op.execute("DROP INDEX audience_identity_updates_by_workspace")
