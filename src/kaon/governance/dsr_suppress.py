"""Suppressed identities: values erased by a request, kept as keyed digests so the identity step will not link
them again for a while (a late event must not silently recreate the person)."""


from kaon.governance.dsr_store import digest, salt
from kaon.store.sql import Conn


def is_suppressed(conn: Conn, workspace_id: str, identity_type: str, value: str, now_ms: int) -> bool:
    """True while an erasure's suppression of this identity lasts (one indexed lookup when any exists)."""
    if conn.execute("SELECT 1 FROM suppressed_identities WHERE workspace_id = ? AND expires_ms > ? LIMIT 1",
                    (workspace_id, now_ms)).fetchone() is None:
        return False
    key = digest(salt(conn), workspace_id, identity_type, value)
    return conn.execute("SELECT 1 FROM suppressed_identities WHERE workspace_id = ? AND digest = ? AND expires_ms > ?",
                        (workspace_id, key, now_ms)).fetchone() is not None


def suppress(conn: Conn, workspace_id: str, identities: set[tuple[str, str]], request_id: str,
             now_ms: int, until_ms: int) -> int:
    key = salt(conn)
    for identity_type, value in identities:
        conn.execute(
            "INSERT INTO suppressed_identities (workspace_id, digest, identity_type, request_id, created_ms,"
            " expires_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET expires_ms = MAX(expires_ms,"
            " excluded.expires_ms), request_id = excluded.request_id",
            (workspace_id, digest(key, workspace_id, identity_type, value), identity_type, request_id, now_ms,
             until_ms))
    return len(identities)


def active(conn: Conn, workspace_id: str, now_ms: int) -> list[dict[str, object]]:
    """What is suppressed now (types, not values), for the API."""
    return [{"identity_type": t, "subject_request_id": r, "created_ms": c, "expires_ms": e}
            for t, r, c, e in conn.execute(
                "SELECT identity_type, request_id, created_ms, expires_ms FROM suppressed_identities"
                " WHERE workspace_id = ? AND expires_ms > ? ORDER BY created_ms", (workspace_id, now_ms))]
