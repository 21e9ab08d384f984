"""Role processes: every `kaon serve` process registers itself and beats, so `kaon status` can list them.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from kaon.store.ddl import for_dialect

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Owner: kaon.store.processes.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS processes (
        id TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        address TEXT NOT NULL DEFAULT '',
        version TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        heartbeat_ms INTEGER NOT NULL,
        stopped_ms INTEGER
    )""",
    "CREATE INDEX IF NOT EXISTS processes_by_heartbeat ON processes (heartbeat_ms)",
)


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(for_dialect(statement, op.get_bind().dialect.name))


def downgrade() -> None:
    op.execute("DROP TABLE processes")
