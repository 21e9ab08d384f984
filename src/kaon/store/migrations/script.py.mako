"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""

from alembic import op

from kaon.store.ddl import for_dialect

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None

# Owner: kaon.<module>. Statements in SQLite's spelling; for_dialect gives PostgreSQL's.
SCHEMA: tuple[str, ...] = ()


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(for_dialect(statement, op.get_bind().dialect.name))


def downgrade() -> None:
    raise NotImplementedError
