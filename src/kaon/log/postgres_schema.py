"""The PostgreSQL ingest log's own schema (default `kaon_log`): entries by partition, heads, leases, workers.

    entries(part, seq, kind, workspace_id, input_id, received_ms, ip, body)  PARTITION BY LIST (part):
        entries_p0 .. entries_p<N-1> for the user-keyed partitions, entries_replay (part -1) for replays
    heads(part, last_seq)          the last sequence number given out in each partition (see kaon.log.postgres)
    leases(part, partition, owner, expires_ms, generation)   which process worker reads which partition
    workers(owner, heartbeat_ms, started_ms, ttl_ms, info)   the process workers' heartbeats (`kaon status`)
    meta(key, value)               `partitions`: N, fixed when the log is created

Created on first open, under a transaction-scoped advisory lock so processes starting together do not race.
"""

import zlib
from typing import Any

import psycopg
from psycopg import sql

from kaon.log.base import REPLAY_PARTITION
from kaon.log.errors import PartitionCountFixed

REPLAY_PART = -1  # `part` of the replay partition; the user-keyed ones are 0 .. N-1
_TABLES = """
CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.heads (part integer PRIMARY KEY, last_seq bigint NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.entries (
    part integer NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    workspace_id text,
    input_id text,
    received_ms bigint NOT NULL,
    ip text,
    body bytea NOT NULL,
    PRIMARY KEY (part, seq)
) PARTITION BY LIST (part);
CREATE TABLE IF NOT EXISTS {s}.leases (
    part integer PRIMARY KEY,
    partition text NOT NULL UNIQUE,
    owner text,
    expires_ms bigint NOT NULL DEFAULT 0,
    generation bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS {s}.workers (
    owner text PRIMARY KEY,
    heartbeat_ms bigint NOT NULL,
    started_ms bigint NOT NULL,
    ttl_ms bigint NOT NULL,
    info text NOT NULL DEFAULT ''
)
"""


def partition_name(part: int) -> str:
    return REPLAY_PARTITION if part == REPLAY_PART else str(part)


def create(conn: psycopg.Connection[Any], schema: str, partitions: int) -> int:
    """Create the schema if missing; returns the partition count the log has (raises if it is not `partitions`)."""
    s = sql.Identifier(schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(f"kaon-log:{schema}".encode()),))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
        for statement in _TABLES.split(";"):
            conn.execute(sql.SQL(statement).format(s=s))  # built from a constant
        conn.execute(sql.SQL("INSERT INTO {}.meta (key, value) VALUES ('partitions', %s) ON CONFLICT (key) DO NOTHING")
                     .format(s), (partitions,))
        row = conn.execute(sql.SQL("SELECT value FROM {}.meta WHERE key = 'partitions'").format(s)).fetchone()
        assert row is not None
        created = int(row[0])
        if created != partitions:
            raise PartitionCountFixed(
                f"the ingest log in schema {schema!r} has {created} partitions, not {partitions}: the count is fixed "
                f"when the log is created (a user's entries must stay in one partition)")
        for part in [*range(partitions), REPLAY_PART]:
            table = sql.Identifier(f"entries_p{part}" if part >= 0 else "entries_replay")
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} PARTITION OF {}.entries FOR VALUES IN ({})")
                         .format(s, table, s, sql.Literal(part)))
            conn.execute(sql.SQL("INSERT INTO {}.heads (part, last_seq) VALUES (%s, 0) ON CONFLICT (part) DO NOTHING")
                         .format(s), (part,))
            conn.execute(sql.SQL("INSERT INTO {}.leases (part, partition) VALUES (%s, %s)"
                                 " ON CONFLICT (part) DO NOTHING").format(s), (part, partition_name(part)))
    return created
