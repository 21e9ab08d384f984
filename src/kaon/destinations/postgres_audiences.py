"""PostgreSQL audience tables: current memberships (`audience_memberships`) and every change
(`audience_membership_changes`), written by the PostgreSQL output of a sync audience connection."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from kaon.activation.membership import ADD, Membership

MEMBERSHIPS = "audience_memberships"
CHANGES = "audience_membership_changes"
_TABLES = (
    ("CREATE TABLE IF NOT EXISTS {}.{} (audience_id text NOT NULL, audience_name text NOT NULL, mpid text NOT NULL,"
     " identities jsonb NOT NULL, added_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
     " PRIMARY KEY (audience_id, mpid))", MEMBERSHIPS),
    ("CREATE TABLE IF NOT EXISTS {}.{} (source_message_id text PRIMARY KEY, audience_id text NOT NULL,"
     " audience_name text NOT NULL, mpid text NOT NULL, action text NOT NULL, cause text,"
     " changed_at timestamptz NOT NULL, identities jsonb NOT NULL)", CHANGES),
)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def write(conn: Connection[Any], schema: str, changes: Sequence[tuple[str, str | None, Membership]]) -> None:
    """Apply (message id, cause, change) in order, in the caller's transaction: an add upserts the member, a delete
    removes it; each change is appended once (a re-delivery finds its message id and changes nothing)."""
    for statement, table in _TABLES:
        conn.execute(sql.SQL(statement).format(sql.Identifier(schema), sql.Identifier(table)))
    members = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(MEMBERSHIPS))
    log = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(CHANGES))
    for message_id, cause, change in changes:
        new = conn.execute(sql.SQL(
            "INSERT INTO {} (source_message_id, audience_id, audience_name, mpid, action, cause, changed_at,"
            " identities) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (source_message_id) DO NOTHING"
        ).format(log), (message_id, change.audience_id, change.audience_name, str(change.mpid), change.action,
                        cause, _at(change.at_ms), Jsonb(change.identities))).rowcount
        if not new:
            continue  # delivered before: its effect on the members is already there
        if change.action == ADD:
            conn.execute(sql.SQL(
                "INSERT INTO {} (audience_id, audience_name, mpid, identities, added_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (audience_id, mpid) DO UPDATE SET"
                " audience_name = excluded.audience_name, identities = excluded.identities,"
                " updated_at = excluded.updated_at").format(members),
                (change.audience_id, change.audience_name, str(change.mpid), Jsonb(change.identities),
                 _at(change.at_ms), _at(change.at_ms)))
        else:
            conn.execute(sql.SQL("DELETE FROM {} WHERE audience_id = %s AND mpid = %s").format(members),
                         (change.audience_id, str(change.mpid)))
