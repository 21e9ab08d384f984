"""Suppressed identities: values erased by a request, kept as keyed digests so the identity step will not link
them again for a while (a late event must not silently recreate the person). Stored by `dsr_store`."""


from kaon.governance import dsr_store
from kaon.governance.dsr_store import digest, salt
from kaon.store.sql import Conn


def is_suppressed(conn: Conn, workspace_id: str, identity_type: str, value: str, now_ms: int) -> bool:
    """True while an erasure's suppression of this identity lasts (one indexed lookup when any exists)."""
    if not dsr_store.any_suppressed(conn, workspace_id, now_ms):
        return False
    key = digest(salt(conn), workspace_id, identity_type, value)
    return dsr_store.is_digest_suppressed(conn, workspace_id, key, now_ms)


def suppress(conn: Conn, workspace_id: str, identities: set[tuple[str, str]], request_id: str,
             now_ms: int, until_ms: int) -> int:
    key = salt(conn)
    for identity_type, value in identities:
        dsr_store.suppress_digest(conn, workspace_id, digest(key, workspace_id, identity_type, value), identity_type,
                                  request_id, now_ms, until_ms)
    return len(identities)


def active(conn: Conn, workspace_id: str, now_ms: int) -> list[dict[str, object]]:
    """What is suppressed now (types, not values), for the API."""
    return [{"identity_type": t, "subject_request_id": r, "created_ms": c, "expires_ms": e}
            for t, r, c, e in dsr_store.suppressions(conn, workspace_id, now_ms)]
