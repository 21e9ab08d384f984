"""The SQLite schema of the main store, applied idempotently at open."""

SCHEMA = (
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
)
