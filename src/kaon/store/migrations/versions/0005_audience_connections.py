"""Audience connections: an audience joined to an output (list sync or triggers), and what each one sent.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from kaon.store.ddl import for_dialect

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Owner: kaon.activation.store.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS audience_connections (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        audience_id TEXT NOT NULL,
        audience_name TEXT NOT NULL,
        output_id TEXT NOT NULL,
        mode TEXT NOT NULL,
        settings TEXT NOT NULL,
        status TEXT NOT NULL,
        change_cursor INTEGER NOT NULL,
        member_cursor INTEGER,
        update_cursor INTEGER NOT NULL DEFAULT 0,
        progress TEXT NOT NULL DEFAULT '{}',
        created_ms INTEGER NOT NULL,
        modified_ms INTEGER NOT NULL,
        UNIQUE (workspace_id, audience_id, output_id)
    )""",
    "CREATE INDEX IF NOT EXISTS audience_connections_by_status ON audience_connections (status)",
    """CREATE TABLE IF NOT EXISTS audience_synced (
        connection_id TEXT NOT NULL,
        mpid INTEGER NOT NULL,
        workspace_id TEXT NOT NULL,
        identities TEXT NOT NULL,
        synced_ms INTEGER NOT NULL,
        PRIMARY KEY (connection_id, mpid)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS audience_synced_by_profile ON audience_synced (workspace_id, mpid)",
    # Profiles whose identities changed, while a workspace has sync connections (pruned once every connection
    # has read them): the sync worker updates what it sent for those that are members.
    """CREATE TABLE IF NOT EXISTS audience_identity_updates (
        id INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        mpid INTEGER NOT NULL,
        at_ms INTEGER NOT NULL
    )""",
    # Owner: kaon.delivery.store (an audience connection's trace: its jobs of one profile).
    "CREATE INDEX IF NOT EXISTS delivery_jobs_by_connection ON delivery_jobs (connection_id, mpid, id)",
)


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(for_dialect(statement, op.get_bind().dialect.name))


def downgrade() -> None:
    op.execute("DROP INDEX delivery_jobs_by_connection")
    for table in ("audience_identity_updates", "audience_synced", "audience_connections"):
        op.execute(f"DROP TABLE {table}")
