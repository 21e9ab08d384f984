"""Audiences and calculated attributes: their definitions, each profile's incremental state and next change time,
current audience memberships and the append-only membership changes.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from kaon.store.ddl import for_dialect

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Owner: kaon.audiences.store.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS segment_definitions (
        workspace_id TEXT NOT NULL,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 0,
        hwm INTEGER,
        cursor INTEGER NOT NULL DEFAULT 0,
        phase TEXT NOT NULL DEFAULT '',
        progress TEXT NOT NULL DEFAULT '{}',
        created_ms INTEGER NOT NULL,
        modified_ms INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, id)
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS segment_definitions_by_name ON segment_definitions (workspace_id, kind, name)",
    "CREATE INDEX IF NOT EXISTS segment_definitions_by_status ON segment_definitions (status)",
    """CREATE TABLE IF NOT EXISTS profile_segments (
        workspace_id TEXT NOT NULL,
        mpid INTEGER NOT NULL,
        state TEXT NOT NULL,
        due_ms INTEGER,
        PRIMARY KEY (workspace_id, mpid)
    )""",
    "CREATE INDEX IF NOT EXISTS profile_segments_by_due ON profile_segments (due_ms)",
    """CREATE TABLE IF NOT EXISTS audience_members (
        workspace_id TEXT NOT NULL,
        audience_id TEXT NOT NULL,
        mpid INTEGER NOT NULL,
        entered_ms INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, audience_id, mpid)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS audience_members_by_profile ON audience_members (workspace_id, mpid)",
    """CREATE TABLE IF NOT EXISTS audience_changes (
        id INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        audience_id TEXT NOT NULL,
        mpid INTEGER NOT NULL,
        action TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        cause TEXT NOT NULL,
        recorded_ms INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS audience_changes_by_audience ON audience_changes (workspace_id, audience_id, at_ms)",
    "CREATE INDEX IF NOT EXISTS audience_changes_by_profile ON audience_changes (workspace_id, mpid)",
)


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(for_dialect(statement, op.get_bind().dialect.name))


def downgrade() -> None:
    for table in ("audience_changes", "audience_members", "profile_segments", "segment_definitions"):
        op.execute(f"DROP TABLE {table}")
