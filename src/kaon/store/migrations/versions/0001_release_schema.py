"""The schema as released before versioned migrations (0.1.0), per owner; older stores brought up to it.

Revision ID: 0001
Revises: (none)

A store made by 0.1.0 has these tables but no version table: every statement is idempotent (`IF NOT EXISTS`), so
upgrading such a store creates only what it lacks, and the column probes below bring stores older than 0.1.0 up
to it (SQLite only: PostgreSQL stores start at this revision).
"""

from alembic import op
from sqlalchemy import Connection

from kaon.store.ddl import for_dialect

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Owner module -> its tables' definitions (SQLite spelling; kaon.store.ddl gives the PostgreSQL form).
SCHEMA: dict[str, tuple[str, ...]] = {
    "kaon.store.config": (
        """CREATE TABLE IF NOT EXISTS workspaces (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}'
    )""",
        """CREATE TABLE IF NOT EXISTS inputs (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        platform TEXT NOT NULL,
        key TEXT NOT NULL UNIQUE,
        secret_hash TEXT,
        secret_sealed TEXT,
        allow_key_only INTEGER NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        rate_limit_rps REAL,
        created_ms INTEGER NOT NULL,
        UNIQUE (workspace_id, name)
    )""",
        """CREATE TABLE IF NOT EXISTS config_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )""",
        "INSERT OR IGNORE INTO config_version (id, version) VALUES (1, 1)",
    ),
    "kaon.store.tokens": (
        """CREATE TABLE IF NOT EXISTS admin_tokens (
        token_hash TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        name TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    )""",
    ),
    "kaon.store.offsets": (
        """CREATE TABLE IF NOT EXISTS log_offsets (
        partition TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    )""",
    ),
    "kaon.store.events": (
        """CREATE TABLE IF NOT EXISTS batches (
        id INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        input_id TEXT NOT NULL,
        received_ms INTEGER NOT NULL,
        body BLOB NOT NULL
    )""",
        """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        input_id TEXT NOT NULL,
        batch_id INTEGER NOT NULL,
        mpid INTEGER,
        event_type TEXT NOT NULL,
        event_name TEXT,
        source_message_id TEXT NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        environment TEXT NOT NULL,
        body BLOB NOT NULL
    )""",
        "CREATE INDEX IF NOT EXISTS events_by_workspace ON events (workspace_id, id)",
        "CREATE INDEX IF NOT EXISTS events_by_profile ON events (workspace_id, mpid)",
        "CREATE INDEX IF NOT EXISTS events_by_received ON events (workspace_id, received_ms)",
    ),
    "kaon.store.dedup": (
        """CREATE TABLE IF NOT EXISTS message_ids (
        workspace_id TEXT NOT NULL,
        source_message_id TEXT NOT NULL,
        seen_ms INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, source_message_id)
    ) WITHOUT ROWID""",
        "CREATE INDEX IF NOT EXISTS message_ids_by_age ON message_ids (seen_ms)",
    ),
    "kaon.store.metrics": (
        """CREATE TABLE IF NOT EXISTS input_stats (
        workspace_id TEXT NOT NULL,
        input_id TEXT NOT NULL,
        hour_ms INTEGER NOT NULL,
        metric TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        count INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, input_id, hour_ms, metric, reason)
    ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS rejections (
        id INTEGER PRIMARY KEY,
        workspace_id TEXT,
        input_id TEXT,
        received_ms INTEGER NOT NULL,
        status INTEGER NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        path TEXT,
        count INTEGER NOT NULL,
        body BLOB
    )""",
        "CREATE INDEX IF NOT EXISTS rejections_by_workspace ON rejections (workspace_id, id)",
    ),
    "kaon.store.outputs": (
        """CREATE TABLE IF NOT EXISTS outputs (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        name TEXT NOT NULL,
        destination TEXT NOT NULL,
        settings TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        UNIQUE (workspace_id, name)
    )""",
        """CREATE TABLE IF NOT EXISTS connections (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        input_id TEXT NOT NULL,
        output_id TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        rules TEXT NOT NULL DEFAULT '{}',
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    )""",
        "CREATE INDEX IF NOT EXISTS connections_by_input ON connections (workspace_id, input_id)",
    ),
    "kaon.identity.store": (
        """CREATE TABLE IF NOT EXISTS profiles (
        workspace_id TEXT NOT NULL,
        mpid INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        session_count INTEGER NOT NULL DEFAULT 0,
        is_opted_out INTEGER NOT NULL DEFAULT 0,
        consent TEXT NOT NULL DEFAULT '{}',
        merged_into INTEGER,
        PRIMARY KEY (workspace_id, mpid)
    )""",
        """CREATE TABLE IF NOT EXISTS identities (
        workspace_id TEXT NOT NULL,
        identity_type TEXT NOT NULL,
        value TEXT NOT NULL,
        mpid INTEGER NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, identity_type, value)
    ) WITHOUT ROWID""",
        "CREATE INDEX IF NOT EXISTS identities_by_profile ON identities (workspace_id, mpid, identity_type)",
        """CREATE TABLE IF NOT EXISTS profile_attributes (
        workspace_id TEXT NOT NULL,
        mpid INTEGER NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_ms INTEGER NOT NULL,
        -- 1: removed at updated_ms (a tombstone, so an older set arriving later does not bring it back)
        deleted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (workspace_id, mpid, name)
    ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS merges (
        id INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        survivor_mpid INTEGER NOT NULL,
        merged_mpid INTEGER NOT NULL,
        reason TEXT NOT NULL,
        actor TEXT NOT NULL,
        merged_ms INTEGER NOT NULL,
        snapshot BLOB NOT NULL,
        undone_ms INTEGER,
        undone_by TEXT
    )""",
        "CREATE INDEX IF NOT EXISTS merges_by_profile ON merges (workspace_id, survivor_mpid)",
        "CREATE INDEX IF NOT EXISTS merges_by_merged ON merges (workspace_id, merged_mpid)",
        """CREATE TABLE IF NOT EXISTS alias_requests (
        id INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        source_mpid INTEGER NOT NULL,
        destination_mpid INTEGER NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        requested_ms INTEGER NOT NULL,
        due_ms INTEGER NOT NULL,
        done_ms INTEGER,
        events_copied INTEGER NOT NULL DEFAULT 0
    )""",
    ),
    "kaon.delivery.store": (
        """CREATE TABLE IF NOT EXISTS delivery_jobs (
        id INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        output_id TEXT NOT NULL,
        connection_id TEXT NOT NULL,
        event_id INTEGER NOT NULL,
        mpid INTEGER,
        created_ms INTEGER NOT NULL,
        payload BLOB NOT NULL
    )""",
        "CREATE INDEX IF NOT EXISTS delivery_jobs_by_event ON delivery_jobs (event_id)",
        "CREATE INDEX IF NOT EXISTS delivery_jobs_by_output ON delivery_jobs (output_id, created_ms)",
        """CREATE TABLE IF NOT EXISTS delivery_pending (
        job_id INTEGER PRIMARY KEY,
        output_id TEXT NOT NULL,
        mpid INTEGER,
        next_attempt_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        first_attempt_ms INTEGER
    )""",
        "CREATE INDEX IF NOT EXISTS delivery_pending_by_output ON delivery_pending (output_id, mpid, job_id)",
        "CREATE INDEX IF NOT EXISTS delivery_pending_in_order ON delivery_pending (output_id, job_id)",
        "CREATE INDEX IF NOT EXISTS delivery_pending_by_due ON delivery_pending (output_id, next_attempt_ms)",
        """CREATE TABLE IF NOT EXISTS delivery_attempts (
        id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL,
        output_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        state TEXT NOT NULL,
        terminal INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        latency_ms INTEGER,
        status INTEGER,
        error TEXT
    )""",
        "CREATE INDEX IF NOT EXISTS delivery_attempts_by_job ON delivery_attempts (job_id, id)",
        "CREATE INDEX IF NOT EXISTS delivery_attempts_by_output ON delivery_attempts (output_id, at_ms)",
        """CREATE TABLE IF NOT EXISTS delivery_drops (
        event_id INTEGER NOT NULL,
        connection_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (event_id, connection_id)
    ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS output_stats (
        workspace_id TEXT NOT NULL,
        output_id TEXT NOT NULL,
        connection_id TEXT NOT NULL DEFAULT '',
        hour_ms INTEGER NOT NULL,
        metric TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        count INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, output_id, connection_id, hour_ms, metric, reason)
    ) WITHOUT ROWID""",
    ),
    "kaon.governance.catalog_store": (
        """CREATE TABLE IF NOT EXISTS catalog_points (
        workspace_id TEXT NOT NULL,
        point_id TEXT NOT NULL,
        point_type TEXT NOT NULL,
        name TEXT NOT NULL,
        custom_event_type TEXT NOT NULL,
        PRIMARY KEY (workspace_id, point_id)
    ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS catalog_series (
        id INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        point_id TEXT NOT NULL,
        input_id TEXT NOT NULL,
        environment TEXT NOT NULL,
        attributes TEXT NOT NULL,
        UNIQUE (workspace_id, point_id, input_id, environment, attributes)
    )""",
        """CREATE TABLE IF NOT EXISTS catalog_tallies (
        series_id INTEGER PRIMARY KEY,
        count INTEGER NOT NULL,
        attribute_count INTEGER NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL
    )""",
        """CREATE TABLE IF NOT EXISTS catalog_types (
        workspace_id TEXT NOT NULL,
        point_id TEXT NOT NULL,
        input_id TEXT NOT NULL,
        environment TEXT NOT NULL,
        attribute TEXT NOT NULL,
        types INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, point_id, input_id, environment, attribute)
    ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS catalog_examples (
        workspace_id TEXT NOT NULL,
        point_id TEXT NOT NULL,
        attribute TEXT NOT NULL,
        value TEXT NOT NULL,
        seen_ms INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, point_id, attribute, value)
    ) WITHOUT ROWID""",
    ),
    "kaon.governance.dsr_store": (
        """CREATE TABLE IF NOT EXISTS dsr_requests (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        request_type TEXT NOT NULL,
        regulation TEXT NOT NULL,
        group_id TEXT,
        status TEXT NOT NULL,
        identities TEXT NOT NULL,
        identity_types TEXT NOT NULL,
        digests TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        callback_urls TEXT NOT NULL,
        base_url TEXT NOT NULL,
        received_ms INTEGER NOT NULL,
        due_ms INTEGER NOT NULL,
        expected_ms INTEGER,
        updated_ms INTEGER NOT NULL,
        results_expires_ms INTEGER,
        extensions TEXT NOT NULL DEFAULT '[]',
        summary TEXT NOT NULL DEFAULT '{}'
    )""",
        "CREATE INDEX IF NOT EXISTS dsr_requests_by_status ON dsr_requests (status, due_ms)",
        "CREATE INDEX IF NOT EXISTS dsr_requests_by_group ON dsr_requests (workspace_id, group_id)",
        """CREATE TABLE IF NOT EXISTS dsr_status_log (
        id INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL,
        status TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    )""",
        """CREATE TABLE IF NOT EXISTS dsr_callbacks (
        id INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL,
        url TEXT NOT NULL,
        body BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_ms INTEGER NOT NULL,
        done_ms INTEGER,
        last_status INTEGER,
        last_error TEXT
    )""",
        "CREATE INDEX IF NOT EXISTS dsr_callbacks_due ON dsr_callbacks (done_ms, next_ms)",
        """CREATE TABLE IF NOT EXISTS suppressed_identities (
        workspace_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        identity_type TEXT NOT NULL,
        request_id TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, digest)
    ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS dsr_settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
        """CREATE TABLE IF NOT EXISTS dsr_progress (
        request_id TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        summary TEXT NOT NULL
    ) WITHOUT ROWID""",
    ),
    "kaon.governance.plans_store": (
        """CREATE TABLE IF NOT EXISTS plans (
        workspace_id TEXT NOT NULL,
        plan_id TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, plan_id)
    ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS plan_versions (
        workspace_id TEXT NOT NULL,
        plan_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        description TEXT,
        activated_environment TEXT NOT NULL,
        document TEXT NOT NULL,
        blocking TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, plan_id, version)
    ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS plan_report (
        workspace_id TEXT NOT NULL,
        plan_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        data_point TEXT NOT NULL,
        violation TEXT NOT NULL,
        hour_ms INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, plan_id, hour_ms, version, data_point, violation)
    ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS input_default_plans (
        input_id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        plan_id TEXT NOT NULL,
        plan_version INTEGER
    ) WITHOUT ROWID""",
    ),
    "kaon.governance.quarantine_store": (
        """CREATE TABLE IF NOT EXISTS quarantine (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id TEXT NOT NULL,
        input_id TEXT NOT NULL,
        plan_id TEXT NOT NULL,
        plan_version INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        quarantined_ms INTEGER NOT NULL,
        reasons TEXT NOT NULL,
        blocked_events TEXT NOT NULL,
        batch BLOB NOT NULL,
        replay_requested_ms INTEGER
    )""",
        "CREATE INDEX IF NOT EXISTS quarantine_by_workspace ON quarantine (workspace_id, id)",
    ),
    "kaon.governance.consent_store": (
        """CREATE TABLE IF NOT EXISTS consent_history (
        id INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        mpid INTEGER NOT NULL,
        regulation TEXT NOT NULL,
        purpose TEXT NOT NULL,
        consented INTEGER NOT NULL,
        document TEXT,
        timestamp_unixtime_ms INTEGER NOT NULL,
        location TEXT,
        hardware_id TEXT,
        received_ms INTEGER NOT NULL,
        input_id TEXT,
        source_request_id TEXT,
        log_partition TEXT,
        log_seq INTEGER,
        batch_id INTEGER
    )""",
        "CREATE INDEX IF NOT EXISTS consent_history_by_profile ON consent_history"
        " (workspace_id, mpid, regulation, purpose, timestamp_unixtime_ms)",
    ),
}

# Columns added by releases before 0.1.0: (table, column, declaration).
_LATE_COLUMNS = (
    ("consent_history", "batch_id", "INTEGER"),
    ("profile_attributes", "deleted", "INTEGER NOT NULL DEFAULT 0"),
    ("admin_tokens", "scope", "TEXT NOT NULL DEFAULT 'write'"),
    ("admin_tokens", "operator", "INTEGER NOT NULL DEFAULT 0"),
    ("admin_tokens", "expires_ms", "INTEGER"),
    ("admin_tokens", "revoked_ms", "INTEGER"),
    ("admin_tokens", "last_used_ms", "INTEGER"),
)


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    for statements in SCHEMA.values():
        for statement in statements:
            op.execute(for_dialect(statement, dialect))
    if dialect == "sqlite":
        _upgrade_pre_release(bind)
    else:  # the columns 0.1.0 added to older tables, which its CREATE statements above lack
        for table, column, declaration in _LATE_COLUMNS:
            op.execute(for_dialect(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {declaration}", dialect))


def _has_column(bind: Connection, table: str, column: str) -> bool:
    found = bind.exec_driver_sql(f"SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?", (column,)).fetchone()
    return found is not None


def _upgrade_pre_release(bind: Connection) -> None:
    for table, column, declaration in _LATE_COLUMNS:
        if not _has_column(bind, table, column):
            op.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    if not _has_column(bind, "catalog_counts", "attributes"):
        return
    # Catalog counts keyed by text became series and their tallies.
    op.execute(
        "INSERT OR IGNORE INTO catalog_series (workspace_id, point_id, input_id, environment, attributes)"
        " SELECT workspace_id, point_id, input_id, environment, attributes FROM catalog_counts")
    # Added to, not replaced: an older release may have counted into a re-created catalog_counts after an
    # earlier migration (a downgrade, or an old process still running).
    op.execute(
        "INSERT INTO catalog_tallies (series_id, count, attribute_count, first_seen_ms, last_seen_ms)"
        " SELECT s.id, c.count, c.attribute_count, c.first_seen_ms, c.last_seen_ms FROM catalog_counts c"
        " JOIN catalog_series s USING (workspace_id, point_id, input_id, environment, attributes) WHERE true"
        " ON CONFLICT (series_id) DO UPDATE SET count = count + excluded.count,"
        " attribute_count = attribute_count + excluded.attribute_count,"
        " first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),"
        " last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)")
    op.execute("DROP TABLE catalog_counts")


def downgrade() -> None:
    raise NotImplementedError("0001 is the first revision: there is nothing to go back to")
