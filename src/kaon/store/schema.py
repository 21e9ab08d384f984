"""The SQLite schema of the main store, applied idempotently at open, and the migrations of older stores."""

import sqlite3

from kaon.store.sql import Conn
from kaon.store.tx import transaction

SCHEMA: tuple[str, ...] = (
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
    """CREATE TABLE IF NOT EXISTS admin_tokens (
        token_hash TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        name TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS config_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )""",
    "INSERT OR IGNORE INTO config_version (id, version) VALUES (1, 1)",
    """CREATE TABLE IF NOT EXISTS log_offsets (
        partition TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    )""",
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
    """CREATE TABLE IF NOT EXISTS message_ids (
        workspace_id TEXT NOT NULL,
        source_message_id TEXT NOT NULL,
        seen_ms INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, source_message_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS message_ids_by_age ON message_ids (seen_ms)",
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
    # Identity and profiles
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
    # One owner per identity value: concurrent first sightings converge on one profile (decision 4).
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
    "CREATE INDEX IF NOT EXISTS events_by_profile ON events (workspace_id, mpid)",
    # The admin listing: newest first by receive time, within a time range (kaon.store.events.page).
    "CREATE INDEX IF NOT EXISTS events_by_received ON events (workspace_id, received_ms)",
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
    # Outputs, connections and delivery
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
    # Jobs are immutable; their history is the append-only attempts table; `delivery_pending` is the queue
    # index (a job leaves it when it reaches a terminal state).
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
    # claim walks an output's queue in job order; the idle worker asks when the next job is due
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
    # Data catalog (kaon.governance.catalog_store): data points; their counts per input, environment and set of
    # attribute names (a slice adds to a few hundred narrow rows); each attribute's type bits, touched only when a
    # new type appears; example values kept apart so that erasure can delete them.
    """CREATE TABLE IF NOT EXISTS catalog_points (
        workspace_id TEXT NOT NULL,
        point_id TEXT NOT NULL,
        point_type TEXT NOT NULL,
        name TEXT NOT NULL,
        custom_event_type TEXT NOT NULL,
        PRIMARY KEY (workspace_id, point_id)
    ) WITHOUT ROWID""",
    # A series: one data point's events per input, environment and set of attribute names; its tally is kept
    # apart under the integer id so that a slice's additions are narrow updates by rowid.
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
)
# Data subject requests (OpenDSR v3; kaon.governance.dsr_*). Raw identities are held only until a request is
# done (then `identities` becomes '{}'); `digests` and the suppression table hold keyed hashes, not values.
SCHEMA += (
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
)
# Data plans (kaon.governance.plans_store): a plan's versions hold the document and blocking settings;
# the plan report counts violations per hour; the quarantine holds blocked data (kaon.governance.quarantine).
SCHEMA += (
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
    # Blocked data with its original batch (governance/quarantine.py); a row leaves when its replay is processed.
    # AUTOINCREMENT: an id is never reused, so a late replay entry can only ever match its own row.
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
)
# Consent history (kaon.governance.consent): every consent record a batch carried for a profile, older ones
# included (the profile's `consent` column holds the current state: the newest record per purpose).
SCHEMA += (
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
)
# An input's default data plan (kaon.store.config.set_default_plan): applied by the plans step
# (kaon.pipeline.plans) to batches of that input that name no plan in `context.data_plan`.
SCHEMA += (
    """CREATE TABLE IF NOT EXISTS input_default_plans (
        input_id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        plan_id TEXT NOT NULL,
        plan_version INTEGER
    ) WITHOUT ROWID""",
)
# An erasure between its main-store transaction and completion (kaon.governance.dsr_worker): the person as found
# before their rows were deleted, so a request resumed after a crash still scrubs outputs and forwards the
# deletion by their mpids and identities. Removed in the completing transaction.
SCHEMA += (
    """CREATE TABLE IF NOT EXISTS dsr_progress (
        request_id TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        summary TEXT NOT NULL
    ) WITHOUT ROWID""",
)


def _add_column(conn: Conn, table: str, column: str, declaration: str) -> None:
    if conn.execute(f"SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?", (column,)).fetchone() is not None:
        return
    try:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    except sqlite3.OperationalError as error:  # another process added it meanwhile
        if "duplicate column" not in str(error):
            raise


def migrate(conn: Conn) -> None:
    """Bring a store written by an earlier release up to SCHEMA (each step checks whether it is needed)."""
    _add_column(conn, "consent_history", "batch_id", "INTEGER")
    _add_column(conn, "profile_attributes", "deleted", "INTEGER NOT NULL DEFAULT 0")
    # Admin tokens: scope, operator view, expiry, revocation, last use (kaon.store.tokens).
    _add_column(conn, "admin_tokens", "scope", "TEXT NOT NULL DEFAULT 'write'")
    _add_column(conn, "admin_tokens", "operator", "INTEGER NOT NULL DEFAULT 0")
    _add_column(conn, "admin_tokens", "expires_ms", "INTEGER")
    _add_column(conn, "admin_tokens", "revoked_ms", "INTEGER")
    _add_column(conn, "admin_tokens", "last_used_ms", "INTEGER")
    old_counts = "SELECT 1 FROM pragma_table_info('catalog_counts') WHERE name = 'attributes'"
    if conn.execute(old_counts).fetchone() is None:
        return
    with transaction(conn):  # catalog counts keyed by text: series and their tallies
        if conn.execute(old_counts).fetchone() is not None:  # (another process may have migrated it meanwhile)
            conn.execute(
                "INSERT OR IGNORE INTO catalog_series (workspace_id, point_id, input_id, environment, attributes)"
                " SELECT workspace_id, point_id, input_id, environment, attributes FROM catalog_counts")
            # Added to, not replaced: an older release may have counted into a re-created catalog_counts after an
            # earlier migration (a downgrade, or an old process still running).
            conn.execute(
                "INSERT INTO catalog_tallies (series_id, count, attribute_count, first_seen_ms, last_seen_ms)"
                " SELECT s.id, c.count, c.attribute_count, c.first_seen_ms, c.last_seen_ms FROM catalog_counts c"
                " JOIN catalog_series s USING (workspace_id, point_id, input_id, environment, attributes) WHERE true"
                " ON CONFLICT (series_id) DO UPDATE SET count = count + excluded.count,"
                " attribute_count = attribute_count + excluded.attribute_count,"
                " first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),"
                " last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)")
            conn.execute("DROP TABLE catalog_counts")
